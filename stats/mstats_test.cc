#include "stats/mstats.h"

#include <atomic>
#include <thread>
#include <vector>

#include "base/stack_sizes.h"
#include "gtest/gtest.h"

namespace stackalloc {
namespace {

TEST(MStatsTest, ShardsAreSummedExactly) {
  static MStatsShard a, b;
  RegisterMStatsShard(&a);
  RegisterMStatsShard(&b);
  a.held.Add(10);
  a.cached.Set(3);
  b.held.Add(-2);  // Freed here, allocated on a.
  b.cached.Set(1);
  a.sys.Add(128 << 10);
  b.large_inuse.Add(8192);
  MemStats st = ReadMemStats();
  EXPECT_EQ(st.stacks_inuse, (10 - 2 - 3 - 1) * kFixedStack);
  EXPECT_EQ(st.stacks_cached, 4 * kFixedStack);
  EXPECT_EQ(st.stacks_sys, 128u << 10);
  EXPECT_EQ(st.large_stacks_inuse, 8192u);
}

TEST(MStatsTest, ShardsDoNotShareCacheLines) {
  static_assert(alignof(MStatsShard) >= 64, "");
  static_assert(sizeof(MStatsShard) % 64 == 0, "");
  MStatsShard shards[2];
  EXPECT_GE(
      reinterpret_cast<char*>(&shards[1]) - reinterpret_cast<char*>(&shards[0]),
      64);
}

// Writers update their own shards while readers sum: the final sum is exact
// and no read ever sees more than was written.
TEST(MStatsTest, ConcurrentWritersAndReaders) {
  constexpr int kWriters = 8;
  constexpr int kIters = 20000;
  static MStatsShard shards[kWriters];
  const uint64_t base = ReadMemStats().stacks_sys;
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([w] {
      RegisterMStatsShard(&shards[w]);
      for (int i = 0; i < kIters; ++i) shards[w].sys.Add(1);
    });
  }
  std::thread reader([&] {
    while (!done.load()) {
      uint64_t sys = ReadMemStats().stacks_sys - base;
      ASSERT_LE(sys, static_cast<uint64_t>(kWriters) * kIters);
    }
  });
  for (auto& t : threads) t.join();
  done.store(true);
  reader.join();
  EXPECT_EQ(ReadMemStats().stacks_sys - base,
            static_cast<uint64_t>(kWriters) * kIters);
}

}  // namespace
}  // namespace stackalloc
