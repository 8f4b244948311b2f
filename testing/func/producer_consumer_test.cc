// Stacks allocated on some Ms and freed on others (a producer/consumer
// runtime): with bounded per-M caches over the global pool, stacks_sys stays
// under a constant however many stacks pass through, where the seed's
// per-M free lists would grow with every operation.

#include "testing/producer_consumer.h"

#include <cstdint>

#include "gtest/gtest.h"
#include "proc/proc.h"
#include "sched/m.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/baselines/seed_stackalloc.h"

namespace stackalloc {
namespace {

using baseline::PassStacks;

constexpr int kProducers = 2;
constexpr int kConsumers = 2;
constexpr size_t kQueue = 64;

bool RunDesign(const proc::StackSource& d, int64_t ops) {
  return PassStacks(d, kProducers, kConsumers, kQueue, ops).ok;
}

constexpr int kThreads = kProducers + kConsumers;

TEST(ProducerConsumerTest, OursStaysBoundedWhileSeedDesignGrows) {
  // Live stacks never exceed the queue plus one in each thread's hands.
  const uint64_t peak_live = (kQueue + kThreads) * kFixedStack;
  // Besides live stacks, each M may hold a full cache, half a cache in
  // flight to or from the pool, and the rest of a partly carved chunk.
  const uint64_t bound =
      peak_live + kThreads * (kStackCacheDefaultLimit * 3 / 2 * kFixedStack +
                              FixAlloc::kChunk);

  ASSERT_TRUE(RunDesign({&stackalloc, &stackfree}, 20000));
  const uint64_t ours_small = ReadMemStats().stacks_sys;
  ASSERT_TRUE(RunDesign({&stackalloc, &stackfree}, 200000));
  const MemStats ours = ReadMemStats();
  EXPECT_LE(ours_small, bound);
  EXPECT_LE(ours.stacks_sys, bound) << "grew with the number of operations";
  EXPECT_EQ(ours.stacks_inuse, 0u);

  ASSERT_TRUE(
      RunDesign({&baseline::SeedStackalloc, &baseline::SeedStackfree}, 5000));
  const uint64_t seed_small = baseline::ReadSeedMemStats().stacks_sys;
  ASSERT_TRUE(
      RunDesign({&baseline::SeedStackalloc, &baseline::SeedStackfree}, 50000));
  const baseline::SeedMemStats seed = baseline::ReadSeedMemStats();
  EXPECT_EQ(seed.stacks_inuse, 0u);
  // The seed's producers never see the consumers' free lists: it maps a
  // chunk for every 32 stacks that pass through.
  EXPECT_GT(seed.stacks_sys, 4 * seed_small);  // 10x the operations.
  EXPECT_GT(seed.stacks_sys, 10 * bound);
}

}  // namespace
}  // namespace stackalloc
