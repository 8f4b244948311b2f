// The seed's two designs, as baselines for benchmarks and tests. Both keep
// stackalloc's contract (only on g0, the seed's fatal messages) so that
// comparisons are like for like, and serve FixedStack (4096-byte) stacks.
//
// Old* is the allocator as it was before Go commit c9152a85: one FixAlloc for
// the whole process behind a global lock (the seed's removed `stacks`), with
// the global statistics copied from it under that lock. Thread-safe (by the
// one lock).
//
// Seed* is the design of c9152a85 itself, unchanged: each M owns an unbounded
// FixAlloc, and a stack goes onto the free list of whichever M frees it. Fast
// and contention-free, but a stack freed on another M than the one that
// allocated it never returns: in a producer/consumer runtime the producers
// keep mapping chunks while the consumers hoard free stacks. A baseline for
// our bounded caches. Thread-safe: every thread uses its own FixAlloc.

#ifndef TESTING_BASELINES_SEED_DESIGNS_H_
#define TESTING_BASELINES_SEED_DESIGNS_H_

#include <cstddef>
#include <cstdint>

namespace stackalloc {
namespace baseline {

// What both designs report, in bytes, as MemStats::stacks_inuse and
// MemStats::stacks_sys do for ours.
struct BaselineMemStats {
  uint64_t stacks_inuse;  // Bytes of stacks handed out and not freed.
  uint64_t stacks_sys;    // Bytes of stack chunks obtained from the OS.
};

void* OldStackalloc(size_t n);
void OldStackfree(void* v, size_t n);
// The old design's global statistics (taken under its lock).
BaselineMemStats ReadOldMemStats();

void* SeedStackalloc(size_t n);
void SeedStackfree(void* v, size_t n);
// Sums every thread's counters; exact when no call is in flight.
BaselineMemStats ReadSeedMemStats();

}  // namespace baseline
}  // namespace stackalloc

#endif  // TESTING_BASELINES_SEED_DESIGNS_H_
