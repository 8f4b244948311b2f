// Segmented stacks: Go's newstack / oldstack on g0, Morestack with its fast
// path through the G's own cache of segments, and StackRoom.

#include "proc/stack.h"

#include <signal.h>

#include <atomic>
#include <cstdint>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "base/check.h"
#include "base/sanitizers.h"
#include "base/stack_sizes.h"
#include "base/throw.h"
#include "proc/g.h"
#include "proc/out_of_line.h"
#include "proc/runtime.h"
#include "proc/switch.h"
#include "proc/types.h"
#include "sched/m.h"
#include "stack/margin.h"
#include "stackalloc.h"

// call_on_stack_x86_64.S
extern "C" void stackalloc_proc_call_on_stack(void* arg, void (*fn)(void*),
                                              void* sp);

namespace stackalloc {
namespace proc {
namespace internal {
namespace {

// Whether segments can be entered by a plain call on another stack (see
// call_on_stack_x86_64.S); elsewhere every segment goes through g0.
#if defined(__x86_64__)
constexpr bool kHaveCallOnStack = true;
#else
constexpr bool kHaveCallOnStack = false;
#endif

// Computed once by whoever asks first; every thread computes the same (no
// static's guard, which a fork could leave taken in the child).
std::atomic<size_t> segment_stack{0};

// What a segment holds besides the frame it is for: its Stktop, the
// fcontext record below it and the entry function's frame, then what every
// stack keeps free below its last check (kStackGuard, and room for a
// signal frame).
size_t SegmentReserve() {
  return sizeof(Stktop) + 128 + kStackGuard + SignalFrameReserve();
}

// Where a segment starts: run the continuation, then back to the old
// segment.
[[noreturn]] STACKALLOC_NO_TSAN_FRAME void SegmentEntry(transfer_t t) noexcept {
  auto* g = static_cast<ProcG*>(t.data);
  g->g0ctx = t.fctx;
  AfterResume(nullptr);
  void (*fn)(void*) = g->req_fn;
  fn(g->req_arg);
  McallDrop(g, Req::kLessstack);
}

// Whether a frame of `frame` bytes fits a segment of SegmentStack() bytes
// with the reserve.
bool FitsASegment(size_t frame) {
  return frame <= SegmentStack() - SegmentReserve();
}

// The segment size for a frame of `frame` bytes: SegmentStack() when it
// fits, else what a request for the frame and the reserve gets (the next
// order up, or whole pages), all of it usable. REQUIRES: frame <=
// kMaxStackFrame (Morestack checked); checked again, so that no arithmetic
// here can wrap and serve a short segment.
size_t SegmentSize(size_t frame) {
  if (FitsASegment(frame)) return SegmentStack();
  if (frame > kMaxStackFrame) Throw("morestack: frame too large");
  return StackBytes(frame + SegmentReserve());
}

// The two messages below are built in FatalBuffer, not on this stack:
// it may have only kStackGuard bytes left.
[[noreturn]] ABSL_ATTRIBUTE_NOINLINE void FrameTooLarge(size_t n) {
  RawBuffer& b = FatalBuffer();
  b.Str("withstack: a frame of ").Udec(n).Str(" bytes is larger than any ");
  b.Str("stack (kMaxStackFrame = ").Udec(kMaxStackFrame).Str(")");
  ThrowOnG0(b.c_str());
}

[[noreturn]] ABSL_ATTRIBUTE_NOINLINE void NotOnAG(size_t n) {
  RawBuffer& b = FatalBuffer();
  b.Str("withstack: ").Udec(n).Str(" bytes do not fit on this stack, ");
  b.Str("which is not a G's and cannot grow (the thread's own, a fiber's ");
  b.Str("on a stack from stackalloc, or one of unknown bounds)");
  Throw(b.c_str());
}

// Makes [v, v + n) g's current segment: its Stktop at the top links back to
// where g was (resumed at `oldctx`, or by returning when nullptr). Returns
// the Stktop.
Stktop* PushSegment(ProcG* g, void* v, size_t n, fcontext_t oldctx) {
  const auto lo = reinterpret_cast<uintptr_t>(v);
  auto* top =
      reinterpret_cast<Stktop*>((lo + n - sizeof(Stktop)) & ~uintptr_t{15});
  top->prev = g->top;
  top->oldctx = oldctx;
  top->old_lo = g->stack_lo;
  top->old_hi = g->stack_hi;
  top->base = v;
  top->size = n;
  g->top = top;
  g->stack_lo = lo;
  g->stack_hi = lo + n;
  return top;
}

}  // namespace

size_t Newstack(ProcG* g, const StackSource& source) {
  const size_t n = SegmentSize(g->req_size);
  void* v = source.alloc(n);
  if (v == nullptr) Throw("morestack: out of stack memory");
  Stktop* top = PushSegment(g, v, n, g->ctx);
  g->ctx = MakeContext(top, reinterpret_cast<uintptr_t>(top) - g->stack_lo,
                       &SegmentEntry);
  STACKALLOC_DCHECK(g->OnStack(top));
  return n;
}

void Oldstack(ProcG* g, const StackSource& source, bool cache) {
  STACKALLOC_CHECK(g->top != nullptr);
  STACKALLOC_DCHECK(g->OnStack(g->top));
  Stktop top = *g->top;
  g->top = top.prev;
  g->ctx = top.oldctx;
  g->stack_lo = top.old_lo;
  g->stack_hi = top.old_hi;
  // Frames that never returned leave ASan redzones behind; clear them before
  // the segment is reused or goes back (stackfree poisons free stacks).
  sanitizer::UnpoisonMemory(top.base, top.size);
  if (cache && top.size == SegmentStack() && g->nsegcache < kSegCache) {
    g->segcache[g->nsegcache++] = top.base;
  } else {
    source.free(top.base, top.size);
  }
}

void FreeSegcache(ProcG* g, const StackSource& source) {
  while (g->nsegcache > 0) {
    source.free(g->segcache[--g->nsegcache], SegmentStack());
  }
}

void CheckSegmentChain(const ProcG* g) {
  uintptr_t lo = g->stack_lo, hi = g->stack_hi;
  for (const Stktop* t = g->top; t != nullptr; t = t->prev) {
    const auto a = reinterpret_cast<uintptr_t>(t);
    STACKALLOC_CHECK(lo <= a && a + sizeof(Stktop) <= hi);
    STACKALLOC_CHECK_EQ(reinterpret_cast<uintptr_t>(t->base), lo);
    lo = t->old_lo;
    hi = t->old_hi;
  }
  STACKALLOC_CHECK_EQ(lo, reinterpret_cast<uintptr_t>(g->stack));
}

size_t StackRoom() {
  // StackMargin()'s answer (the stack this frame is on: the G's segment,
  // the thread's own, a fiber's of ours; none for a stack of unknown
  // bounds), its fast path inline, less what every stack keeps free below
  // its last check.
  size_t margin;
  if (ABSL_PREDICT_FALSE(!stackalloc::internal::FastStackMargin(
          reinterpret_cast<uintptr_t>(__builtin_frame_address(0)), &margin))) {
    margin = StackMargin();
  }
  const size_t reserve = kStackGuard + SignalFrameReserve();
  return margin > reserve ? margin - reserve : 0;
}

namespace {

// The body of a segment from the G's cache, on that segment (entered by
// stackalloc_proc_call_on_stack from MorestackDirect).
void CachedSegmentBody(void* arg) {
  auto* g = static_cast<ProcG*>(arg);
  AfterResume(nullptr);  // A fresh stack for ASan: no fake frames saved.
  void (*fn)(void*) = g->req_fn;
  fn(g->req_arg);
  // The G may be on another M now; it runs on this segment still.
  Stktop* top = g->top;
  if (g->nsegcache == kSegCache) {
    // Deeper segments refilled the cache: one of them goes back, on g0.
    Systemstack(
        [](void* p) {
          auto* h = static_cast<ProcG*>(p);
          h->p->stack_source->free(h->segcache[--h->nsegcache], SegmentStack());
        },
        g);
  }
  g->top = top->prev;
  g->stack_lo = top->old_lo;
  g->stack_hi = top->old_hi;
  sanitizer::UnpoisonMemory(top->base, top->size);
  g->segcache[g->nsegcache++] = top->base;
  // nullptr: ASan drops this stack's fake frames; it is done with them.
  sanitizer::StartSwitchFiber(nullptr, reinterpret_cast<void*>(g->stack_lo),
                              g->stack_hi - g->stack_lo);
}

// Morestack's fast path: a segment the G used before, from its
// cache, entered by a plain call on that stack (no context switch: the G
// stays on its M, its context and its TSan fiber). Stacks are neither
// allocated nor freed here, so g0 is not needed.
ABSL_ATTRIBUTE_NOINLINE void MorestackDirect(ProcG* g, void (*fn)(void*),
                                             void* arg) {
  void* v = g->segcache[--g->nsegcache];
  const size_t n = SegmentStack();
  // Left by returning, not by a context switch: no context to resume.
  Stktop* top = PushSegment(g, v, n, nullptr);
  g->req_fn = fn;
  g->req_arg = arg;
  g->p->segments.Add(1);  // This M's counters: the G runs on its thread.
  g->p->segments_reused.Add(1);
  void* fake = nullptr;
  sanitizer::StartSwitchFiber(&fake, v, n);
  stackalloc_proc_call_on_stack(g, &CachedSegmentBody, top);
  AfterResume(fake);
}

}  // namespace

void Morestack(size_t n, void (*fn)(void*), void* arg) {
  if (n > kMaxStackFrame) FrameTooLarge(n);
  ProcG* g = CurrentG();
  if (g == nullptr) NotOnAG(n);
  if (kHaveCallOnStack && FitsASegment(n) && g->nsegcache > 0) {
    return MorestackDirect(g, fn, arg);
  }
  g->req_size = n;
  g->req_fn = fn;
  g->req_arg = arg;
  Mcall(g, Req::kMorestack);
}

}  // namespace internal

size_t SignalFrameReserve() { return stackalloc::SignalFrameReserve(); }

size_t SegmentStack() {
  size_t n = internal::segment_stack.load(std::memory_order_relaxed);
  if (n == 0) {
    // The smallest order that holds its reserve and a kilobyte of frames:
    // small segments, as the seed's, with room for a signal frame.
    n = StackBytes(internal::SegmentReserve() + 1024);
    internal::segment_stack.store(n, std::memory_order_relaxed);
  }
  return n;
}

}  // namespace proc
}  // namespace stackalloc
