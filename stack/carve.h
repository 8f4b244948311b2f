// Carving: an M cuts new stacks from a fresh chunk (private to //stack;
// Go's stackpoolalloc carving a span, the seed's per-M stack FixAlloc).
//
// Each M has a carver per order (sched/mcache.h): the chunk in hand and its
// next uncarved slot, so a stack is carved with its record at hand, no
// lookup. A spent carver takes the next chunk from the heap (a released one
// of the current layout first); a change of the guard setting reaches a
// carver when its chunk is spent.
//
// Runs on the thread bound to the M only.

#ifndef STACK_CARVE_H_
#define STACK_CARVE_H_

#include "sched/m.h"

namespace stackalloc {
namespace internal {

// Carves up to `want` (> 0) new stacks of `order` for m's cache into
// out[0, want), each in state kInCache (stack/misuse.h); returns how many,
// 0 only if the OS refused a chunk (then no statistic changed but
// stacks_meta_sys, see TakeChunk). Never more than the chunk in hand has
// left, when it has any.
int Carve(M* m, int order, void** out, int want);

}  // namespace internal
}  // namespace stackalloc

#endif  // STACK_CARVE_H_
