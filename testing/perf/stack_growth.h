// The seed's BenchmarkStackGrowth (Go's proc_test.go) on the fiber runtime.
//
// `procs` Gs on `procs` Ms share a countdown of n / 1000 turns; each turn is a
// Gosched() and 1000 calls of StackGrowthRecursive(10). Every G starts on a
// FixedStack stack, so each call grows into new segments (about three of
// 4 KiB) and frees them on the way back: the benchmark measures frame work
// plus segment switching plus stack allocation, on whichever StackSource the
// runtime was started with.
//
// The frame is the one Go's runtime tests use today: the seed's body
// (`var pad [128]uint64; if pad[0] == 0 ...`) is optimised away by current
// compilers, so each frame copies a 1 KiB global into its pad and scans it.
//
// Thread-safe: the workload only touches a shared atomic countdown.

#ifndef TESTING_PERF_STACK_GROWTH_H_
#define TESTING_PERF_STACK_GROWTH_H_

#include <cstdint>

#include "proc/proc.h"

namespace stackalloc {
namespace baseline {

// Calls between two Goscheds (the seed's CallsPerSched).
inline constexpr int kCallsPerSched = 1000;
// Recursion depth of one operation: StackGrowthRecursive(10), 11 frames.
inline constexpr int kStackGrowthDepth = 10;

// One frame of about 1 KiB, then i more below it, each behind a stack check.
void StackGrowthRecursive(int i);

// Runs n / kCallsPerSched turns on `procs` Gs and waits for them.
// REQUIRES: a proc runtime is running (normally with `procs` Ms).
void RunStackGrowth(int procs, int64_t n);

// The seed's old stack allocator (one FixAlloc behind a global lock) as a
// runtime stack pool; proc::kDefaultStackSource is the new, per-M one.
extern const proc::StackSource kOldStackSource;

}  // namespace baseline
}  // namespace stackalloc

#endif  // TESTING_PERF_STACK_GROWTH_H_
