// The scheduler of the fiber runtime: Ms, the run queue, G lifecycle, and the
// public entry points of proc.h. Switching is in switch.cc, segments in
// stack.cc.

#include "proc/proc.h"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/base/thread_annotations.h"
#include "base/check.h"
#include "base/sanitizers.h"
#include "base/stack_sizes.h"
#include "base/throw.h"
#include "proc/g.h"
#include "proc/stack.h"
#include "proc/switch.h"
#include "sched/m.h"
#include "stats/mstats.h"

namespace stackalloc {
namespace proc {
namespace internal {
namespace {

// One M's part of the runtime, owned by the M's thread; counters readable by
// anyone. On a cache line of its own: `segments` changes on every segment,
// and two Ms' records side by side would bounce that line between cores.
struct alignas(64) Sched {
  M* m = nullptr;
  SingleWriterCounter gs_started;
  SingleWriterCounter gs_finished;
  SingleWriterCounter segments;
  SingleWriterCounter large_segments;
  void* tsan_fiber = nullptr;  // The thread's own (nullptr without TSan).
};

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

  void Ready(ProcG* g);
  void Newproc(std::function<void()> fn);
  void Wait();
  void Stop();
  ProcStats Read() const;

 private:
  // An M's thread: the scheduler loop, on g0.
  void Mstart(Sched* s);
  // Runs g until it queues itself or exits, serving its requests on g0.
  void Execute(Sched* s, ProcG* g);
  // Gives g its first stack and context.
  void Gstart(Sched* s, ProcG* g);
  // Serves g's request on g0; returns false when g left this M.
  bool Serve(Sched* s, ProcG* g);
  // Blocks for the next runnable G; nullptr when the runtime stops.
  ProcG* Dequeue();
  void Gfree(Sched* s, ProcG* g);

  const Options options_;
  std::vector<std::unique_ptr<Sched>> scheds_;
  std::vector<std::thread> threads_;

  std::mutex mu_;
  std::condition_variable work_;      // Signalled when a G is queued.
  std::condition_variable all_done_;  // Signalled when live_ drops to 0.
  ProcG* runq_head_ ABSL_GUARDED_BY(mu_) = nullptr;  // FIFO via schedlink.
  ProcG* runq_tail_ ABSL_GUARDED_BY(mu_) = nullptr;
  int idle_ms_ ABSL_GUARDED_BY(mu_) = 0;   // Ms waiting on work_.
  int64_t live_ ABSL_GUARDED_BY(mu_) = 0;  // Gs spawned and not finished.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

// The running runtime. Start, Wait and Stop come from one controlling
// thread; Gs, Ms and ReadProcStats may look at it at any time, so it is
// published atomically and never waited on under a lock.
std::atomic<Runtime*> the_runtime{nullptr};
std::mutex stats_mu;
// Of the last runtime stopped.
ProcStats last_stats ABSL_GUARDED_BY(stats_mu);

Runtime* TheRuntime() { return the_runtime.load(std::memory_order_acquire); }

ABSL_ATTRIBUTE_NOINLINE void RunG(ProcG* g) noexcept { g->fn(); }

// Where a G starts, on its first stack.
[[noreturn]] STACKALLOC_NO_TSAN_FRAME void Gentry(transfer_t t) noexcept {
  auto* g = static_cast<ProcG*>(t.data);
  g->g0ctx = t.fctx;
  AfterResume(nullptr);
  RunG(g);
  McallDrop(g, Req::kExit);
}

void Runtime::Ready(ProcG* g) {
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

void Runtime::Newproc(std::function<void()> fn) {
  auto* g = new ProcG;
  g->fn = std::move(fn);
  {
    std::lock_guard<std::mutex> l(mu_);
    ++live_;
  }
  Ready(g);
}

void Runtime::Wait() {
  std::unique_lock<std::mutex> l(mu_);
  all_done_.wait(
      l, [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return live_ == 0; });
}

void Runtime::Stop() {
  Wait();
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  work_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

ProcStats Runtime::Read() const {
  ProcStats st;
  for (const auto& s : scheds_) {
    st.gs_started += s->gs_started.value();
    st.gs_finished += s->gs_finished.value();
    st.segments += s->segments.value();
    st.large_segments += s->large_segments.value();
  }
  return st;
}

void Runtime::Mstart(Sched* s) {
  s->m = getm();
  s->tsan_fiber = sanitizer::CurrentFiber();
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

void Runtime::Gstart(Sched* s, ProcG* g) {
  void* v = options_.stack_source.alloc(kFixedStack);
  if (v == nullptr) Throw("newproc: out of stack memory");
  g->stack = v;
  g->stack_lo = reinterpret_cast<uintptr_t>(v);
  g->stack_hi = g->stack_lo + kFixedStack;
  g->ctx =
      MakeContext(reinterpret_cast<void*>(g->stack_hi), kFixedStack, &Gentry);
  g->tsan_fiber = sanitizer::CreateFiber();
  s->gs_started.Add(1);
}

void Runtime::Execute(Sched* s, ProcG* g) {
  M* m = s->m;
  if (g->ctx == nullptr) Gstart(s, g);
  do {
    g->m = m;
    m->set_curg(g);
    SwitchToG(g, s->tsan_fiber);
    m->set_curg(m->g0());
  } while (Serve(s, g));
}

bool Runtime::Serve(Sched* s, ProcG* g) {
  const Req r = g->req;
  g->req = Req::kNone;
  switch (r) {
    case Req::kGosched:
      Ready(g);
      return false;
    case Req::kSystemstack:
      g->req_fn(g->req_arg);
      return true;
    case Req::kMorestack:
      if (Newstack(g, options_.stack_source) > kFixedStack) {
        s->large_segments.Add(1);
      }
      s->segments.Add(1);
      STACKALLOC_DCHECK((CheckSegmentChain(g), true));
      return true;
    case Req::kLessstack:
      Oldstack(g, options_.stack_source);
      return true;
    case Req::kExit:
      Gfree(s, g);
      return false;
    case Req::kNone:
      break;
  }
  Throw("schedule: G switched to g0 without a request");
}

void Runtime::Gfree(Sched* s, ProcG* g) {
  if (g->top != nullptr) Throw("goexit: G exits on a stack segment");
  // Frames that never returned leave ASan redzones behind.
  sanitizer::UnpoisonMemory(g->stack, kFixedStack);
  options_.stack_source.free(g->stack, kFixedStack);
  sanitizer::DestroyFiber(g->tsan_fiber);
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

ProcG* CurrentG() {
  M* m = stackalloc::internal::tls_m;
  asm volatile("" : "+r"(m));
  G* g = m->curg();
  if (g == nullptr || g == m->g0()) return nullptr;
  return static_cast<ProcG*>(g);
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

void Start(const Options& options) {
  if (options.gomaxprocs < 1) Throw("proc: gomaxprocs < 1");
  if (internal::TheRuntime() != nullptr) {
    Throw("proc: Start while a runtime runs (Stop it first)");
  }
  auto* rt = new internal::Runtime(options);
  internal::the_runtime.store(rt, std::memory_order_release);
  rt->StartMs();
}

void Wait() {
  if (internal::Runtime* rt = internal::TheRuntime()) rt->Wait();
}

void Stop() {
  internal::Runtime* rt = internal::TheRuntime();
  if (rt == nullptr) return;
  rt->Stop();  // Every G finished and every M ended.
  {
    std::lock_guard<std::mutex> l(internal::stats_mu);
    internal::last_stats = rt->Read();
    internal::the_runtime.store(nullptr, std::memory_order_release);
  }
  delete rt;
}

ProcStats ReadProcStats() {
  std::lock_guard<std::mutex> l(internal::stats_mu);
  internal::Runtime* rt = internal::TheRuntime();
  return rt != nullptr ? rt->Read() : internal::last_stats;
}

void Gosched() {
  internal::ProcG* g = internal::CurrentG();
  if (g == nullptr) return;
  internal::Mcall(g, internal::Req::kGosched);
}

}  // namespace proc
}  // namespace stackalloc
