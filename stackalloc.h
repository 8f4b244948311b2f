// stackalloc / stackfree: goroutine-style stacks without contention.
//
// The entry point of the library, after Go commit c9152a85 ("runtime:
// eliminate contention during stack allocation"). FixedStack (4 KiB) stacks
// come from the calling M's own cache and FixAlloc, so the common case takes
// no lock and touches only the M's own cache lines; other sizes go to the
// general-purpose allocator, as in the seed.
//
// Both functions may only run on the scheduler stack (g == m->g0): a call
// from a G's own stack dies with "stackalloc not on scheduler stack" (or
// "stackfree not on scheduler stack"). A thread that never switched to a G
// is always on its g0. While the M is in malloc or GC (m->mallocing,
// m->gcing), only FixedStack requests are allowed; any other size dies with
// "stackalloc: in malloc, size=4096 want <n>".
//
// Thread-safe: any thread may call them; a stack may be freed on another
// thread than the one that allocated it.

#ifndef STACKALLOC_H_
#define STACKALLOC_H_

#include <cstddef>

#include "alloc/fix_alloc.h"
#include "alloc/stack_sizes.h"
#include "stats/mstats.h"

namespace stackalloc {

// Returns a stack of n bytes (n > 0), aligned to kFixedStack when
// n == kFixedStack, or nullptr if the OS refused memory (then no statistic
// changes). The contents are unspecified.
void* stackalloc(size_t n);

// Frees v, which stackalloc(n) returned, with the same n.
// REQUIRES: v != nullptr (checked in debug builds).
void stackfree(void* v, size_t n);

namespace internal {

// Fault injection for tests.
class StackallocTestPeer {
 public:
  // Where every M's FixAlloc takes its chunks from; nullptr restores SysAlloc.
  static void SetChunkSource(FixAlloc::ChunkSource source);
};

}  // namespace internal
}  // namespace stackalloc

#endif  // STACKALLOC_H_
