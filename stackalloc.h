// stackalloc / stackfree: goroutine-style stacks without contention.
//
// The entry point of the library, after Go commit c9152a85 ("runtime:
// eliminate contention during stack allocation"), with Go's later stack
// orders. Every power of two from 4 KiB (kFixedStack) to 1 MiB
// (kMaxOrderStack) is an order; a stack of an order comes from the calling
// M's own bounded cache of that order, so the common case takes no lock and
// touches only the M's own cache lines. Caches exchange whole batches with a
// lock-free global pool per order, and carve new stacks from chunks with
// the M's own carver of each order. A size between orders is served by the
// next order up; a stack above the largest order gets a mapping of its own.
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
#include <cstdint>

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
// whose unmapping the OS refused are unmapped now if it lets us (their bytes
// leave unmapping_sys or unmapping_released, and stacks_sys or
// stacks_released with them, and are not in the result). Returns the bytes
// released; for those, stacks_sys falls and stacks_released rises by
// exactly that much (pages the OS keeps, locked ones, are not counted).
// Thread-safe; an order another thread is scavenging is skipped.
size_t ScavengeStacks();

// The scavenging policy: when a cache hands a batch to a global pool and the
// pools then hold more than `bytes` of free stacks (and at least twice as
// much as after the previous scavenge, so a fragmented pool is not scanned
// over and over), that M runs ScavengeStacks(). 0, the default, turns the
// policy off. Any thread, any time; Ms see the new value at their next
// exchange with a pool.
void SetScavengeThreshold(size_t bytes);

// Whether chunks obtained from now on, and large stacks, get guard pages
// (default: true). Stacks already carved keep their layout. Returns the
// previous setting. Any thread, any time (a chunk being laid out meanwhile
// takes the old value or the new).
bool SetStackGuards(bool on);

// Whether stack memory mapped from now on (arena reservations, stacks above
// 1 MiB) may be backed by transparent huge pages (default: false, advised
// MADV_NOHUGEPAGE, so that a fiber that touches a few KiB of its stack costs
// a few KiB, not 2 MiB, where huge pages are `always`). true advises
// MADV_HUGEPAGE instead. Memory already mapped keeps the advice it was
// mapped with. Returns the previous setting. Any thread, any time.
bool SetStackHugePages(bool on);

// Puts the stack overflow report back in front of the current SIGSEGV and
// SIGBUS actions, chaining to them, if another handler took its place: for
// a framework that restores an action it saved before ours (Boost.Test does
// after every test case). Does nothing if the report is in front already;
// the allocator installs it itself with its first guarded stack. See
// README, "Signals". A thread without an M borrows one for the call and
// leaves without (as ScavengeStacks()). Thread-safe, fork-safe, not
// async-signal-safe.
void InstallStackOverflowHandler();

// The budget of mappings the guard pages may add where the kernel lacks
// MADV_GUARD_INSTALL and they fall back to mprotect (default 16,384, a
// quarter of Linux's default vm.max_map_count). Past it, stacks are handed
// out without a guard and counted in MemStats::stacks_unguarded. Any
// thread, any time; guards already installed stay.
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

// --- How deep stacks go: the census ---------------------------------------
//
// The allocator never writes into a stack, so a stack's resident pages are
// exactly the pages its users touched since its slot last returned its
// memory to the OS (a fresh chunk, ScavengeStacks()); stacks grow down, so
// its lowest resident page is how deep it has gone. The census reads that
// for every stack with one mincore() per run of neighbouring chunks (up to
// 16 MiB of them), not per stack, and adds nothing to the fast paths.

// The most pages a stack of an order has (1 MiB / 4 KiB): the census counts
// depths 0 to kMaxStackPages.
inline constexpr size_t kMaxStackPages = kMaxOrderStack / kPageSize;

// One order's stacks (MemStats::orders' indexing). Counts of stacks.
struct StackOrderUsage {
  uint64_t stack_size = 0;  // Bytes of each stack of the order.
  // Stacks of the order that exist: handed out, or free in a cache or pool.
  uint64_t stacks = 0;
  uint64_t handed_out = 0;  // Of those, handed out and not freed.
  // Stacks whose lowest page, the one next to the guard, was touched: one
  // more page and they would have overflowed (depth[stack_size / 4096]).
  uint64_t near_overflow = 0;
  // Stacks whose pages could not be read (mincore() refused): counted in
  // stacks and handed_out, in no depth and not in near_overflow. 0 unless
  // the kernel failed us.
  uint64_t unread = 0;
  // depth[i], for i from 0 to stack_size / 4096: stacks whose deepest
  // touched page is exactly the i-th page below their top (i == 0: never
  // touched). Entries past stack_size / 4096 stay 0.
  uint64_t depth[kMaxStackPages + 1] = {};
};

// The stacks above 1 MiB (a mapping each); every one is handed out.
struct LargeStackUsage {
  uint64_t stacks = 0;
  uint64_t handed_out = 0;
  uint64_t near_overflow = 0;  // Lowest page touched.
  uint64_t unread = 0;         // As in StackOrderUsage.
};

struct StackUsage {
  StackOrderUsage orders[kNumStackOrders];
  LargeStackUsage large;
  // What the census cost: chunks holding stacks (and large stacks) it read,
  // and the system calls it made to read them (mincore()).
  uint64_t chunks = 0;
  uint64_t system_calls = 0;
};

// Takes the census of every stack: for each order, how many stacks exist,
// are handed out, and have gone how deep (at page granularity: a stack
// whose users touched its top d pages is counted in depth[d]; a stack whose
// pages ScavengeStacks() returned counts from 0 again), and the same counts
// (but depth) for stacks above 1 MiB. "Deepest touched" is since the slot
// last returned its pages, so the several users of one slot count as the
// deepest of them. Pages written and pages only read count alike; a page
// the OS swapped out reads as untouched, and with SetStackHugePages(true) a
// touch may bring in a whole huge page.
//
// Any thread, any time, on any stack, also in a signal handler or a crash
// reporter: lock-free, never allocates, never writes into a stack; a
// system call per run of up to 16 MiB of neighbouring chunks, and one per
// large stack. Exact when no thread allocates or frees meanwhile. While
// stacks move, every stack that exists throughout is counted exactly once,
// with the pages it had touched when its chunk was read; a stack carved,
// freed above 1 MiB, or released with its chunk meanwhile may be counted or
// not, and handed_out mixes moments as ReadMemStats() does (never above
// stacks). The returned object is about 19 KiB; a call takes at most 26 KiB
// of the caller's stack with it (28.5 KiB under ASan).
StackUsage ReadStackUsage();

// Writes a short table of the census into buf (at most size bytes, always
// NUL-terminated when size > 0) without allocating: per order in use, its
// stacks, how many are handed out and were touched, the 50th and 99th
// percentile and the deepest depth in KiB (of the stacks touched),
// near_overflow, and the smallest order that would have held the 99.9th
// percentile and the deepest stack with one page to spare; then the stacks
// above 1 MiB. Returns the length of the whole text (as snprintf: more than
// size - 1 means it was cut). The first form takes a census itself.
size_t FormatStackUsage(char* buf, size_t size);
size_t FormatStackUsage(const StackUsage& usage, char* buf, size_t size);

// --- Wiping stacks between users --------------------------------------------
//
// Whether every stack stackalloc hands out is free of its earlier users'
// bytes (default: false): with true, every byte of a stack reads as zero
// when it is handed out. The cost follows the pages its users touched, not
// the stack's size: a stack of one page (4 KiB) has it zeroed; a larger one
// costs one mincore() and a memset of its resident pages (those its users
// touched since its slot last returned its memory, the census's depth), and
// its other pages are left as they are (zero, and not resident). Stacks
// above 1 MiB are a fresh mapping each: zero at no cost. While on, the
// fast paths pass every call to the slow path (the M's caches are bypassed,
// as off g0), so wiping costs the fast paths nothing while off; see
// README, "How deep do my fibers go", for the measured cost.
//
// Returns the previous setting. The calling thread, and every thread that
// takes an M from then on, follows the new one at once; a thread already
// bound to an M follows it at its next slow path or G switch (M::set_curg),
// so call it at start-up, before other threads take stacks, for every
// stack to be wiped. Thread-safe; not async-signal-safe.
bool SetStackWipe(bool on);
bool StackWipe();

}  // namespace stackalloc

#endif  // STACKALLOC_H_
