#include "sched/m.h"

#include <pthread.h>

#include "absl/base/attributes.h"
#include "alloc/lock_free_stack.h"
#include "alloc/throw.h"

namespace stackalloc {
namespace {

std::atomic<M*> all_m{nullptr};
std::atomic<int32_t> m_count{0};
LockFreeStack<M, &M::idlelink> idle_ms;
std::atomic<int32_t> idle_count{0};

ABSL_CONST_INIT M unbound_m;

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

// Gives the thread's M back when the thread exits. Constructed (and its
// destructor registered) on a thread's first getm().
__thread bool thread_exited = false;
struct ThreadExit {
  bool armed = false;
  ~ThreadExit() {
    thread_exited = true;
    if (armed) dropm();
  }
};
thread_local ThreadExit thread_exit;

}  // namespace

namespace internal {
__thread M* tls_m ABSL_ATTRIBUTE_INITIAL_EXEC = &unbound_m;
M* UnboundM() { return &unbound_m; }
}  // namespace internal

void* DefaultStackChunk(size_t n) {
  return SysAllocAligned(n, FixAlloc::kChunk);
}

std::atomic<FixAlloc::ChunkSource> stack_chunk_source{&DefaultStackChunk};

void* StackChunk(size_t n) {
  return stack_chunk_source.load(std::memory_order_acquire)(n);
}

void SetStackChunkSource(FixAlloc::ChunkSource source) {
  stack_chunk_source.store(source != nullptr ? source : &DefaultStackChunk,
                           std::memory_order_release);
}

void mcommoninit(M* m) {
  m->id_ = m_count.fetch_add(1, std::memory_order_relaxed);
  m->fastrand_ = 0x49f6428aU + static_cast<uint32_t>(m->id_);
  m->stackalloc.Init(kFixedStack, &StackChunk);
  RegisterMStatsShard(&m->stats);
  M* head = all_m.load(std::memory_order_relaxed);
  do {
    m->alllink_ = head;
  } while (!all_m.compare_exchange_weak(head, m, std::memory_order_release,
                                        std::memory_order_relaxed));
}

M* allm() { return all_m.load(std::memory_order_acquire); }

int32_t mcount() { return m_count.load(std::memory_order_relaxed); }

M* getm() {
  M* m = internal::tls_m;
  if (ABSL_PREDICT_TRUE(m != &unbound_m)) return m;
  m = idle_ms.Pop();
  if (m != nullptr) {
    idle_count.fetch_sub(1, std::memory_order_relaxed);
  } else {
    m = new M;
    m->g0()->m = m;
    mcommoninit(m);
  }
  ThreadStackBounds(m->g0());
  m->set_curg(m->g0());
  internal::tls_m = m;
  // A stack call from a later thread_local destructor binds an M once more;
  // thread_exit is gone by then, so that M stays with the dead thread.
  if (!thread_exited) thread_exit.armed = true;
  return m;
}

void dropm() {
  M* m = internal::tls_m;
  if (m == &unbound_m) return;
  if (m->curg() != m->g0()) Throw("dropm not on scheduler stack");
  internal::tls_m = &unbound_m;
  m->mallocing = 0;
  m->gcing = 0;
  idle_count.fetch_add(1, std::memory_order_relaxed);
  idle_ms.Push(m);
}

int32_t idle_m_count() { return idle_count.load(std::memory_order_relaxed); }

}  // namespace stackalloc
