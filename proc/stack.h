// Segmented stacks for the fiber runtime (private to //proc), as in Go until
// 1.3: morestack -> newstack gives a G a new segment for a frame that does
// not fit, lessstack -> oldstack takes it back.
//
// A G asks with Morestack() (out_of_line.h); its M's g0 serves the request
// with Newstack() and, when the frame returns, Oldstack(). The segment chain
// of a G is the list of Stktop records from g->top down; each segment after
// the first holds its Stktop at its top. Morestack and StackRoom are defined
// in stack.cc too.
//
// Called on g0 only: by the M that runs the G, or (FreeSegcache) by the
// thread that frees a dead G's record.

#ifndef PROC_STACK_H_
#define PROC_STACK_H_

#include <cstddef>

#include "proc/g.h"
#include "proc/types.h"

namespace stackalloc {
namespace proc {
namespace internal {

// Go's newstack: a segment for a frame of g->req_size bytes from `source`;
// g resumes on it in the function g->req_fn. Returns the segment's size
// (SegmentStack(), or larger for a frame that needs it). Dies with "morestack:
// out of stack memory" if the source has none.
size_t Newstack(ProcG* g, const StackSource& source);

// Go's oldstack: back to the segment below; the current one goes to the G's
// segment cache if `cache`, it is SegmentStack() and there is room, else to
// `source`.
void Oldstack(ProcG* g, const StackSource& source, bool cache);

// Frees the G's cached segments to `source`.
void FreeSegcache(ProcG* g, const StackSource& source);

// Checks the shape of g's segment chain: every link lies inside its own
// segment, and the bounds it restores are those of the segment below.
void CheckSegmentChain(const ProcG* g);

}  // namespace internal
}  // namespace proc
}  // namespace stackalloc

#endif  // PROC_STACK_H_
