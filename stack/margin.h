// StackMargin()'s fast path (private to the repository), inline for the
// fiber runtime's WithStack, which budgets with the same answer: the
// stack of the M's current G (g0's is the thread's own; a runtime's G's
// bounds follow its segments), or, on a thread without an M, the thread's
// own stack once read. Anything else is StackMargin()'s slow path
// (stack/stack_bounds.h).

#ifndef STACK_MARGIN_H_
#define STACK_MARGIN_H_

#include <cstddef>
#include <cstdint>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "sched/m.h"

namespace stackalloc {
namespace internal {

// Sets *margin to the bytes from sp down to the lowest byte of the stack
// holding it and returns true, if that stack is the one the fast path
// knows; else false (ask StackMargin()).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool FastStackMargin(uintptr_t sp,
                                                         size_t* margin) {
  M* m = tls_m;
  asm volatile("" : "+r"(m));  // Read anew: a G may resume on another M.
  const G* g = m->curg();      // nullptr on a thread without an M.
  uintptr_t lo, hi;
  if (ABSL_PREDICT_TRUE(g != nullptr)) {
    lo = g->stack_lo;
    hi = g->stack_hi;
  } else {
    lo = tls_thread_stack_lo;
    hi = tls_thread_stack_hi;
  }
  *margin = sp - lo;
  return ABSL_PREDICT_TRUE(sp - lo < hi - lo);
}

}  // namespace internal
}  // namespace stackalloc

#endif  // STACK_MARGIN_H_
