// The BenchmarkStackGrowth workload really grows: every call takes the same
// number of segments (at least two) and gives every one of them back, with
// the new pool and with the old.

#include "testing/perf/stack_growth.h"

#include <cstdint>

#include "gtest/gtest.h"
#include "proc/proc.h"
#include "stats/mstats.h"
#include "testing/baselines/seed_designs.h"

namespace stackalloc {
namespace baseline {
namespace {

constexpr int kProcs = 2;
constexpr int64_t kCalls = 20 * kCallsPerSched;

// Runs the workload and returns the segments it took per call.
uint64_t SegmentsPerCall(const proc::StackSource& pool) {
  proc::Options o;
  o.gomaxprocs = kProcs;
  o.stack_source = pool;
  o.segment_cache = false;  // Every segment from the pool, as the seed's.
  proc::Start(o);
  RunStackGrowth(kProcs, kCalls);
  proc::Stop();
  proc::ProcStats st = proc::ReadProcStats();
  EXPECT_EQ(st.gs_finished, uint64_t{kProcs});
  // Every call starts from the same frame: the same segments each time.
  EXPECT_EQ(st.segments % kCalls, 0u);
  return st.segments / kCalls;
}

TEST(StackGrowthTest, NewPoolGrowsAndGivesEverySegmentBack) {
  MemStats before = ReadMemStats();
  uint64_t per_call = SegmentsPerCall(proc::kDefaultStackSource);
  EXPECT_GE(per_call, 2u);
  MemStats after = ReadMemStats();
  EXPECT_EQ(after.stacks_inuse, before.stacks_inuse);
  EXPECT_EQ(after.large_stacks_inuse, before.large_stacks_inuse);
}

TEST(StackGrowthTest, OldPoolGrowsTheSameAndGivesEverySegmentBack) {
  BaselineMemStats before = ReadOldMemStats();
  uint64_t old_per_call = SegmentsPerCall(kOldStackSource);
  BaselineMemStats after = ReadOldMemStats();
  EXPECT_EQ(after.stacks_inuse, before.stacks_inuse);
  EXPECT_EQ(old_per_call, SegmentsPerCall(proc::kDefaultStackSource));
}

}  // namespace
}  // namespace baseline
}  // namespace stackalloc
