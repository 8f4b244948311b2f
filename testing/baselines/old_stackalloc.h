// The stack allocator as it was before Go commit c9152a85: one FixAlloc for
// the whole process behind a global lock (the seed's removed `stacks`), with
// the global statistics copied from it under that lock.
//
// A baseline for benchmarks, kept to the same contract as stackalloc (only on
// g0, the seed's fatal messages) so that the comparison is like for like.
// Thread-safe (by the one lock).

#ifndef TESTING_BASELINES_OLD_STACKALLOC_H_
#define TESTING_BASELINES_OLD_STACKALLOC_H_

#include <cstddef>
#include <cstdint>

namespace stackalloc {
namespace baseline {

void* OldStackalloc(size_t n);
void OldStackfree(void* v, size_t n);

struct OldMemStats {
  uint64_t stacks_inuse;
  uint64_t stacks_sys;
};
// The old design's global statistics (taken under its lock).
OldMemStats ReadOldMemStats();

}  // namespace baseline
}  // namespace stackalloc

#endif  // TESTING_BASELINES_OLD_STACKALLOC_H_
