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
  P* p = CurrentP();
  ProcG* g;
  if (p != nullptr) {
    g = Gfget(p);
  } else {
    MutexLock l(&gfree_mu_);
    g = gfree_.PopFront();
  }
  if (g == nullptr) {
    // A new record, on g0: malloc may want more stack than a G reserves.
    auto malg = [&] { g = Malg(p); };
    SystemstackCall(malg);
  }
  if (p == nullptr) {
    g->goid = goidgen_.fetch_add(1, std::memory_order_relaxed);
  } else {
    if (p->goid_next == p->goid_end) {
      p->goid_next = goidgen_.fetch_add(kGoidBatch, std::memory_order_relaxed);
      p->goid_end = p->goid_next + kGoidBatch;
    }
    g->goid = p->goid_next++;
  }
  return g;
}

void Runtime::Ready(ProcG* g) {
  if (P* p = CurrentP()) return Runqput(p, g);
  GList one;
  one.PushBack(g);
  Globrunqput(&one);
  Wakep();
}

void Runtime::Gabort(ProcG* g) {
  g->fn.Destroy();
  if (P* p = CurrentP()) return Gfput(p, g);
  MutexLock l(&gfree_mu_);
  gfree_.PushFront(g);
}

ProcG* Runtime::Malg(P* p) {
  auto* g = new ProcG;
  if (p != nullptr) {
    p->g_allocs.Add(1);
  } else {
    g_allocs_.fetch_add(1, std::memory_order_relaxed);
  }
  return g;
}

void Runtime::Gfput(P* p, ProcG* g) {
  p->gfree.PushFront(g);  // LIFO: the next spawn gets the warmest stack.
  if (p->gfree.n < kGfreeMax) return;
  GList cold;
  p->gfree.SplitAfter(kGfreeKeep, &cold);
  MutexLock l(&gfree_mu_);
  gfree_.Append(&cold);
}

ProcG* Runtime::Gfget(P* p) {
  if (ProcG* g = p->gfree.PopFront()) return g;
  MutexLock l(&gfree_mu_);
  for (int i = 0; i < kGfreeBatch; ++i) {
    ProcG* g = gfree_.PopFront();
    if (g == nullptr) break;
    p->gfree.PushBack(g);
  }
  return p->gfree.PopFront();
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

void Runtime::Mexit(P* p) {
  while (ProcG* g = p->gfree.PopFront()) Gdestroy(g);
  while (p->nfibers > 0) sanitizer::DestroyFiber(p->fibers[--p->nfibers]);
}

void Runtime::Gstart(P* p, ProcG* g) {
  if (g->stack == nullptr) {
    void* v = options_.stack_source.alloc(kFixedStack);
    if (v == nullptr) Throw("newproc: out of stack memory");
    g->stack = v;
  }
  g->stack_lo = reinterpret_cast<uintptr_t>(g->stack);
  g->stack_hi = g->stack_lo + kFixedStack;
  g->ctx =
      MakeContext(reinterpret_cast<void*>(g->stack_hi), kFixedStack, &Gentry);
  g->eh = EhGlobals{};  // A new life catches nothing yet.
  // A TSan fiber for each life, from the M's cache: TSan counts fibers as
  // threads (at most 8128), and queued or dead records may be many more.
  if (sanitizer::kTsan) {
    g->tsan_fiber =
        p->nfibers > 0 ? p->fibers[--p->nfibers] : sanitizer::CreateFiber();
  }
  p->gs_started.Add(1);
}

void Runtime::Execute(P* p, ProcG* g) {
  M* m = p->m;
  if (g->ctx == nullptr) Gstart(p, g);
  do {
    g->m = m;
    g->p = p;
    m->set_curg(g);
    SwitchToG(g, p->tsan_fiber, p->eh_globals);
    m->set_curg(m->g0());
  } while (Serve(p, g));
}

bool Runtime::Serve(P* p, ProcG* g) {
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
      if (Newstack(g, options_.stack_source) > SegmentStack()) {
        p->large_segments.Add(1);
      }
      p->segments.Add(1);
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
      if (wipe_stacks_) {
        // Stacks are wiped between users: the next G on this record gets
        // its stack from the source (stackalloc wipes it), not this one.
        options_.stack_source.free(g->stack, kFixedStack);
        g->stack = nullptr;
      }
      if (sanitizer::kTsan) {
        if (p->nfibers < kFiberCache) {
          p->fibers[p->nfibers++] = g->tsan_fiber;
          g->tsan_fiber = nullptr;
        } else {
          DropFiber(g);
        }
      }
      g->ctx = nullptr;
      g->p = nullptr;
      g->m = nullptr;
      p->gs_finished.Add(1);
      Gfput(p, g);
      return false;
    case Req::kNone:
      break;
  }
  Throw("schedule: G switched to g0 without a request");
}

}  // namespace internal
}  // namespace proc
}  // namespace stackalloc
