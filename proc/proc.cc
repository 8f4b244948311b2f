// The fiber runtime's G lifecycle (spawn, run, serve, exit, reuse) and the
// public entry points of proc.h. The scheduler loop and its queues are in
// schedule.cc, switching in switch.cc, segments in stack.cc.

#include "proc/proc.h"

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>

#include "absl/base/attributes.h"
#include "absl/base/thread_annotations.h"
#include "base/check.h"
#include "base/sanitizers.h"
#include "base/stack_sizes.h"
#include "base/throw.h"
#include "proc/g.h"
#include "proc/runq.h"
#include "proc/sched.h"
#include "proc/stack.h"
#include "proc/switch.h"
#include "sched/m.h"

namespace stackalloc {
namespace proc {
namespace internal {
namespace {

// The running runtime. Start and Stop publish and retract it under
// control_mu; everyone else reads it with one acquire load.
std::atomic<Runtime*> the_runtime{nullptr};
// Start and Stop's teardown (never held while waiting for Gs: a G may fork).
std::mutex control_mu;
std::mutex stats_mu;
ProcStats last_stats ABSL_GUARDED_BY(stats_mu);  // Of the last runtime.
// Set in the child of a fork() taken while a runtime ran, until the next
// Start: that runtime's Ms are gone, and it is abandoned.
std::atomic<bool> forked_away{false};

Runtime* TheRuntime() { return the_runtime.load(std::memory_order_acquire); }

[[noreturn]] ABSL_ATTRIBUTE_NOINLINE void ExceptionEscaped(const ProcG* g) {
  RawBuffer b;
  b.Str("goroutine ").Dec(g->goid).Str(": an exception escaped its function");
  ThrowOnG0(b.c_str());
}

ABSL_ATTRIBUTE_NOINLINE void RunG(ProcG* g) noexcept {
  try {
    g->fn.Run();
  } catch (...) {
    ExceptionEscaped(g);
  }
}

// Where a G starts, on its first stack.
[[noreturn]] STACKALLOC_NO_TSAN_FRAME void Gentry(transfer_t t) noexcept {
  auto* g = static_cast<ProcG*>(t.data);
  g->g0ctx = t.fctx;
  AfterResume(nullptr);
  RunG(g);
  McallDrop(g, Req::kExit);
}

void DropFiber(ProcG* g) {
  if (g->tsan_fiber == nullptr) return;
  sanitizer::DestroyFiber(g->tsan_fiber);
  g->tsan_fiber = nullptr;
}

[[noreturn]] void NoRuntime(const char* what) {
  RawBuffer b;
  b.Str(what);
  if (forked_away.load(std::memory_order_relaxed)) {
    b.Str(
        ": the runtime did not survive fork() (its Ms are gone); "
        "call proc::Start for a new one in the child");
  } else {
    b.Str(": no runtime (call proc::Start first)");
  }
  ThrowOnG0(b.c_str());
}

// Start, Wait and Stop block the caller until Gs finish or Ms end: from a G
// or an M's scheduler stack that could never happen.
void CheckControlContext(const char* what) {
  const char* where = nullptr;
  if (CurrentG() != nullptr) {
    where = " called from a G (it would wait for itself)";
  } else if (CurrentSched() != nullptr) {
    where = " called on an M's scheduler stack (it would wait for itself)";
  }
  if (where == nullptr) return;
  RawBuffer b;
  b.Str("proc: ").Str(what).Str(where);
  ThrowOnG0(b.c_str());
}

}  // namespace

Runtime::Runtime(const Options& options)
    : options_(options), nprocs_(options.gomaxprocs) {
  for (int i = 0; i < nprocs_; ++i) {
    scheds_.push_back(std::make_unique<Sched>());
    scheds_.back()->id = i;
    scheds_.back()->stack_source = &options_.stack_source;
  }
}

Runtime::~Runtime() = default;

void Runtime::StartMs() {
  for (int i = 0; i < nprocs_; ++i) {
    threads_.emplace_back(&Runtime::Mstart, this, scheds_[i].get());
  }
}

ProcG* Runtime::Gget() {
  Sched* s = CurrentSched();
  ProcG* g;
  if (s != nullptr) {
    g = Gfget(s);
  } else {
    std::lock_guard<std::mutex> l(gfree_mu_);
    g = gfree_.PopFront();
  }
  if (g == nullptr) {
    // A new record, on g0: malloc may want more stack than a G reserves.
    proc::Systemstack([&] { g = Malg(s); });
  }
  if (s == nullptr) {
    g->goid = goidgen_.fetch_add(1, std::memory_order_relaxed);
  } else {
    if (s->goid_next == s->goid_end) {
      s->goid_next = goidgen_.fetch_add(kGoidBatch, std::memory_order_relaxed);
      s->goid_end = s->goid_next + kGoidBatch;
    }
    g->goid = s->goid_next++;
  }
  return g;
}

void Runtime::Ready(ProcG* g) {
  if (Sched* s = CurrentSched()) return Runqput(s, g);
  GList one;
  one.PushBack(g);
  Globrunqput(&one);
  Wakep();
}

void Runtime::Gabort(ProcG* g) {
  g->fn.Destroy();
  if (Sched* s = CurrentSched()) return Gfput(s, g);
  std::lock_guard<std::mutex> l(gfree_mu_);
  gfree_.PushFront(g);
}

ProcG* Runtime::Malg(Sched* s) {
  auto* g = new ProcG;
  if (s != nullptr) {
    s->g_allocs.Add(1);
  } else {
    g_allocs_.fetch_add(1, std::memory_order_relaxed);
  }
  return g;
}

void Runtime::Gfput(Sched* s, ProcG* g) {
  s->gfree.PushFront(g);  // LIFO: the next spawn gets the warmest stack.
  if (s->gfree.n < kGfreeMax) return;
  GList cold;
  s->gfree.SplitAfter(kGfreeKeep, &cold);
  std::lock_guard<std::mutex> l(gfree_mu_);
  gfree_.Append(&cold);
}

ProcG* Runtime::Gfget(Sched* s) {
  if (ProcG* g = s->gfree.PopFront()) return g;
  std::lock_guard<std::mutex> l(gfree_mu_);
  for (int i = 0; i < kGfreeBatch; ++i) {
    ProcG* g = gfree_.PopFront();
    if (g == nullptr) break;
    s->gfree.PushBack(g);
  }
  return s->gfree.PopFront();
}

void Runtime::Gdestroy(ProcG* g) {
  FreeSegcache(g, options_.stack_source);
  if (g->stack != nullptr) {
    sanitizer::UnpoisonMemory(g->stack, kFixedStack);
    options_.stack_source.free(g->stack, kFixedStack);
  }
  DropFiber(g);
  delete g;
}

void Runtime::Mexit(Sched* s) {
  while (ProcG* g = s->gfree.PopFront()) Gdestroy(g);
  while (s->nfibers > 0) sanitizer::DestroyFiber(s->fibers[--s->nfibers]);
}

ProcStats Runtime::Read() const {
  ProcStats st;
  st.g_allocs = static_cast<uint64_t>(g_allocs_.load());
  for (const auto& s : scheds_) {
    st.gs_started += s->gs_started.value();
    st.gs_finished += s->gs_finished.value();
    st.segments += s->segments.value();
    st.large_segments += s->large_segments.value();
    st.segments_reused += s->segments_reused.value();
    st.gs_stolen += s->gs_stolen.value();
    st.g_allocs += s->g_allocs.value();
  }
  return st;
}

void Runtime::LockAll() {
  mu_.lock();
  gfree_mu_.lock();
  for (auto& s : scheds_) s->note_mu.lock();
}

void Runtime::UnlockAll() {
  for (auto& s : scheds_) s->note_mu.unlock();
  gfree_mu_.unlock();
  mu_.unlock();
}

void Runtime::Gstart(Sched* s, ProcG* g) {
  if (g->stack == nullptr) {
    void* v = options_.stack_source.alloc(kFixedStack);
    if (v == nullptr) Throw("newproc: out of stack memory");
    g->stack = v;
  }
  g->stack_lo = reinterpret_cast<uintptr_t>(g->stack);
  g->stack_hi = g->stack_lo + kFixedStack;
  g->ctx =
      MakeContext(reinterpret_cast<void*>(g->stack_hi), kFixedStack, &Gentry);
  // A TSan fiber for each life, from the M's cache: TSan counts fibers as
  // threads (at most 8128), and queued or dead records may be many more.
  if (sanitizer::kTsan) {
    g->tsan_fiber =
        s->nfibers > 0 ? s->fibers[--s->nfibers] : sanitizer::CreateFiber();
  }
  s->gs_started.Add(1);
}

void Runtime::Execute(Sched* s, ProcG* g) {
  M* m = s->m;
  if (g->ctx == nullptr) Gstart(s, g);
  do {
    g->m = m;
    g->sched = s;
    m->set_curg(g);
    SwitchToG(g, s->tsan_fiber);
    m->set_curg(m->g0());
  } while (Serve(s, g));
}

bool Runtime::Serve(Sched* s, ProcG* g) {
  const Req r = g->req;
  g->req = Req::kNone;
  switch (r) {
    case Req::kGosched: {
      GList one;
      one.PushBack(g);
      Globrunqput(&one);
      return false;
    }
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
      Oldstack(g, options_.stack_source, options_.segment_cache);
      return true;
    case Req::kExit:
      if (g->top != nullptr) Throw("goexit: G exits on a stack segment");
      FreeSegcache(g, options_.stack_source);  // Only live Gs keep any.
      // Frames that never returned leave ASan redzones behind.
      sanitizer::UnpoisonMemory(g->stack, kFixedStack);
      if (sanitizer::kTsan) {
        if (s->nfibers < kFiberCache) {
          s->fibers[s->nfibers++] = g->tsan_fiber;
          g->tsan_fiber = nullptr;
        } else {
          DropFiber(g);
        }
      }
      g->ctx = nullptr;
      g->sched = nullptr;
      g->m = nullptr;
      s->gs_finished.Add(1);
      Gfput(s, g);
      return false;
    case Req::kNone:
      break;
  }
  Throw("schedule: G switched to g0 without a request");
}

ProcG* CurrentG() {
  M* m = stackalloc::internal::tls_m;
  asm volatile("" : "+r"(m));
  G* g = m->curg();
  if (g == nullptr || g == m->g0()) return nullptr;
  return static_cast<ProcG*>(g);
}

void ThrowOnG0(const char* msg) {
  Systemstack([](void* m) { Throw(static_cast<const char*>(m)); },
              const_cast<char*>(msg));
  Throw(msg);  // Not on a G: Systemstack called the function here.
}

void Systemstack(void (*fn)(void*), void* arg) {
  ProcG* g = CurrentG();
  if (g == nullptr) return fn(arg);
  g->req_fn = fn;
  g->req_arg = arg;
  Mcall(g, Req::kSystemstack);
}

NewG NewprocStart() {
  Runtime* rt = TheRuntime();
  if (ABSL_PREDICT_FALSE(rt == nullptr)) NoRuntime("go");
  ProcG* g = rt->Gget();
  return {g, &g->fn};
}

void NewprocFinish(ProcG* g) { TheRuntime()->Ready(g); }

void NewprocAbort(ProcG* g) { TheRuntime()->Gabort(g); }

// fork(): the runtime's locks are held across it, so the child finds them
// consistent; the child then abandons the runtime (its Ms did not follow).
void ForkPrepare() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  control_mu.lock();
  stats_mu.lock();
  if (Runtime* rt = TheRuntime()) rt->LockAll();
}

void ForkParent() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (Runtime* rt = TheRuntime()) rt->UnlockAll();
  stats_mu.unlock();
  control_mu.unlock();
}

void ForkChild() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (Runtime* rt = TheRuntime()) {
    rt->UnlockAll();
    last_stats = rt->Read();  // Leaked: its threads may have held anything.
    the_runtime.store(nullptr, std::memory_order_release);
    forked_away.store(true, std::memory_order_relaxed);
  }
  stats_mu.unlock();
  control_mu.unlock();
}

}  // namespace internal

void Start(const Options& options) {
  internal::LinkUnwindCheck();  // unwind.cc's interposition goes with us.
  internal::CheckControlContext("Start");
  if (options.gomaxprocs < 1 || options.gomaxprocs > kMaxProcs) {
    RawBuffer b;
    b.Str("proc: gomaxprocs=").Dec(options.gomaxprocs).Str(" not in [1, ");
    b.Dec(kMaxProcs).Str("]");
    Throw(b.c_str());
  }
  if (options.stack_source.alloc == nullptr ||
      options.stack_source.free == nullptr) {
    Throw("proc: Options::stack_source has a null function");
  }
  static std::once_flag atfork;
  std::call_once(atfork, [] {
    pthread_atfork(&internal::ForkPrepare, &internal::ForkParent,
                   &internal::ForkChild);
  });
  std::lock_guard<std::mutex> l(internal::control_mu);
  if (internal::TheRuntime() != nullptr) {
    Throw("proc: Start while a runtime runs (Stop it first)");
  }
  auto* rt = new internal::Runtime(options);
  internal::the_runtime.store(rt, std::memory_order_release);
  internal::forked_away.store(false, std::memory_order_relaxed);
  rt->StartMs();
}

void Wait() {
  internal::CheckControlContext("Wait");
  internal::Runtime* rt = internal::TheRuntime();
  if (rt != nullptr) return rt->Wait();
  if (internal::forked_away.load(std::memory_order_relaxed)) {
    internal::NoRuntime("proc: Wait");
  }
}

void Stop() {
  internal::CheckControlContext("Stop");
  internal::Runtime* rt = internal::TheRuntime();
  if (rt == nullptr) {
    if (internal::forked_away.load(std::memory_order_relaxed)) {
      internal::NoRuntime("proc: Stop");
    }
    return;
  }
  rt->Wait();  // Not under control_mu: a G may fork meanwhile.
  std::lock_guard<std::mutex> l(internal::control_mu);
  rt->Stop();  // Every G finished and every M ended.
  {
    std::lock_guard<std::mutex> s(internal::stats_mu);
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
