// stackalloc / stackfree: goroutine-style stacks without contention.
//
// The entry point of the library, after Go commit c9152a85 ("runtime:
// eliminate contention during stack allocation"), with Go's later stack
// orders. Every power of two from 4 KiB (kFixedStack) to 1 MiB
// (kMaxOrderStack) is an order; a stack of an order comes from the calling
// M's own bounded cache of that order, so the common case takes no lock and
// touches only the M's own cache lines. Caches exchange whole batches with a
// lock-free global pool per order, and carve new stacks from chunks with
// the M's own FixAllocs. A size between orders is served by the next order
// up; a stack above the largest order gets a mapping of its own.
//
// Every stack has a guard page immediately below its lowest address (stacks
// grow down), installed once per slot; touching it dies with "fatal error:
// stack overflow: <size>-byte stack [<lo>, <hi>) on M <id>" (and the G,
// where a runtime names it), then the faulting instruction's address and
// the functions on the stack, by name where the binary has symbols.
// SetStackGuards(false) lays out new chunks without guards (the seed's 32
// stacks per 128 KiB). StackMargin() says how far the caller may still go.
//
// Both functions may only run on the scheduler stack (g == m->g0): a call
// from a G's own stack dies with "stackalloc not on scheduler stack" (or
// "stackfree not on scheduler stack"), whatever the size. A thread that
// never switched to a G is always on its g0. While the M is in malloc or GC
// (m->mallocing(), m->gcing()), only kFixedStack requests are allowed; any
// other size dies with "stackalloc: in malloc, size=4096 want <n>".
//
// Thread-safe: any thread may call them; a stack may be freed on another
// thread than the one that allocated it. Not async-signal-safe.

#ifndef STACKALLOC_H_
#define STACKALLOC_H_

#include <cstddef>

#include "base/stack_sizes.h"

namespace stackalloc {

// Returns a stack of at least n bytes (n > 0), or nullptr if the OS refused
// memory: then no stack statistic changes (stacks_meta_sys may have grown by
// records the allocator obtained before the refusal, kept for later use). The
// stack is OrderStackSize( StackOrder(n)) bytes, aligned to 4 KiB, for n <=
// kMaxOrderStack; n rounded up to whole pages above. Its contents are
// unspecified: the allocator never writes into a stack, so only the pages its
// user touches take memory. Dies with "stackalloc: zero-sized stack" for n ==
// 0.
void* stackalloc(size_t n);

// Frees v, which stackalloc(n) returned, with the same n (any n of the same
// order will do). A pointer that is not such a stack, a size of another
// order, and a stack freed twice each die with "fatal error: stackfree: ...":
// at the call in debug and checked builds; in the default optimised build, a
// stack freed right after it was freed on the same M dies at the call and
// every other case when the stack leaves the M's cache for the pool (see
// README, "Contract").
void stackfree(void* v, size_t n);

// A request size resolved once to the cache that serves it (as a malloc's
// size class), for callers that ask for one size again and again (a fiber
// runtime, BoostStackAllocator): each call then finds its cache in one load
// instead of computing it from the size. stackalloc(c) and stackfree(v, c)
// are stackalloc(c.size()) and stackfree(v, c.size()), same contract.
// Trivially copyable (two words); constructing one is cheap and never fails.
class StackClass {
 public:
  constexpr explicit StackClass(size_t n)
      : size_(n), index_(static_cast<size_t>(StackClassOf(n))) {}
  // The request, in bytes.
  constexpr size_t size() const { return size_; }

 private:
  friend void* stackalloc(StackClass c);
  friend void stackfree(void* v, StackClass c);

  size_t size_;
  size_t index_;  // StackClassOf(size_) (base/stack_sizes.h).
};
void* stackalloc(StackClass c);
void stackfree(void* v, StackClass c);

// Sets how many free stacks each M's cache of the order serving
// `stack_size` may hold: an even number in [2, 64]. Defaults: 32 stacks of
// 4 KiB, then as many as make 128 KiB, at least 2. Half a cache moves to or
// from the global pool at a time. Each M adopts the new limit at its next
// exchange with the pool. Returns false, changing nothing, for any other
// value or a size no order serves.
bool SetStackCacheLimit(int limit, size_t stack_size = kFixedStack);

// Returns free memory to the OS: the pages of every stack chunk whose stacks
// are all free in the global pools (they stay mapped, guards and all, and
// are reused before any new chunk is mapped), and, for orders of 64 KiB and
// up, the pages of every free stack in the pools, one at a time. The caches
// of idle Ms (of exited threads) and the calling thread's own are emptied
// into the pools first, every stack checked on the way (a stack freed twice
// dies); those of other threads' Ms are not touched. A thread without an M
// borrows one for the call and leaves without. Freed stacks above 1 MiB
// whose unmapping the OS refused are unmapped now if it lets us. Returns the
// bytes released; stacks_sys falls and stacks_released rises by exactly
// that much (pages the OS keeps, locked ones, are not counted). Thread-safe;
// an order another thread is scavenging is skipped.
size_t ScavengeStacks();

// The scavenging policy: when a cache hands a batch to a global pool and the
// pools then hold more than `bytes` of free stacks (and at least twice as
// much as after the previous scavenge, so a fragmented pool is not scanned
// over and over), that M runs ScavengeStacks(). 0, the default, turns the
// policy off.
void SetScavengeThreshold(size_t bytes);

// Whether chunks obtained from now on, and large stacks, get guard pages
// (default: true). Stacks already carved keep their layout. Returns the
// previous setting.
bool SetStackGuards(bool on);

// Whether stack memory mapped from now on (arena reservations, stacks above
// 1 MiB) may be backed by transparent huge pages (default: false, advised
// MADV_NOHUGEPAGE, so that a fiber that touches a few KiB of its stack costs
// a few KiB, not 2 MiB, where huge pages are `always`). true advises
// MADV_HUGEPAGE instead. Returns the previous setting.
bool SetStackHugePages(bool on);

// Puts the stack overflow report back in front of the current SIGSEGV and
// SIGBUS actions, chaining to them, if another handler took its place: for
// a framework that restores an action it saved before ours (Boost.Test does
// after every test case). Does nothing if the report is in front already;
// the allocator installs it itself with its first guarded stack. See
// README, "Signals". Thread-safe, not async-signal-safe.
void InstallStackOverflowHandler();

// The budget of mappings the guard pages may add where the kernel lacks
// MADV_GUARD_INSTALL and they fall back to mprotect (default 16,384, a
// quarter of Linux's default vm.max_map_count). Past it, stacks are handed
// out without a guard and counted in MemStats::stacks_unguarded.
void SetGuardMappingBudget(size_t mappings);

// The bytes between the caller's stack pointer (to within this call's own
// frame, a few words below it) and the lowest usable byte of the stack it
// runs on, the guard page lying below that byte: how far recursive code may
// still go, for code that must stop before it overflows. Known for a G of
// a fiber runtime that names its Gs to the M (proc's, with the segment it
// runs on), a fiber on any stack from stackalloc (BoostStackAllocator's,
// Asio's coroutines on it), the thread's own stack (the main thread's down
// to where RLIMIT_STACK lets it grow, as of the first call), and a handler
// on the alternate signal stack an M gave its thread.
//
// On any other stack (another allocator's fiber, a signal stack not ours)
// it returns 0, as it does on a full one: for code that stops when the
// margin runs low, an unknown stack must mean "stop", never "go on" (a
// SIZE_MAX would let it run past a guard it cannot see). FindStack says
// whether a stack is one of ours.
//
// O(1), no system call and no lock, and nothing added to any switch: a G's
// and the thread's stack are the bounds the M already holds for the G it
// runs (every switch of a runtime that names its Gs keeps them; a thread
// without an M keeps its own in thread-local storage); any other stack of
// ours is found from the address in the chunk map, as FindStack does, so
// the fibers of libraries whose switches cannot be hooked (Boost's) need no
// hook either.
//
// proc::WithStack budgets with the same answer (less what it keeps back:
// kStackGuard and a signal frame). The first call on a thread without an M,
// off our stacks, reads the thread's stack bounds (pthread_getattr_np, which
// may allocate), so it must not be made from a signal handler; after that,
// and on an M's thread, it is async-signal-safe. Measured from the real
// stack pointer: under ASan with detect_stack_use_after_return, locals live
// in a fake stack and use less of the real one than the margin shows.
size_t StackMargin();

// If p lies in a stack from stackalloc (handed out, or free in a cache or
// pool), sets *lo to the stack's lowest address and *size to its bytes
// (OrderStackSize of its order, or the page-rounded size of a stack above
// 1 MiB) and returns true; else (p in a guard page, in a freed stack above
// 1 MiB, in a free stack of a chunk that ScavengeStacks() released whole,
// or not in a stack of ours) returns false. For a fiber that must know the
// bounds of the stack it runs on (Go's spanOf, for stacks): the answer
// about a stack being freed meanwhile on another thread may be stale, but
// a true answer's [*lo, *lo + *size) always holds p (a freed large stack's
// record may be rewritten as it is read: a seqlock). Lock-free, never
// allocates, async-signal-safe.
bool FindStack(const void* p, void** lo, size_t* size);

}  // namespace stackalloc

#endif  // STACKALLOC_H_
