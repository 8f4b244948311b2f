// Stacks above the largest order (private to //stack; Go's stackLarge, a
// span each): a mapping of their own, n rounded up to whole pages, with its
// guard page below, recorded in the ChunkMap like a chunk of one slot.
//
// Runs on the thread bound to m, and books on m's statistics.

#ifndef STACK_LARGE_STACK_H_
#define STACK_LARGE_STACK_H_

#include <cstddef>

#include "sched/m.h"

namespace stackalloc {
namespace internal {

// A stack of PageRoundUp(n) bytes, kMaxOrderStack < n <= kMaxStackRequest,
// or nullptr if n is larger or the OS refused (then nothing changed but
// stacks_meta_sys).
void* LargeStackalloc(M* m, size_t n);

// Frees a stack from LargeStackalloc(n); dies if v is not one, or was
// allocated with another size. Should the OS not take its mapping back
// (munmap fails near vm.max_map_count), its pages are returned if they can
// be, and the mapping stays accounted for (MemStats::unmapping_sys or
// unmapping_released) until a later retry unmaps it.
void LargeStackfree(M* m, void* v, size_t n);

// Retries the unmapping of up to `max` freed large stacks the OS kept
// (every one: kAllLargeUnmaps); books what it unmaps on m. A large stack's
// alloc, and its free once its own unmapping succeeded, retry a few
// (kLargeUnmapRetries: near vm.max_map_count thousands may wait, and each
// try is a system call); ScavengeStacks() retries every one.
inline constexpr int kLargeUnmapRetries = 4;
inline constexpr int kAllLargeUnmaps = 1 << 30;
void RetryLargeUnmaps(M* m, int max);

}  // namespace internal
}  // namespace stackalloc

#endif  // STACK_LARGE_STACK_H_
