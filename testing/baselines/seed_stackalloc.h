// The design of Go commit c9152a85 itself, unchanged: each M owns an
// unbounded FixAlloc of FixedStack stacks, and a stack goes onto the free list
// of whichever M frees it. Fast and contention-free, but a stack freed on
// another M than the one that allocated it never returns: in a
// producer/consumer runtime the producers keep mapping chunks while the
// consumers hoard free stacks. A baseline for our bounded caches.
//
// Thread-safe: every thread uses its own FixAlloc. Same contract as
// stackalloc (g0 only).

#ifndef TESTING_BASELINES_SEED_STACKALLOC_H_
#define TESTING_BASELINES_SEED_STACKALLOC_H_

#include <cstddef>
#include <cstdint>

namespace stackalloc {
namespace baseline {

void* SeedStackalloc(size_t n);
void SeedStackfree(void* v, size_t n);

struct SeedMemStats {
  uint64_t stacks_inuse;
  uint64_t stacks_sys;
};
// Sums every thread's counters; exact when no call is in flight.
SeedMemStats ReadSeedMemStats();

}  // namespace baseline
}  // namespace stackalloc

#endif  // TESTING_BASELINES_SEED_STACKALLOC_H_
