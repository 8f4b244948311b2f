// The stress workload the stress tests share: threads at once allocating and
// freeing stacks of every order (and above the largest), a third of the
// frees on another thread than the allocation, threads that exit and are
// replaced (their Ms reused), and a meddler scavenging and moving cache
// limits meanwhile. Each stack held is marked, to see that nobody else
// wrote into it.
//
// For tests only. Run one workload at a time.

#ifndef TESTING_FUNC_STRESS_STRESS_WORKLOAD_H_
#define TESTING_FUNC_STRESS_STRESS_WORKLOAD_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "stats/mstats.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace testing_util {

struct StressOptions {
  int threads = 16;
  int generations = 3;  // Each thread exits and is replaced this often.
  int ops = 3000;       // Per thread and generation.
  // Whether the OS may refuse memory (a resource limit): a refused
  // allocation is counted, not a failure.
  bool refusals_allowed = false;
  // Runs first on every workload thread, with its index.
  std::function<void(int thread)> on_thread_start;
  // Runs last on every workload thread (still holding its stacks).
  std::function<void(int thread)> on_thread_end;
};

struct StressResult {
  std::vector<MarkedStack> held;  // Every stack still held at the end.
  int64_t refused = 0;            // Allocations the OS refused.
  int64_t corrupted = 0;          // Stacks whose marks changed.
  int64_t unexpected_refusals = 0;
};

StressResult RunStressWorkload(const StressOptions& options);

// Checks, at quiescence, what every stress test promises of a result
// (gtest expectations): no stack held twice, every mark intact, stacks_inuse
// exact against `before`; then frees every held stack and checks that
// stacks_inuse is back to `before`, and that every pool is exact.
void ExpectExactAndFree(const MemStats& before, StressResult* result);

}  // namespace testing_util
}  // namespace stackalloc

#endif  // TESTING_FUNC_STRESS_STRESS_WORKLOAD_H_
