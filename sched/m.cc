#include "sched/m.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#include <limits>
#include <new>
#include <thread>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "alloc/guard.h"
#include "alloc/lock_free_stack.h"
#include "alloc/sys_alloc.h"
#include "base/check.h"
#include "base/throw.h"

// glibc (ld.so): the top of the main thread's stack, as the kernel left it.
// NOLINTNEXTLINE(bugprone-reserved-identifier): glibc's name, not ours.
extern "C" void* __libc_stack_end;

namespace stackalloc {
namespace {

std::atomic<M*> all_m{nullptr};
std::atomic<int32_t> m_count{0};
LockFreeStack<M, &M::idlelink> idle_ms;
std::atomic<int32_t> idle_count{0};

// Every cache closed (limit 0), and every class led to one of them. Constant
// initialised: usable by another translation unit's static initialisers.
ABSL_CONST_INIT StackCaches closed_caches;

// BypassCaches()'s setting. seq_cst, as every store of an M's g0_caches_:
// see M::SyncBypass.
ABSL_CONST_INIT std::atomic<bool> caches_bypassed{false};

// Bounds of the calling thread's own stack, for its g0.
void ThreadStackBounds(G* g) {
  // Out of memory (glibc allocates there): the bounds stay unknown, which
  // only the fiber runtime's sanitizer annotations and StackMargin() (which
  // then reports no room) would miss.
  if (!internal::ThreadStack(&g->stack_lo, &g->stack_hi)) {
    g->stack_lo = g->stack_hi = 0;
  }
}

// The M's signal stack with its guard page below, made on first need (an
// M gives its own away to a thread that cannot let it go, see below).
void* NewSignalStack() {
  void* mem = SysAlloc(SignalStackBytes() + kPageSize);
  if (mem == nullptr) return nullptr;  // Go without.
  // One per M, so outside the stacks' budget of mappings. Without a guard
  // (the mprotect fallback failed too) the stack still serves; a handler
  // that runs past it is then not caught.
  (void)InstallGuard(mem, /*mappings=*/0);
  return static_cast<char*>(mem) + kPageSize;
}

// Gives the thread the M's alternate signal stack unless it has one (Go's
// minitSignalStack): the overflow handler runs on it, since the stack that
// overflowed has no room left. Returns false if the thread has none and
// the OS refused ours (its memory, or sigaltstack itself).
bool MinitSignalStack(M* m) {
  m->sigaltstack_installed = false;
  stack_t old;
  if (sigaltstack(nullptr, &old) != 0) return false;
  if ((old.ss_flags & SS_DISABLE) == 0) {
    return true;  // The thread has one (the user's, a sanitizer's): keep it.
  }
  void* mine = m->sigaltstack.load(std::memory_order_relaxed);
  if (mine == nullptr) {
    mine = NewSignalStack();
    if (mine == nullptr) return false;
    m->sigaltstack.store(mine, std::memory_order_relaxed);
  }
  stack_t st{};
  st.ss_sp = mine;
  st.ss_size = SignalStackBytes();
  m->sigaltstack_installed = sigaltstack(&st, nullptr) == 0;
  return m->sigaltstack_installed;
}

// Takes the M's signal stack back from the thread (Go's
// unminitSignalStack), before another thread may get the M: only if the
// thread still uses ours (it may have installed its own since, which stays
// its own). Should the kernel refuse (the thread runs on it, in a handler
// that exits the thread), the thread keeps it and the M makes another.
void UnminitSignalStack(M* m) {
  if (!m->sigaltstack_installed) return;
  m->sigaltstack_installed = false;
  stack_t cur;
  if (sigaltstack(nullptr, &cur) != 0 || (cur.ss_flags & SS_DISABLE) != 0 ||
      cur.ss_sp != m->sigaltstack.load(std::memory_order_relaxed)) {
    return;
  }
  stack_t st{};
  st.ss_flags = SS_DISABLE;
  if (sigaltstack(&st, nullptr) != 0) {
    m->sigaltstack.store(nullptr, std::memory_order_relaxed);
  }
}

// Gives the thread's M back when the thread exits. A pthread key's destructor
// runs after every C++ thread_local destructor (which may still free stacks),
// and runs again if another key's destructor binds the thread anew.
// The thread is gone: whatever G its M said it ran is not running on it, so
// unlike an explicit dropm(), exit does not insist on g0.
void DropAtExit(void*) {
  M* m = internal::tls_m;
  if (m != internal::UnboundM()) m->set_curg(m->g0());
  dropm();
}

// The process-wide set-up of the first getm(): the thread-exit key and the
// fork handlers. pthread_once, not a function-local static: glibc restarts a
// pthread_once that a fork interrupted, where a C++ static's guard would stay
// taken in the child for ever.
pthread_once_t once = PTHREAD_ONCE_INIT;
pthread_key_t exit_key;

void ForkPrepare();
void ForkParent();
void ForkChild();

// Keeps the shared object this code is linked into loaded for good: its
// thread-exit destructor, fork handlers and signal handler stay installed
// after a dlclose() (Go's c-shared libraries cannot be unloaded either). In
// the main program there is nothing to pin (dlopen finds no such object).
void PinThisObject() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&PinThisObject), &info) == 0 ||
      info.dli_fname == nullptr) {
    return;
  }
  // The handle is never closed: RTLD_NODELETE is the point.
  (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

pthread_once_t pin_once = PTHREAD_ONCE_INIT;

void InitOnce() {
  internal::PinLibrary();
  if (pthread_key_create(&exit_key, &DropAtExit) != 0) {
    Throw("getm: cannot create the thread-exit key");
  }
  if (pthread_atfork(&ForkPrepare, &ForkParent, &ForkChild) != 0) {
    Throw("getm: cannot install the fork handlers");
  }
}

pthread_key_t ExitKey() {
  pthread_once(&once, &InitOnce);
  return exit_key;
}

// Clears everything that belongs to the thread an M leaves: no thread is in
// malloc or GC on it, runs a G on it, or has its signal stack. Every path
// that makes an M idle goes through here (dropm, and the fork child for the
// Ms of threads that did not survive).
void ClearThreadState(M* m) {
  m->set_mallocing(0);
  m->set_gcing(0);
  m->sigaltstack_installed = false;
  m->sigaltstack_missing = false;
}

// --- Fork: the gates, and the atfork handlers. ---

// One fork at a time between our prepare and parent handlers. glibc (2.36)
// runs concurrent forks' atfork handlers at once, and the forking thread's
// own slow paths are let through the gates (below): without this lock,
// another thread's fork could open its gate, in an atfork handler that
// calls us, after this fork saw every gate closed.
std::atomic<bool> fork_lock{false};
// Forks under way (1 while a fork holds fork_lock; its child's handler sets
// 0, the only thread left there): every other slow path steps back.
std::atomic<int> forking{0};
// On the thread holding fork_lock, how many of its forks are under way (a
// signal handler's fork may nest in one): its own slow paths (an atfork
// handler registered before ours calls the allocator) must not wait for
// the fork they are part of.
__thread int this_thread_forks ABSL_ATTRIBUTE_INITIAL_EXEC = 0;

void ForkPrepare() {
  if (this_thread_forks > 0) {  // A fork nested in this thread's own.
    ++this_thread_forks;
    forking.fetch_add(1, std::memory_order_seq_cst);
    return;
  }
  // Only this thread sets its own M's gate. Open, it means the fork comes
  // from within this thread's slow path (a signal handler that interrupted
  // it, a crash reporter's on the abort of a misuse found there): waiting
  // for it would be waiting for ourselves, for ever.
  const M* self = internal::tls_m;
  for (;;) {
    while (fork_lock.exchange(true, std::memory_order_acquire)) {
      std::this_thread::yield();
    }
    this_thread_forks = 1;
    forking.fetch_add(1, std::memory_order_seq_cst);
    const M* open = nullptr;
    for (M* m = all_m.load(std::memory_order_seq_cst); m != nullptr;
         m = m->alllink()) {
      if (m != self && m->gate.load(std::memory_order_seq_cst) != 0) {
        open = m;
        break;
      }
    }
    if (open == nullptr) return;  // Holding the lock until the fork is done.
    // A slow path that entered before us: wait for it with nothing held,
    // since it may itself fork (from a signal handler) and need the lock.
    forking.fetch_sub(1, std::memory_order_seq_cst);
    this_thread_forks = 0;
    fork_lock.store(false, std::memory_order_release);
    while (open->gate.load(std::memory_order_seq_cst) != 0) {
      std::this_thread::yield();
    }
  }
}

void ForkParent() {
  forking.fetch_sub(1, std::memory_order_seq_cst);
  if (--this_thread_forks == 0) {
    fork_lock.store(false, std::memory_order_release);
  }
}

// In the child only the forking thread survived: every other M is idle now,
// caches intact, and the idle list is rebuilt from allm.
void ForkChild() {
  M* self = internal::tls_m;
  while (idle_ms.Pop() != nullptr) {
  }
  int32_t idle = 0;
  for (M* m = allm(); m != nullptr; m = m->alllink()) {
    if (m == self) continue;
    // ForkPrepare waited for every gate to close and kept new ones shut; a
    // gate may still read 1 here, set by a thread that was only stepping
    // back from it (SlowPathGate) when the fork struck.
    m->gate.store(0, std::memory_order_relaxed);
    ClearThreadState(m);
    m->owner.store(kMIdle, std::memory_order_relaxed);
    idle_ms.Push(m);
    ++idle;
  }
  idle_count.store(idle, std::memory_order_relaxed);
  // This thread's forks that go on in the child: those a signal handler's
  // fork nested in (their parent handlers run here too), none usually.
  const int outer = this_thread_forks - 1;
  this_thread_forks = outer;
  forking.store(outer, std::memory_order_seq_cst);
  fork_lock.store(outer > 0, std::memory_order_relaxed);
}

}  // namespace

SlowPathGate::SlowPathGate(M* m) : m_(m), caches_(internal::tls_stackcache) {
  for (;;) {
    if (m->gate.exchange(1, std::memory_order_seq_cst) != 0) {
      Throw("stackalloc: re-entered from a signal handler");
    }
    if (forking.load(std::memory_order_seq_cst) == 0 || this_thread_forks) {
      // Only a handler on this thread reads it: a signal fence orders it.
      internal::tls_stackcache = &closed_caches;
      std::atomic_signal_fence(std::memory_order_seq_cst);
      if (ABSL_PREDICT_FALSE(m->sigaltstack_missing) && internal::tls_m == m) {
        m->sigaltstack_missing = !MinitSignalStack(m);  // Memory came back?
      }
      return;
    }
    // A fork is under way: step back and wait for it (only fork waits).
    m->gate.store(0, std::memory_order_seq_cst);
    while (forking.load(std::memory_order_seq_cst) != 0) {
      std::this_thread::yield();
    }
  }
}

SlowPathGate::~SlowPathGate() {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  // What the fast paths should see now, which the slow path may have
  // changed (it adopts a new cache bypass setting): as the M's G and that
  // setting say, or what they saw before if the thread is not bound to it.
  if (internal::tls_m == m_) {
    m_->AdoptCacheBypass();
  } else {
    internal::tls_stackcache = caches_;
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);
  m_->gate.store(0, std::memory_order_release);
}

namespace internal {
ABSL_CONST_INIT M unbound_m;
__thread uintptr_t tls_thread_stack_lo ABSL_ATTRIBUTE_INITIAL_EXEC = 0;
__thread uintptr_t tls_thread_stack_hi ABSL_ATTRIBUTE_INITIAL_EXEC = 0;
__thread M* tls_m ABSL_ATTRIBUTE_INITIAL_EXEC = &internal::unbound_m;
__thread StackCaches* tls_stackcache ABSL_ATTRIBUTE_INITIAL_EXEC =
    &closed_caches;
}  // namespace internal

StackCaches* ClosedStackCaches() { return &closed_caches; }

void M::set_curg(G* g) {
  STACKALLOC_DCHECK(internal::tls_m == this);
  curg_ = g;
  internal::tls_stackcache =
      g == &g0_ ? g0_caches_.load(std::memory_order_relaxed) : &closed_caches;
}

void M::SyncBypass() {
  // The last store of g0_caches_ in the total order was followed by a load
  // of the setting that found what it stored; a call that changed the
  // setting after that load stores g0_caches_ again afterwards. So the last
  // store matches the last setting.
  for (;;) {
    const bool bypassed = caches_bypassed.load(std::memory_order_seq_cst);
    g0_caches_.store(bypassed ? &closed_caches : &mcache.stackcache,
                     std::memory_order_seq_cst);
    if (caches_bypassed.load(std::memory_order_seq_cst) == bypassed) return;
  }
}

void BypassCaches(bool on) {
  caches_bypassed.store(on, std::memory_order_seq_cst);
  // An M pushed onto allm after this walk read its head syncs after its
  // push, and so after the store above (mcommoninit).
  for (M* m = all_m.load(std::memory_order_seq_cst); m != nullptr;
       m = m->alllink()) {
    m->SyncBypass();
  }
  M* m = internal::tls_m;
  if (m != &internal::unbound_m) m->AdoptCacheBypass();
}

bool CachesBypassed() {
  return caches_bypassed.load(std::memory_order_relaxed);
}

void M::set_mallocing(int v) {
  mallocing_ = v;
  mcache.stackcache.OpenOrders(mallocing_ == 0 && gcing_ == 0);
}

void M::set_gcing(int v) {
  gcing_ = v;
  mcache.stackcache.OpenOrders(mallocing_ == 0 && gcing_ == 0);
}

void mcommoninit(M* m) {
  m->id_ = m_count.fetch_add(1, std::memory_order_relaxed);
  m->fastrand_ = 0x49f6428aU + static_cast<uint32_t>(m->id_);
  for (int k = 0; k < kNumStackOrders; ++k) {
    StackCache& c = m->mcache.stackcache.c[k];
    c.limit = DefaultStackCacheLimit(k);
    c.stack_size = OrderStackSize(k);
    m->stats.orders[k] = &c.stats;
  }
  RegisterMStatsShard(&m->stats);
  m->SyncBypass();
  // seq_cst, like ForkPrepare's walk: a fork that misses this M on allm
  // must see, through the same total order, that its gate is not yet open
  // (SlowPathGate), so the M's first slow path waits for the fork.
  M* head = all_m.load(std::memory_order_relaxed);
  do {
    m->alllink_ = head;
  } while (!all_m.compare_exchange_weak(head, m, std::memory_order_seq_cst,
                                        std::memory_order_relaxed));
  // After the push: a BypassCaches() whose walk missed this M stored its
  // setting before, so this sees it.
  m->SyncBypass();
}

M* allm() { return all_m.load(std::memory_order_acquire); }

int32_t mcount() { return m_count.load(std::memory_order_relaxed); }

namespace {

// An idle M this thread now owns, or nullptr. Never waits: an M a scavenger
// has borrowed is set aside, the next idle one taken, and the borrowed ones
// go back on the list (their borrowers leave them idle).
M* TakeIdleM() {
  M* taken = nullptr;
  idle_ms.Sift(std::numeric_limits<int>::max(), [&taken](M* m) {
    int idle = kMIdle;
    if (!m->owner.compare_exchange_strong(idle, kMBound,
                                          std::memory_order_acquire)) {
      return SiftAction::kPutBack;  // Borrowed by a scavenger.
    }
    idle_count.fetch_sub(1, std::memory_order_relaxed);
    taken = m;
    return SiftAction::kTakeAndStop;
  });
  return taken;
}

// Unbinds the calling thread from m and puts m on the idle list, caches
// intact.
void MakeIdle(M* m) {
  UnminitSignalStack(m);
  internal::tls_m = &internal::unbound_m;
  internal::tls_stackcache = &closed_caches;
  ClearThreadState(m);
  idle_count.fetch_add(1, std::memory_order_relaxed);
  m->owner.store(kMIdle, std::memory_order_release);
  idle_ms.Push(m);
}

// A new, registered M, or nullptr if the OS refused its memory. Ms are
// never freed, so they come straight from SysAlloc (no exception, no heap).
M* NewM() {
  void* mem = SysAlloc(sizeof(M));
  if (mem == nullptr) return nullptr;
  M* m = new (mem) M;
  m->g0()->m = m;
  mcommoninit(m);
  return m;
}

M* BindNewM() {
  const pthread_key_t key = ExitKey();  // Fork handlers first.
  M* m = TakeIdleM();
  if (m == nullptr) m = NewM();
  if (m == nullptr) return nullptr;
  ThreadStackBounds(m->g0());
  internal::tls_m = m;
  m->set_curg(m->g0());
  // Without a signal stack (the OS refused its memory) the thread is bound
  // all the same, since getm() and stackfree() cannot refuse, and every
  // slow path of the thread tries again (SlowPathGate) until it has one.
  m->sigaltstack_missing = !MinitSignalStack(m);
  if (pthread_setspecific(key, m) != 0) {
    // Out of memory for the key's slot: without its exit hook the M would
    // never come back, so the thread goes without one (refused).
    MakeIdle(m);
    return nullptr;
  }
  return m;
}

// Set while the thread binds its first M: a signal handler that calls in
// then would bind again over the half-bound thread (and wait for glibc's
// locks, held by the very call it interrupted).
__thread bool binding ABSL_ATTRIBUTE_INITIAL_EXEC = false;
std::atomic<void (*)()> bind_hook{nullptr};

}  // namespace

M* internal::TryBindM() {
  if (binding) Throw("stackalloc: re-entered from a signal handler");
  binding = true;
  if (void (*hook)() = bind_hook.load(std::memory_order_relaxed)) hook();
  M* m = BindNewM();
  binding = false;
  return m;
}

void internal::PinLibrary() { pthread_once(&pin_once, &PinThisObject); }

void internal::SetBindHook(void (*hook)()) {
  bind_hook.store(hook, std::memory_order_relaxed);
}

M* internal::BindM() {
  M* m = TryBindM();
  if (m == nullptr) Throw("getm: out of memory for a new M");
  return m;
}

namespace {

// The room the kernel keeps between a growing main stack and an accessible
// mapping below it (Linux's stack_guard_gap: 256 pages unless the kernel's
// command line says otherwise).
constexpr uintptr_t kStackGuardGap = uintptr_t{256} << 12;

// What pthread_getattr_np says of the main thread's stack is down to where
// RLIMIT_STACK lets it grow, or to the end of the mapping below it if that
// comes first (an infinite limit, a mapping placed within it): the kernel
// stops the stack kStackGuardGap short of such a mapping. (A mapping that
// ends within the gap below the rlimit's bound, but not at it, is not
// looked for: that takes a probe per page, and mappings are placed at
// least the limit and the gap away from the stack unless placed by hand.)
void TrimMainStack(uintptr_t* lo, uintptr_t hi) {
  if (*lo < kPageSize) return;
  unsigned char resident;
  // mincore fails with ENOMEM for an unmapped page: then nothing is below.
  if (mincore(reinterpret_cast<void*>(*lo - kPageSize), kPageSize, &resident) !=
      0) {
    return;
  }
  *lo = hi - *lo > kStackGuardGap ? *lo + kStackGuardGap : hi;
}

}  // namespace

bool internal::ThreadStack(uintptr_t* lo, uintptr_t* hi) {
  if (ABSL_PREDICT_TRUE(internal::tls_thread_stack_hi != 0)) {
    *lo = internal::tls_thread_stack_lo;
    *hi = internal::tls_thread_stack_hi;
    return true;
  }
  pthread_attr_t attr;
  // glibc allocates here (the main thread's /proc/self/maps, another's CPU
  // affinity): out of memory, the bounds stay unknown, to be asked again.
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return false;
  void* addr = nullptr;
  size_t size = 0;
  pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  uintptr_t l = reinterpret_cast<uintptr_t>(addr);
  const uintptr_t h = l + size;
  // The main thread's stack is the one that holds __libc_stack_end (as
  // glibc decides; a child forked from another thread runs on that
  // thread's stack, which has a fixed size and a guard of glibc's).
  const auto end = reinterpret_cast<uintptr_t>(__libc_stack_end);
  if (l <= end && end <= h) TrimMainStack(&l, h);
  internal::tls_thread_stack_lo = l;
  internal::tls_thread_stack_hi = h;
  *lo = l;
  *hi = h;
  return true;
}

bool internal::CachedThreadStack(uintptr_t* lo, uintptr_t* hi) {
  *lo = internal::tls_thread_stack_lo;
  *hi = internal::tls_thread_stack_hi;
  return *hi != 0;
}

void dropm() {
  M* m = internal::tls_m;
  if (m == &internal::unbound_m) return;
  if (m->curg() != m->g0()) Throw("dropm not on scheduler stack");
  // Clearing a slot the key already has never allocates, so never fails.
  (void)pthread_setspecific(ExitKey(), nullptr);
  MakeIdle(m);
}

// These sizes are computed by whoever asks first; every thread computes the
// same (no static's guard, which a fork could leave taken in the child).

size_t SignalFrameBytes() {
  static std::atomic<size_t> bytes{0};
  size_t b = bytes.load(std::memory_order_relaxed);
  if (b == 0) {
    b = getauxval(AT_MINSIGSTKSZ);  // 0 if unknown.
    if (b == 0) b = MINSIGSTKSZ;
    bytes.store(b, std::memory_order_relaxed);
  }
  return b;
}

size_t SignalFrameReserve() {
  // A small handler's frames: glibc's setxid handler takes a few dozen
  // bytes; this leaves room for a few calls more.
  constexpr size_t kHandlerFrames = 512;
  return (kSignalRedZone + SignalFrameBytes() + kHandlerFrames + 15) &
         ~size_t{15};
}

size_t SignalStackBytes() {
  static std::atomic<size_t> bytes{0};
  size_t b = bytes.load(std::memory_order_relaxed);
  if (b == 0) {
    const size_t want = 8 * SignalFrameBytes();
    b = want > kMinSignalStack ? PageRoundUp(want) : kMinSignalStack;
    bytes.store(b, std::memory_order_relaxed);
  }
  return b;
}

const M* SignalStackGuardHolding(uintptr_t a) {
  for (const M* m = allm(); m != nullptr; m = m->alllink()) {
    const auto lo = reinterpret_cast<uintptr_t>(
        m->sigaltstack.load(std::memory_order_relaxed));
    if (lo != 0 && a < lo && a >= lo - kPageSize) return m;
  }
  return nullptr;
}

int32_t idle_m_count() { return idle_count.load(std::memory_order_relaxed); }

void ForEachIdleM(void (*f)(M* m, void* arg), void* arg) {
  // Every M, claimed one at a time if idle; the idle list stays as it is, so
  // a thread that enters meanwhile takes any idle M but the borrowed one.
  for (M* m = allm(); m != nullptr; m = m->alllink()) {
    int idle = kMIdle;
    if (!m->owner.compare_exchange_strong(idle, kMBorrowed,
                                          std::memory_order_acquire)) {
      continue;
    }
    f(m, arg);
    m->owner.store(kMIdle, std::memory_order_release);
  }
}

}  // namespace stackalloc
