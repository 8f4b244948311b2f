#include "sched/proc.h"

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/base/config.h"
#include "alloc/stack_sizes.h"
#include "alloc/throw.h"
#include "boost/context/detail/fcontext.hpp"
#include "sched/m.h"
#include "stats/mstats.h"

#ifdef ABSL_HAVE_ADDRESS_SANITIZER
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef ABSL_HAVE_THREAD_SANITIZER
#include <sanitizer/tsan_interface.h>
#endif

// Functions whose frames never return (a context's entry, and the last switch
// away from a stack that is about to be freed) must not tell ThreadSanitizer
// they were entered, or each would leave a frame on the G's shadow stack.
#ifdef ABSL_HAVE_THREAD_SANITIZER
#define PROC_NO_TSAN_FRAME __attribute__((no_sanitize("thread")))
#else
#define PROC_NO_TSAN_FRAME
#endif

namespace stackalloc {
namespace proc {
namespace {

using boost::context::detail::fcontext_t;
using boost::context::detail::jump_fcontext;
using boost::context::detail::make_fcontext;
using boost::context::detail::transfer_t;

class Runtime;

// What a G asks of g0 when it switches there.
enum class Req : uint8_t {
  kNone,
  kGosched,      // Queue me and schedule.
  kSystemstack,  // Run req_fn(req_arg) on g0 and resume me.
  kMorestack,    // Give me a segment of req_size bytes; start req_fn there.
  kLessstack,    // My current segment is done: free it, resume the old one.
  kExit,         // My function returned: free my stack and record.
};

// The link record at the top of every segment after a G's first stack: how to
// get back to the segment below (Go's Stktop).
struct Stktop {
  Stktop* prev;       // The previous segment's Stktop, or nullptr.
  fcontext_t oldctx;  // Where the G resumes on the previous segment.
  uintptr_t old_lo;   // Bounds of the previous segment.
  uintptr_t old_hi;
  void* base;  // This segment, as the pool returned it.
  size_t size;
};

// A G of the runtime. Owned by the runtime from Newproc until it finishes;
// at any time either on the run queue, running on one M, or being handled by
// that M's g0. stack_lo / stack_hi (in G) are the bounds of the segment it
// runs on.
struct ProcG : G {
  std::function<void()> fn;
  // Where the G resumes; nullptr until an M first runs it.
  fcontext_t ctx = nullptr;
  // While the G runs: where its M's g0 waits for it.
  fcontext_t g0ctx = nullptr;
  // The request the G left for g0 (see Req), with its arguments.
  Req req = Req::kNone;
  size_t req_size = 0;
  void (*req_fn)(void*) = nullptr;
  void* req_arg = nullptr;
  void* stack = nullptr;  // The first stack, kFixedStack bytes.
  Stktop* top = nullptr;  // The current segment's link; nullptr on `stack`.
  ProcG* schedlink = nullptr;
#ifdef ABSL_HAVE_THREAD_SANITIZER
  void* tsan_fiber = nullptr;
  void* tsan_g0_fiber = nullptr;  // While running: its M's thread.
#endif
};

// One M's part of the runtime, owned by the M's thread; counters readable by
// anyone. On a cache line of its own: `segments` changes on every segment,
// and two Ms' records side by side would bounce that line between cores.
struct alignas(64) Sched {
  M* m = nullptr;
  SingleWriterCounter gs_started;
  SingleWriterCounter gs_finished;
  SingleWriterCounter segments;
  SingleWriterCounter large_segments;
#ifdef ABSL_HAVE_THREAD_SANITIZER
  void* tsan_fiber = nullptr;  // The thread's own.
#endif
};

// A segment of kFixedStack bytes must hold, besides the frame it is for, its
// Stktop, the fcontext record below it, the entry function's frame and the
// guard.
constexpr size_t kSegmentReserve = sizeof(Stktop) + 128 + kStackGuard;

class Runtime {
 public:
  // scheds_ is complete before the runtime is published and never changes
  // after, so ReadProcStats can walk it from any thread at any time.
  explicit Runtime(const Options& options) : options_(options) {
    for (int i = 0; i < options_.gomaxprocs; ++i) {
      scheds_.push_back(std::make_unique<Sched>());
    }
  }

  void StartMs() {
    for (int i = 0; i < options_.gomaxprocs; ++i) {
      threads_.emplace_back(&Runtime::Mstart, this, scheds_[i].get());
    }
  }

  void Ready(ProcG* g) {
    {
      std::lock_guard<std::mutex> l(mu_);
      g->schedlink = nullptr;
      if (runq_tail_ == nullptr) {
        runq_head_ = g;
      } else {
        runq_tail_->schedlink = g;
      }
      runq_tail_ = g;
      if (idle_ms_ == 0) return;
    }
    work_.notify_one();
  }

  void Newproc(std::function<void()> fn) {
    auto* g = new ProcG;
    g->fn = std::move(fn);
    {
      std::lock_guard<std::mutex> l(mu_);
      ++live_;
    }
    Ready(g);
  }

  void Wait() {
    std::unique_lock<std::mutex> l(mu_);
    all_done_.wait(l, [this] { return live_ == 0; });
  }

  void Stop() {
    Wait();
    {
      std::lock_guard<std::mutex> l(mu_);
      stopping_ = true;
    }
    work_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  ProcStats Read() const {
    ProcStats st;
    for (const auto& s : scheds_) {
      st.gs_started += s->gs_started.value();
      st.gs_finished += s->gs_finished.value();
      st.segments += s->segments.value();
      st.large_segments += s->large_segments.value();
    }
    return st;
  }

 private:
  // An M's thread: the scheduler loop, on g0.
  void Mstart(Sched* s);
  // Runs g until it queues itself or exits, serving its requests on g0.
  void Execute(Sched* s, ProcG* g);
  // Blocks for the next runnable G; nullptr when the runtime stops.
  ProcG* Dequeue();
  void Newstack(Sched* s, ProcG* g);
  void Oldstack(ProcG* g);
  void Gfree(Sched* s, ProcG* g);

  const Options options_;
  std::vector<std::unique_ptr<Sched>> scheds_;
  std::vector<std::thread> threads_;

  std::mutex mu_;
  std::condition_variable work_;      // Signalled when a G is queued.
  std::condition_variable all_done_;  // Signalled when live_ drops to 0.
  ProcG* runq_head_ = nullptr;        // FIFO through schedlink.
  ProcG* runq_tail_ = nullptr;
  int idle_ms_ = 0;   // Ms waiting on work_.
  int64_t live_ = 0;  // Gs spawned and not finished.
  bool stopping_ = false;
};

// The running runtime. Start, Wait and Stop come from one controlling
// thread; Gs, Ms and ReadProcStats may look at it at any time, so it is
// published atomically and never waited on under a lock.
std::atomic<Runtime*> the_runtime{nullptr};
std::mutex stats_mu;
ProcStats last_stats;  // Of the last runtime stopped; guarded by stats_mu.

Runtime* TheRuntime() { return the_runtime.load(std::memory_order_acquire); }

// The G running on this thread, or nullptr on g0 or an ordinary thread.
// Out of line and behind a compiler barrier so that the thread-local M is
// read anew after every switch: a G may resume on another thread.
ABSL_ATTRIBUTE_NOINLINE ProcG* CurrentG() {
  M* m = stackalloc::internal::tls_m;
  asm volatile("" : "+r"(m));
  G* g = m->curg();
  if (g == nullptr || g == m->g0()) return nullptr;
  return static_cast<ProcG*>(g);
}

// --- Switching. Every switch is bracketed for ASan (the stack changes) and
// TSan (the fiber changes), in the order their documentation asks for. ---

// g0 -> g. Returns when g switches back; g->ctx is then where it resumes.
void SwitchToG(Sched* s, ProcG* g) {
#ifdef ABSL_HAVE_ADDRESS_SANITIZER
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, reinterpret_cast<void*>(g->stack_lo),
                                 g->stack_hi - g->stack_lo);
#endif
#ifdef ABSL_HAVE_THREAD_SANITIZER
  g->tsan_g0_fiber = s->tsan_fiber;
  __tsan_switch_to_fiber(g->tsan_fiber, 0);
#else
  (void)s;
#endif
  transfer_t t = jump_fcontext(g->ctx, g);
  g->ctx = t.fctx;
#ifdef ABSL_HAVE_ADDRESS_SANITIZER
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

// The switch from a G to its g0, everything but the jump. Always inlined:
// under TSan the fiber must change in the frame that jumps, or the frame's
// exit would be recorded on the other fiber's shadow stack.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void BeforeMcall(ProcG* g, void** fake) {
#ifdef ABSL_HAVE_ADDRESS_SANITIZER
  G* g0 = g->m->g0();
  __sanitizer_start_switch_fiber(fake, reinterpret_cast<void*>(g0->stack_lo),
                                 g0->stack_hi - g0->stack_lo);
#else
  (void)fake;
#endif
#ifdef ABSL_HAVE_THREAD_SANITIZER
  __tsan_switch_to_fiber(g->tsan_g0_fiber, 0);
#else
  (void)g;
#endif
}

// The first thing on a stack a G has just been switched to.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void AfterResume(void* fake) {
#ifdef ABSL_HAVE_ADDRESS_SANITIZER
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  (void)fake;
#endif
}

// G -> g0 with request r (Go's mcall); returns when g0 resumes the G, maybe on
// another M.
void Mcall(ProcG* g, Req r) {
  g->req = r;
  void* fake = nullptr;
  BeforeMcall(g, &fake);
  transfer_t t = jump_fcontext(g->g0ctx, nullptr);
  g->g0ctx = t.fctx;
  AfterResume(fake);
}

// G -> g0 for the last time on this stack, which g0 then frees.
[[noreturn]] PROC_NO_TSAN_FRAME void McallDrop(ProcG* g, Req r) {
  g->req = r;
  BeforeMcall(g, nullptr);  // nullptr: ASan drops the stack's fake frames.
  jump_fcontext(g->g0ctx, nullptr);
  __builtin_unreachable();
}

ABSL_ATTRIBUTE_NOINLINE void RunG(ProcG* g) noexcept { g->fn(); }

// Where a G starts, on its first stack.
[[noreturn]] PROC_NO_TSAN_FRAME void Gentry(transfer_t t) noexcept {
  auto* g = static_cast<ProcG*>(t.data);
  g->g0ctx = t.fctx;
  AfterResume(nullptr);
  RunG(g);
  McallDrop(g, Req::kExit);
}

// Where a segment starts: run the continuation, then back to the old segment.
[[noreturn]] PROC_NO_TSAN_FRAME void SegmentEntry(transfer_t t) noexcept {
  auto* g = static_cast<ProcG*>(t.data);
  g->g0ctx = t.fctx;
  AfterResume(nullptr);
  void (*fn)(void*) = g->req_fn;
  fn(g->req_arg);
  McallDrop(g, Req::kLessstack);
}

// Frames that never returned leave ASan redzones behind; clear them before
// the stack goes back to the pool (stackalloc poisons free stacks itself).
inline void UnpoisonDeadStack(void* v, size_t n) {
#ifdef ABSL_HAVE_ADDRESS_SANITIZER
  ASAN_UNPOISON_MEMORY_REGION(v, n);
#else
  (void)v;
  (void)n;
#endif
}

// --- The scheduler, on g0. ---

void Runtime::Mstart(Sched* s) {
  s->m = getm();
#ifdef ABSL_HAVE_THREAD_SANITIZER
  s->tsan_fiber = __tsan_get_current_fiber();
#endif
  while (ProcG* g = Dequeue()) Execute(s, g);
}

ProcG* Runtime::Dequeue() {
  std::unique_lock<std::mutex> l(mu_);
  while (runq_head_ == nullptr && !stopping_) {
    ++idle_ms_;
    work_.wait(l);
    --idle_ms_;
  }
  ProcG* g = runq_head_;
  if (g != nullptr) {
    runq_head_ = g->schedlink;
    if (runq_head_ == nullptr) runq_tail_ = nullptr;
  }
  return g;
}

void Runtime::Execute(Sched* s, ProcG* g) {
  M* m = s->m;
  if (g->ctx == nullptr) {
    // First run: the stack is allocated here, on g0.
    void* v = options_.pool.alloc(kFixedStack);
    if (v == nullptr) Throw("newproc: out of stack memory");
    g->stack = v;
    g->stack_lo = reinterpret_cast<uintptr_t>(v);
    g->stack_hi = g->stack_lo + kFixedStack;
    g->ctx = make_fcontext(reinterpret_cast<void*>(g->stack_hi), kFixedStack,
                           &Gentry);
#ifdef ABSL_HAVE_THREAD_SANITIZER
    g->tsan_fiber = __tsan_create_fiber(0);
#endif
    s->gs_started.Add(1);
  }
  for (;;) {
    g->m = m;
    m->set_curg(g);
    SwitchToG(s, g);
    m->set_curg(m->g0());
    switch (g->req) {
      case Req::kGosched:
        g->req = Req::kNone;
        Ready(g);
        return;
      case Req::kSystemstack:
        g->req_fn(g->req_arg);
        break;
      case Req::kMorestack:
        Newstack(s, g);
        break;
      case Req::kLessstack:
        Oldstack(g);
        break;
      case Req::kExit:
        Gfree(s, g);
        return;
      case Req::kNone:
        Throw("schedule: G switched to g0 without a request");
    }
    g->req = Req::kNone;
  }
}

// Go's newstack: a segment for a frame of g->req_size bytes; g resumes in
// SegmentEntry on it.
void Runtime::Newstack(Sched* s, ProcG* g) {
  size_t n = kFixedStack;
  if (g->req_size > kFixedStack - kSegmentReserve) {
    // Larger than a segment: the general path, at the size it needs.
    n = (g->req_size + kSegmentReserve + 15) & ~size_t{15};
    s->large_segments.Add(1);
  }
  void* v = options_.pool.alloc(n);
  if (v == nullptr) Throw("morestack: out of stack memory");
  s->segments.Add(1);
  uintptr_t lo = reinterpret_cast<uintptr_t>(v);
  auto* top =
      reinterpret_cast<Stktop*>((lo + n - sizeof(Stktop)) & ~uintptr_t{15});
  top->prev = g->top;
  top->oldctx = g->ctx;
  top->old_lo = g->stack_lo;
  top->old_hi = g->stack_hi;
  top->base = v;
  top->size = n;
  g->top = top;
  g->stack_lo = lo;
  g->stack_hi = lo + n;
  g->ctx =
      make_fcontext(top, reinterpret_cast<uintptr_t>(top) - lo, &SegmentEntry);
}

// Go's oldstack: back to the segment below, freeing the current one.
void Runtime::Oldstack(ProcG* g) {
  Stktop top = *g->top;
  g->top = top.prev;
  g->ctx = top.oldctx;
  g->stack_lo = top.old_lo;
  g->stack_hi = top.old_hi;
  UnpoisonDeadStack(top.base, top.size);
  options_.pool.free(top.base, top.size);
}

void Runtime::Gfree(Sched* s, ProcG* g) {
  if (g->top != nullptr) Throw("goexit: G exits on a stack segment");
  UnpoisonDeadStack(g->stack, kFixedStack);
  options_.pool.free(g->stack, kFixedStack);
#ifdef ABSL_HAVE_THREAD_SANITIZER
  __tsan_destroy_fiber(g->tsan_fiber);
#endif
  s->gs_finished.Add(1);
  delete g;  // And its function, on g0.
  bool done;
  {
    std::lock_guard<std::mutex> l(mu_);
    done = --live_ == 0;
  }
  if (done) all_done_.notify_all();
}

}  // namespace

void Start(const Options& options) {
  if (options.gomaxprocs < 1) Throw("proc: gomaxprocs < 1");
  if (TheRuntime() != nullptr) {
    Throw("proc: Start while a runtime runs (Stop it first)");
  }
  auto* rt = new Runtime(options);
  the_runtime.store(rt, std::memory_order_release);
  rt->StartMs();
}

void Wait() {
  if (Runtime* rt = TheRuntime()) rt->Wait();
}

void Stop() {
  Runtime* rt = TheRuntime();
  if (rt == nullptr) return;
  rt->Stop();  // Every G finished and every M ended.
  {
    std::lock_guard<std::mutex> l(stats_mu);
    last_stats = rt->Read();
    the_runtime.store(nullptr, std::memory_order_release);
  }
  delete rt;
}

ProcStats ReadProcStats() {
  std::lock_guard<std::mutex> l(stats_mu);
  Runtime* rt = TheRuntime();
  return rt != nullptr ? rt->Read() : last_stats;
}

void Gosched() {
  ProcG* g = CurrentG();
  if (g == nullptr) return;
  Mcall(g, Req::kGosched);
}

namespace internal {

size_t StackRoom() {
  M* m = stackalloc::internal::tls_m;
  asm volatile("" : "+r"(m));
  const G* g = m->curg();
  if (ABSL_PREDICT_FALSE(g == nullptr)) return ~size_t{0};
  uintptr_t sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  uintptr_t limit = g->stack_lo + kStackGuard;
  return sp > limit ? sp - limit : 0;
}

void Morestack(size_t n, void (*fn)(void*), void* arg) {
  ProcG* g = CurrentG();
  if (g == nullptr) Throw("morestack on g0");
  g->req_size = n;
  g->req_fn = fn;
  g->req_arg = arg;
  Mcall(g, Req::kMorestack);
}

void Systemstack(void (*fn)(void*), void* arg) {
  ProcG* g = CurrentG();
  if (g == nullptr) return fn(arg);
  g->req_fn = fn;
  g->req_arg = arg;
  Mcall(g, Req::kSystemstack);
}

void Newproc(std::function<void()> fn) {
  Runtime* rt = TheRuntime();
  if (rt == nullptr) Throw("go: no runtime (call proc::Start first)");
  rt->Newproc(std::move(fn));
}

}  // namespace internal
}  // namespace proc
}  // namespace stackalloc
