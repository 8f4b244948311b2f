// The bounds of the stack an address is on (private to //stack): the lookup
// behind StackMargin() (stackalloc.h), which proc::WithStack budgets with,
// and the overflow report's traceback.
//
// Which stack: first the M's current G, whose bounds every switch of a
// fiber runtime already keeps in the G record (g0's are the thread's own
// stack; a proc G's follow its segments): a thread-local load, two loads
// and a comparison, nothing added to any switch. The fiber libraries that
// switch without telling the M (Boost.Context, Asio's coroutines) run on
// stacks of ours, which the chunk map finds from any address in O(1) (two
// loads and a division, as FindStack), so no per-switch hook is needed for
// them either. Then the thread's own stack (kept per thread, for a thread
// without an M) and the M's alternate signal stack. A per-thread "current
// stack" that every switch updates would have answered the Boost case in
// one load, but Boost's switches cannot be hooked, and proc's switch would
// have paid a store for an answer curg already gives.

#ifndef STACK_STACK_BOUNDS_H_
#define STACK_STACK_BOUNDS_H_

#include <cstdint>

#include "alloc/chunk_map.h"

namespace stackalloc {
namespace internal {

// Finds the stack holding sp among those we know the bounds of (see
// above; `map` holds our stacks), and sets [*lo, *hi) to it; false if sp is
// on none of them (a signal stack not ours, a stack of another allocator, a
// thread without an M whose own stack was never read). `read_thread_stack`:
// whether the thread's own bounds may be read now if they never were (that
// may allocate: not from a signal handler). Lock-free; async-signal-safe
// when !read_thread_stack.
bool StackBoundsHolding(const ChunkMap& map, uintptr_t sp, uintptr_t* lo,
                        uintptr_t* hi, bool read_thread_stack);

}  // namespace internal
}  // namespace stackalloc

#endif  // STACK_STACK_BOUNDS_H_
