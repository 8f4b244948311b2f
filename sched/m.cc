#include "sched/m.h"

#include <pthread.h>
#include <signal.h>

#include <thread>

#include "absl/base/attributes.h"
#include "alloc/lock_free_stack.h"
#include "alloc/sys_alloc.h"
#include "base/check.h"
#include "base/throw.h"

namespace stackalloc {
namespace {

std::atomic<M*> all_m{nullptr};
std::atomic<int32_t> m_count{0};
LockFreeStack<M, &M::idlelink> idle_ms;
std::atomic<int32_t> idle_count{0};

// Every cache closed (limit 0); `orders` points back at itself. Constant
// initialised: usable by another translation unit's static initialisers.
ABSL_CONST_INIT StackCaches closed_caches;

// Bounds of the calling thread's own stack, for its g0.
void ThreadStackBounds(G* g) {
  pthread_attr_t attr;
  void* addr = nullptr;
  size_t size = 0;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) {
    Throw("getm: cannot read the thread's stack bounds");
  }
  pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  g->stack_lo = reinterpret_cast<uintptr_t>(addr);
  g->stack_hi = g->stack_lo + size;
}

// Gives the thread the M's alternate signal stack unless it has one (Go's
// minitSignalStack): the overflow handler runs on it, since the stack that
// overflowed has no room left.
void MinitSignalStack(M* m) {
  m->sigaltstack_installed = false;
  if (m->sigaltstack == nullptr) return;
  stack_t old;
  if (sigaltstack(nullptr, &old) != 0 || (old.ss_flags & SS_DISABLE) == 0) {
    return;  // The thread has one (the user's, a sanitizer's): keep it.
  }
  stack_t st{};
  st.ss_sp = m->sigaltstack;
  st.ss_size = kSignalStackBytes;
  m->sigaltstack_installed = sigaltstack(&st, nullptr) == 0;
}

// Takes the M's signal stack back from the thread (Go's unminitSignalStack),
// before another thread may get the M.
void UnminitSignalStack(M* m) {
  if (!m->sigaltstack_installed) return;
  stack_t st{};
  st.ss_flags = SS_DISABLE;
  sigaltstack(&st, nullptr);
  m->sigaltstack_installed = false;
}

// Gives the thread's M back when the thread exits. A pthread key's destructor
// runs after every C++ thread_local destructor (which may still free stacks),
// and runs again if another key's destructor binds the thread anew.
void DropAtExit(void*) { dropm(); }

pthread_key_t ExitKey() {
  static const pthread_key_t key = [] {
    pthread_key_t k;
    if (pthread_key_create(&k, &DropAtExit) != 0) {
      Throw("getm: cannot create the thread-exit key");
    }
    return k;
  }();
  return key;
}

// Idle Ms out with ForEachIdleM; getm() waits for them before creating one.
std::atomic<int32_t> idle_borrowers{0};

}  // namespace

namespace internal {
ABSL_CONST_INIT M unbound_m;
__thread M* tls_m ABSL_ATTRIBUTE_INITIAL_EXEC = &internal::unbound_m;
__thread StackCaches* tls_stackcache ABSL_ATTRIBUTE_INITIAL_EXEC =
    &closed_caches;
}  // namespace internal

StackCaches* ClosedStackCaches() { return &closed_caches; }

void M::set_curg(G* g) {
  STACKALLOC_DCHECK(internal::tls_m == this);
  curg_ = g;
  internal::tls_stackcache = g == &g0_ ? &stackcache : &closed_caches;
}

void M::UpdateOrderCaches() {
  stackcache.orders =
      mallocing_ != 0 || gcing_ != 0 ? &closed_caches : &stackcache;
}

void M::set_mallocing(int v) {
  mallocing_ = v;
  UpdateOrderCaches();
}

void M::set_gcing(int v) {
  gcing_ = v;
  UpdateOrderCaches();
}

void mcommoninit(M* m) {
  m->id_ = m_count.fetch_add(1, std::memory_order_relaxed);
  m->fastrand_ = 0x49f6428aU + static_cast<uint32_t>(m->id_);
  for (int k = 0; k < kNumStackOrders; ++k) {
    StackCache& c = m->stackcache.c[k];
    c.limit = DefaultStackCacheLimit(k);
    c.stack_size = OrderStackSize(k);
    m->stats.orders[k] = &c.stats;
  }
  m->UpdateOrderCaches();
  m->sigaltstack = SysAlloc(kSignalStackBytes);  // nullptr: go without.
  RegisterMStatsShard(&m->stats);
  M* head = all_m.load(std::memory_order_relaxed);
  do {
    m->alllink_ = head;
  } while (!all_m.compare_exchange_weak(head, m, std::memory_order_release,
                                        std::memory_order_relaxed));
}

M* allm() { return all_m.load(std::memory_order_acquire); }

int32_t mcount() { return m_count.load(std::memory_order_relaxed); }

M* internal::BindM() {
  M* m = idle_ms.Pop();
  while (m == nullptr && idle_borrowers.load(std::memory_order_acquire) > 0) {
    std::this_thread::yield();
    m = idle_ms.Pop();
  }
  if (m != nullptr) {
    idle_count.fetch_sub(1, std::memory_order_relaxed);
  } else {
    m = new M;
    m->g0()->m = m;
    mcommoninit(m);
  }
  ThreadStackBounds(m->g0());
  internal::tls_m = m;
  m->set_curg(m->g0());
  MinitSignalStack(m);
  pthread_setspecific(ExitKey(), m);
  return m;
}

void dropm() {
  M* m = internal::tls_m;
  if (m == &internal::unbound_m) return;
  if (m->curg() != m->g0()) Throw("dropm not on scheduler stack");
  UnminitSignalStack(m);
  internal::tls_m = &internal::unbound_m;
  internal::tls_stackcache = &closed_caches;
  pthread_setspecific(ExitKey(), nullptr);
  m->set_mallocing(0);
  m->set_gcing(0);
  idle_count.fetch_add(1, std::memory_order_relaxed);
  idle_ms.Push(m);
}

int32_t idle_m_count() { return idle_count.load(std::memory_order_relaxed); }

void ForEachIdleM(void (*f)(M* m, void* arg), void* arg) {
  idle_borrowers.fetch_add(1, std::memory_order_acq_rel);
  // Take them all at once: each is then ours alone until pushed back.
  M* list = idle_ms.PopAll();
  while (list != nullptr) {
    M* m = list;
    list = m->idlelink.load(std::memory_order_relaxed);
    f(m, arg);
    idle_ms.Push(m);
  }
  idle_borrowers.fetch_sub(1, std::memory_order_acq_rel);
}

}  // namespace stackalloc
