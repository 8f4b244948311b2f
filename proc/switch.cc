#include "proc/switch.h"

#include <cstring>

#include "base/sanitizers.h"
#include "base/throw.h"
#include "proc/g.h"
#include "proc/out_of_line.h"

namespace stackalloc {
namespace proc {
namespace internal {
namespace {

using boost::context::detail::jump_fcontext;

// The switch from a G to its g0, everything but the jump. Always inlined:
// under TSan the fiber must change in the frame that jumps, or the frame's
// exit would be recorded on the other fiber's shadow stack.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void BeforeMcall(ProcG* g, void** fake) {
  G* g0 = g->m->g0();
  sanitizer::StartSwitchFiber(fake, reinterpret_cast<void*>(g0->stack_lo),
                              g0->stack_hi - g0->stack_lo);
  sanitizer::SwitchToFiber(g->tsan_g0_fiber);
}

}  // namespace

fcontext_t MakeContext(void* top, size_t size, void (*entry)(transfer_t)) {
  return boost::context::detail::make_fcontext(top, size, entry);
}

void SwitchToG(ProcG* g, void* thread_fiber, void* eh) {
  // The thread's exception state becomes g's while g runs, and comes back
  // when g leaves (this side of the switch runs on g0, on one thread).
  EhGlobals g0_eh;
  memcpy(&g0_eh, eh, sizeof(EhGlobals));
  memcpy(eh, &g->eh, sizeof(EhGlobals));
  void* fake = nullptr;
  sanitizer::StartSwitchFiber(&fake, reinterpret_cast<void*>(g->stack_lo),
                              g->stack_hi - g->stack_lo);
  g->tsan_g0_fiber = thread_fiber;
  sanitizer::SwitchToFiber(g->tsan_fiber);
  transfer_t t = jump_fcontext(g->ctx, g);
  g->ctx = t.fctx;
  sanitizer::FinishSwitchFiber(fake);
  memcpy(&g->eh, eh, sizeof(EhGlobals));
  memcpy(eh, &g0_eh, sizeof(EhGlobals));
}

void Mcall(ProcG* g, Req r) {
  g->req = r;
  void* fake = nullptr;
  BeforeMcall(g, &fake);
  transfer_t t = jump_fcontext(g->g0ctx, nullptr);
  g->g0ctx = t.fctx;
  AfterResume(fake);
}

STACKALLOC_NO_TSAN_FRAME void McallDrop(ProcG* g, Req r) {
  g->req = r;
  BeforeMcall(g, nullptr);  // nullptr: ASan drops the stack's fake frames.
  jump_fcontext(g->g0ctx, nullptr);
  Throw("mcall: a dropped G was resumed");
}

void Systemstack(void (*fn)(void*), void* arg) {
  ProcG* g = CurrentG();
  if (g == nullptr) return fn(arg);
  g->req_fn = fn;
  g->req_arg = arg;
  Mcall(g, Req::kSystemstack);
}

}  // namespace internal
}  // namespace proc
}  // namespace stackalloc
