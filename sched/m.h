// M and G records, the allm registry, and the binding of OS threads to Ms.
//
// As in the Go runtime: an M is an OS thread that runs Gs; a G is a goroutine
// (here: any computation with its own stack). Every M has a g0, the G that
// describes the thread's own stack, on which the scheduler and the stack
// allocator run. A thread gets an M the first time it enters the runtime and
// gives it back when it exits (or calls dropm()), after every thread_local
// destructor of the thread has run: the M goes onto a lock-free idle list, and
// the next thread to enter takes it over, warm stack caches and all. Ms are
// never freed.
//
// Ownership: an M's fields are read and written only by the thread bound to
// it, except id, alllink and the statistics, which any thread may read once
// the M is on allm.

#ifndef SCHED_M_H_
#define SCHED_M_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "base/stack_sizes.h"
#include "sched/mcache.h"
#include "stats/mstats.h"

namespace stackalloc {

class M;

// A goroutine's record: the stack it runs on. The fiber runtime extends it.
struct G {
  uintptr_t stack_lo = 0;  // Lowest address of the stack.
  uintptr_t stack_hi = 0;  // One past the highest address.
  M* m = nullptr;          // The M running this G, if any.
  // The runtime's number for this G (Go's goid), for fatal messages such as
  // the stack overflow report; 0 if the runtime gives none.
  int64_t goid = 0;

  // True if p lies on this G's stack.
  bool OnStack(const void* p) const {
    auto a = reinterpret_cast<uintptr_t>(p);
    return stack_lo <= a && a < stack_hi;
  }
};

// The kernel's signal frame on this CPU, in bytes: getauxval(AT_MINSIGSTKSZ),
// which grows with vector state (about 3.4 KiB with AVX-512, 11 KiB with
// AMX), or MINSIGSTKSZ where the kernel does not say. Computed once; call it
// outside a signal handler first (getauxval is not async-signal-safe).
size_t SignalFrameBytes();
// The red zone the kernel skips below the interrupted stack pointer before
// it pushes a signal frame (the x86-64 ABI's; aarch64 has none, and the 128
// bytes cost little there). Bytes.
inline constexpr size_t kSignalRedZone = 128;

// Room a signal takes below the stack pointer it interrupts when its handler
// runs on that stack (installed without SA_ONSTACK: glibc's for setuid(), a
// profiler's): the red zone the kernel skips, its frame, and a small
// handler's frames. Bytes. proc::WithStack leaves it free.
size_t SignalFrameReserve();

// Bytes of each M's alternate signal stack: at least kMinSignalStack, and
// eight times the signal frame (SignalFrameBytes()), so a handler has room
// beside its frame. The same for every M; computed once.
inline constexpr size_t kMinSignalStack = 64 << 10;
size_t SignalStackBytes();

// A set of caches that are all closed; what an unbound thread, or a thread
// off its g0, sees.
StackCaches* ClosedStackCaches();

class M {
 public:
  // An unregistered M; mcommoninit() gives it an identity.
  constexpr M() = default;
  M(const M&) = delete;
  M& operator=(const M&) = delete;

  int64_t id() const { return id_; }
  uint32_t fastrand() const { return fastrand_; }
  // Next M on allm (older registrations come later).
  M* alllink() const { return alllink_; }

  G* g0() { return &g0_; }
  G* curg() const { return curg_; }
  // The only way to change curg. REQUIRES: the calling thread is bound to
  // this M. Off g0 the fast paths see closed caches, so stackalloc and
  // stackfree reach their slow path and its g0 check whatever the size; on
  // g0 they see the M's own, unless its caches are bypassed (BypassCaches).
  void set_curg(G* g);

  // The bound thread takes this M's current bypass setting now, rather
  // than at its next set_curg() (the allocator's slow paths call it).
  // REQUIRES: the calling thread is bound to this M.
  void AdoptCacheBypass() { set_curg(curg_); }

  // Set while the M is inside malloc / the collector (the seed's
  // m->mallocing, m->gcing): stack requests must then be kFixedStack.
  int mallocing() const { return mallocing_; }
  int gcing() const { return gcing_; }
  void set_mallocing(int v);
  void set_gcing(int v);

  // The M's share of the stack allocator (Go's mcache): its caches of free
  // stacks, carvers and record allocator; sched/mcache.h says who may touch
  // which part.
  MCache mcache;
  // This M's statistics; stats.orders[k] points into its cache of order k.
  MStatsShard stats;

  // Link on the idle list while no thread is bound to this M.
  std::atomic<M*> idlelink{nullptr};
  // Whose the M is: kMBound (a thread's), kMIdle (no thread's), or
  // kMBorrowed (a scavenger empties its caches). Changes by CAS only.
  std::atomic<int> owner{0};
  // 1 while the bound thread is in a slow path of the allocator (a
  // SlowPathGate): fork() waits for it to close.
  std::atomic<int> gate{0};

  // The alternate signal stack (SignalStackBytes(), its lowest byte here)
  // this M gives a thread that has none, so a stack overflow can be
  // reported on it (Go's m->gsignal stack), with a guard page below it, so
  // a handler that runs past it faults there instead of writing into what
  // lies below; nullptr until a thread that has none binds the M. Whether
  // the bound thread uses it, and whether it has none at all (the OS
  // refused ours: its slow paths try again). A stack the thread had, or
  // installs later, is the thread's: never disabled, replaced or freed.
  // Atomic: the overflow report reads every M's from any thread.
  std::atomic<void*> sigaltstack{nullptr};
  bool sigaltstack_installed = false;
  bool sigaltstack_missing = false;

 private:
  friend void mcommoninit(M* m);
  friend void BypassCaches(bool on);

  // Sets g0_caches_ from the process's bypass setting, until the setting
  // read before and after agree: with BypassCaches() racing, the M ends as
  // the last call said.
  void SyncBypass();

  // The caches the fast paths see on g0: mcache.stackcache, or the closed
  // ones while caches are bypassed. Any thread may set it (SyncBypass);
  // set_curg() reads it on the bound thread.
  std::atomic<StackCaches*> g0_caches_{nullptr};

  int mallocing_ = 0;
  int gcing_ = 0;
  G* curg_ = nullptr;
  int64_t id_ = -1;
  uint32_t fastrand_ = 0;
  M* alllink_ = nullptr;
  G g0_;
};

// Registers m: id = mcount++, fastrand = 0x49f6428a + id, its caches'
// limits, its stats shard, and finally a lock-free push onto allm, so a
// thread walking allm only ever sees Ms that are fully initialised.
// Thread-safe.
void mcommoninit(M* m);

// Bypasses every M's caches (on) or stops bypassing them (off): while
// bypassed, the fast paths see closed caches even on g0, so every
// stackalloc and stackfree takes its slow path (the allocator does this
// while it wipes stacks, SetStackWipe in stackalloc.h; the fast paths stay
// as they are). Every M registered, and every M registered later, takes the
// setting at once; the thread bound to an M adopts it at its next
// set_curg() (a G switch, the binding of a thread) or AdoptCacheBypass(),
// the calling thread at once. Thread-safe: concurrent calls leave every M
// as the last one said.
void BypassCaches(bool on);
bool CachesBypassed();

// Head of the list of all Ms (follow M::alllink()). Safe to walk while other
// threads register: Ms are only ever added at the head and never removed.
M* allm();
// Number of Ms ever registered.
int32_t mcount();

namespace internal {
// The calling thread's M, or UnboundM() if it has not entered the runtime.
// Initial-exec TLS: one instruction to read on the fast path.
extern __thread M* tls_m ABSL_ATTRIBUTE_INITIAL_EXEC;
// The caches the fast paths use: the bound M's while it runs on g0, else
// ClosedStackCaches().
extern __thread StackCaches* tls_stackcache ABSL_ATTRIBUTE_INITIAL_EXEC;
// A placeholder M that is never on g0; tls_m of an unbound thread.
extern M unbound_m;
inline M* UnboundM() { return &unbound_m; }
// getm()'s slow path: binds an M to the calling thread; dies with "getm:
// out of memory for a new M" if none could be had.
M* BindM();
// The same, returning nullptr instead (the allocator's slow paths, which
// then refuse the request). A signal handler that calls in while its thread
// binds dies with "stackalloc: re-entered from a signal handler".
M* TryBindM();
// The calling thread's own stack as ThreadStack() read it, [lo, hi); both 0
// until it did. Initial-exec TLS, for StackMargin()'s fast path.
extern __thread uintptr_t tls_thread_stack_lo ABSL_ATTRIBUTE_INITIAL_EXEC;
extern __thread uintptr_t tls_thread_stack_hi ABSL_ATTRIBUTE_INITIAL_EXEC;
// The calling thread's own stack, [*lo, *hi): where the thread started, as
// pthread_getattr_np says (the main thread's: down to where RLIMIT_STACK, as
// of the first call, lets it grow, and short of the kernel's guard gap above
// a mapping that lies within that). Read on the thread's first call and
// kept for its life (an M's g0 takes it when the thread binds). The first
// call may allocate (glibc reads /proc/self/maps, or the CPU affinity, into
// the heap), so it must not be made from a signal handler; later calls are
// two thread-local loads, async-signal-safe. Returns false, keeping
// nothing, when glibc could not say (out of memory).
bool ThreadStack(uintptr_t* lo, uintptr_t* hi);
// The bounds a ThreadStack() call kept, never reading them: false if the
// thread made none yet. Async-signal-safe.
bool CachedThreadStack(uintptr_t* lo, uintptr_t* hi);
// Tests: runs in the middle of every binding (where a signal may interrupt
// glibc's pthread_getattr_np), or nothing when nullptr.
void SetBindHook(void (*hook)());
// Keeps the shared object the library is linked into loaded for good
// (RTLD_NODELETE), before anything of ours is left installed in the process
// (the first binding's thread-exit key and fork handlers, the overflow
// handler): a dlclose() then leaves it mapped. Nothing in the main program.
// Thread-safe; not for signal handlers (it takes the loader's lock).
void PinLibrary();
}  // namespace internal

// The calling thread's M. The first call on a thread binds one: an idle M if
// there is one, else a new M registered by mcommoninit(); dies with "getm:
// out of memory for a new M" if the OS refuses one. Either way its g0 now
// describes the calling thread's own stack and curg = g0. The M goes back to
// the idle list when the thread exits. Thread-safe. Inline: once bound, a
// thread-local load and a comparison.
inline M* getm() {
  M* m = internal::tls_m;
  if (ABSL_PREDICT_TRUE(m != internal::UnboundM())) return m;
  return internal::BindM();
}

// Unbinds the calling thread's M (if any) and puts it on the idle list with
// its caches intact; the thread's next getm() binds one again. The thread
// must be on g0 (dies with "dropm not on scheduler stack" otherwise). Thread
// exit does this automatically, from any G: the thread is gone.
//
// After fork(), the child's Ms of threads that did not survive it are idle,
// caches and all: the child's new threads take them over.
void dropm();

// The M whose alternate signal stack's guard page holds a, or nullptr.
// Lock-free and async-signal-safe (the overflow report asks).
const M* SignalStackGuardHolding(uintptr_t a);

// Ms on the idle list now (exact when no thread enters or leaves).
int32_t idle_m_count();

// Values of M::owner.
inline constexpr int kMBound = 0;
inline constexpr int kMIdle = 1;
inline constexpr int kMBorrowed = 2;

// Calls f(m, arg) for every idle M, one at a time, with the caller as its
// owner for the duration (the scavenger empties idle Ms' caches this way).
// A thread that enters meanwhile never waits for it: if the only idle M is
// borrowed, it gets a new one, so allm may hold one M more than the peak
// number of threads for each thread running ForEachIdleM.
void ForEachIdleM(void (*f)(M* m, void* arg), void* arg);

// Brackets a window in which the calling thread holds process-wide state of
// the allocator (stacks between a pool and a cache, counters half updated,
// a scavenger's held stacks), on its M `m`. fork() waits for every
// open gate to close, and holds new ones shut until it is done, so a child
// never inherits a window half open (pthread_atfork handlers, installed with
// the first M); the forking thread's own gate excepted, open only when it
// forks from within its own slow path (a signal handler, a crash reporter
// on the abort of a misuse found there), which it cannot wait for. Only fork
// makes a gate wait. Entering a gate that is already
// open on the same M (a signal handler that interrupted the allocator and
// calls it again) dies with "stackalloc: re-entered from a signal handler";
// the thread's caches are closed while it is held, so a call the fast path
// would serve comes to the gate too.
class SlowPathGate {
 public:
  explicit SlowPathGate(M* m);
  ~SlowPathGate();
  SlowPathGate(const SlowPathGate&) = delete;
  SlowPathGate& operator=(const SlowPathGate&) = delete;

 private:
  M* const m_;
  // The thread's caches, closed while the gate is held so that a signal
  // handler's call cannot be served by the fast path from a cache the slow
  // path is changing: it reaches the gate, and dies. At the gate's end the
  // M's own choice is put back (M::AdoptCacheBypass), these only if the
  // thread is not bound to the gate's M.
  StackCaches* const caches_;
};

}  // namespace stackalloc

#endif  // SCHED_M_H_
