// Stacks allocated on some Ms and freed on others (a producer/consumer
// runtime): with bounded per-M caches over the global pools, stacks_sys stays
// under a constant however many stacks pass through, for every order, where
// the seed's per-M free lists would grow with every operation.

#include "testing/perf/producer_consumer.h"

#include <cstdint>
#include <string>

#include "gtest/gtest.h"
#include "proc/proc.h"
#include "sched/m.h"
#include "stack/test_peer.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/baselines/seed_designs.h"

namespace stackalloc {
namespace {

using baseline::PassStacks;
using internal::StackallocTestPeer;

constexpr int kProducers = 2;
constexpr int kConsumers = 2;
constexpr int kThreads = kProducers + kConsumers;
constexpr size_t kQueue = 64;

// The memory an M may hold of one order beyond its live stacks: a full
// cache, half a cache in flight to or from the pool, and the rest of a
// partly carved chunk (README, "Memory bounds").
uint64_t PerMBound(int order) {
  const uint64_t size = OrderStackSize(order);
  return DefaultStackCacheLimit(order) * 3 / 2 * size +
         StackallocTestPeer::ChunkStacks(order) * size;
}

class ProducerConsumerTest : public testing::TestWithParam<int> {};

TEST_P(ProducerConsumerTest, OursStaysBoundedWhileSeedDesignGrows) {
  const int order = GetParam();
  const size_t size = OrderStackSize(order);
  const MemStats start = ReadMemStats();
  // Live stacks never exceed the queue plus one in each thread's hands.
  const uint64_t peak_live = (kQueue + kThreads) * size;
  const uint64_t bound = peak_live + kThreads * PerMBound(order);
  const int64_t ops = order < 4 ? 200000 : 20000;
  const proc::StackSource ours{&stackalloc, &stackfree};
  ASSERT_TRUE(
      PassStacks(ours, kProducers, kConsumers, kQueue, ops / 10, size).ok);
  const uint64_t small =
      ReadMemStats().orders[order].sys - start.orders[order].sys;
  ASSERT_TRUE(PassStacks(ours, kProducers, kConsumers, kQueue, ops, size).ok);
  const MemStats st = ReadMemStats();
  const uint64_t sys = st.orders[order].sys - start.orders[order].sys;
  EXPECT_LE(small, bound);
  EXPECT_LE(sys, bound) << "grew with the number of operations";
  EXPECT_EQ(st.orders[order].inuse, start.orders[order].inuse);
}

INSTANTIATE_TEST_SUITE_P(EveryOrder, ProducerConsumerTest,
                         testing::Range(0, kNumStackOrders),
                         [](const testing::TestParamInfo<int>& order) {
                           return std::to_string(OrderStackSize(order.param) >>
                                                 10) +
                                  "KiB";
                         });

TEST(ProducerConsumerSeedTest, TheSeedDesignGrowsWithEveryStackPassed) {
  const proc::StackSource seed{&baseline::SeedStackalloc,
                               &baseline::SeedStackfree};
  ASSERT_TRUE(PassStacks(seed, kProducers, kConsumers, kQueue, 5000).ok);
  const uint64_t seed_small = baseline::ReadSeedMemStats().stacks_sys;
  ASSERT_TRUE(PassStacks(seed, kProducers, kConsumers, kQueue, 50000).ok);
  const baseline::BaselineMemStats st = baseline::ReadSeedMemStats();
  EXPECT_EQ(st.stacks_inuse, 0u);
  // The seed's producers never see the consumers' free lists: it maps a
  // chunk for every 32 stacks that pass through.
  const uint64_t ours_bound =
      (kQueue + kThreads) * kFixedStack + kThreads * PerMBound(0);
  EXPECT_GT(st.stacks_sys, 4 * seed_small);  // 10x the operations.
  EXPECT_GT(st.stacks_sys, 10 * ours_bound);
}

}  // namespace
}  // namespace stackalloc
