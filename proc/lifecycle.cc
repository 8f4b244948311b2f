// The G lifecycle: records (Go's gfget / gfput / malg), starting, running
// and serving a G on its M's g0, and its exit. The scheduler loop is in
// schedule.cc, the runtime's construction in runtime.cc.

#include <atomic>
#include <cstdint>

#include "absl/base/attributes.h"
#include "base/check.h"
#include "base/mutex.h"
#include "base/sanitizers.h"
#include "base/stack_sizes.h"
#include "base/throw.h"
#include "proc/g.h"
#include "proc/out_of_line.h"
#include "proc/runq.h"
#include "proc/runtime.h"
#include "proc/stack.h"
#include "proc/switch.h"
#include "sched/m.h"

namespace stackalloc {
namespace proc {
namespace internal {
namespace {

[[noreturn]] ABSL_ATTRIBUTE_NOINLINE void ExceptionEscaped(const ProcG* g) {
  RawBuffer& b = FatalBuffer();  // The unwinder left this stack nearly full.
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

}  // namespace

ProcG* Runtime::Gget() {
  Sched* s = CurrentSched();
  ProcG* g;
  if (s != nullptr) {
    g = Gfget(s);
  } else {
    MutexLock l(&gfree_mu_);
    g = gfree_.PopFront();
  }
  if (g == nullptr) {
    // A new record, on g0: malloc may want more stack than a G reserves.
    auto malg = [&] { g = Malg(s); };
    SystemstackCall(malg);
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
  MutexLock l(&gfree_mu_);
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
  MutexLock l(&gfree_mu_);
  gfree_.Append(&cold);
}

ProcG* Runtime::Gfget(Sched* s) {
  if (ProcG* g = s->gfree.PopFront()) return g;
  MutexLock l(&gfree_mu_);
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

}  // namespace internal
}  // namespace proc
}  // namespace stackalloc
