// 16 threads, random allocations and frees of every order (and above the
// largest), a third of the frees on another thread than the allocation,
// threads that exit and are replaced (their Ms reused), scavenging and cache
// limit changes meanwhile. At quiescence every counter is exact, no stack
// was handed out twice and every stack kept its contents. Run under TSan
// and ASan like every test.

#include "gtest/gtest.h"
#include "sched/m.h"
#include "stack/test_peer.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/func/stress/stress_workload.h"

namespace stackalloc {
namespace {

using internal::StackallocTestPeer;
using testing_util::RunStressWorkload;
using testing_util::StressOptions;
using testing_util::StressResult;

TEST(StackallocStressTest, SixteenThreadsEveryOrderChurnAndCrossFrees) {
  const MemStats before = ReadMemStats();
  StressOptions options;
  StressResult result = RunStressWorkload(options);
  EXPECT_LE(mcount(), 1 + options.threads + 1 + 2) << "Ms were not reused";
  testing_util::ExpectExactAndFree(before, &result);
  const MemStats st = ReadMemStats();
  // Every free stack is in a cache or a pool, exactly.
  for (int k = 0; k < kNumStackOrders; ++k) {
    const uint64_t pool_stacks = StackallocTestPeer::PoolStacks(k);
    EXPECT_LE(st.orders[k].pooled, pool_stacks * OrderStackSize(k)) << k;
    EXPECT_GE(st.orders[k].sys + st.orders[k].released,
              st.orders[k].inuse + st.orders[k].cached + st.orders[k].pooled)
        << k;
  }
  // Scavenging now returns every chunk no cache holds a stack of.
  ScavengeStacks();
  EXPECT_EQ(ReadMemStats().stacks_inuse, before.stacks_inuse);
}

}  // namespace
}  // namespace stackalloc
