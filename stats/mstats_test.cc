#include "stats/mstats.h"

#include <atomic>
#include <thread>
#include <vector>

#include "base/stack_sizes.h"
#include "gtest/gtest.h"

namespace stackalloc {
namespace {

// A shard with its own order counters, as an M has.
struct TestShard {
  StackOrderShard orders[kNumStackOrders];
  MStatsShard shard;
  TestShard() {
    for (int k = 0; k < kNumStackOrders; ++k) shard.orders[k] = &orders[k];
  }
};

TEST(MStatsTest, ShardsAreSummedExactlyPerOrderAndInAll) {
  static TestShard a, b;
  const MemStats before = ReadMemStats();
  RegisterMStatsShard(&a.shard);
  RegisterMStatsShard(&b.shard);
  // Order 0 (4 KiB): 10 taken on a, 2 of them freed on b; 3 + 1 cached.
  a.orders[0].held.Add(10);
  a.orders[0].cached.Set(3);
  b.orders[0].held.Add(-2);
  b.orders[0].cached.Set(1);
  a.orders[0].carved.Add(32);  // One chunk carved whole: 24 in the pool...
  a.orders[0].sys.Add(128 << 10);
  // Order 4 (64 KiB): 2 carved, 1 handed out, 1 pooled whose pages went.
  b.orders[4].carved.Add(2);
  b.orders[4].held.Add(1);
  b.orders[4].pool_released.Add(1);
  b.orders[4].sys.Add(64 << 10);
  b.orders[4].guard.Add(2 * 4096);
  a.shard.large_inuse.Add(3 << 20);
  a.shard.meta_sys.Add(4096);
  const MemStats st = ReadMemStats();
  EXPECT_EQ(st.orders[0].stack_size, 4096u);
  EXPECT_EQ(st.orders[0].inuse, (10 - 2 - 3 - 1) * kFixedStack);
  EXPECT_EQ(st.orders[0].cached, 4 * kFixedStack);
  EXPECT_EQ(st.orders[0].pooled, (32 - 8) * kFixedStack);
  EXPECT_EQ(st.orders[4].inuse, 64u << 10);
  EXPECT_EQ(st.orders[4].pooled, 0u);
  EXPECT_EQ(st.orders[4].released, 64u << 10);
  EXPECT_EQ(st.orders[4].sys, 64u << 10);
  EXPECT_EQ(st.stacks_inuse - before.stacks_inuse,
            4 * kFixedStack + (64 << 10) + (3 << 20));
  EXPECT_EQ(st.large_stacks_inuse - before.large_stacks_inuse, 3u << 20);
  EXPECT_EQ(st.stacks_sys - before.stacks_sys,
            (128u << 10) + (64 << 10) + (3 << 20));
  EXPECT_EQ(st.stacks_released - before.stacks_released, 64u << 10);
  EXPECT_EQ(st.stacks_guard - before.stacks_guard, 2u * 4096);
  EXPECT_EQ(st.stacks_meta_sys - before.stacks_meta_sys, 4096u);
}

TEST(MStatsTest, ShardsDoNotShareCacheLines) {
  static_assert(alignof(MStatsShard) >= 64);
  static_assert(sizeof(MStatsShard) % 64 == 0);
  static_assert(alignof(StackOrderShard) >= 64);
  static_assert(sizeof(StackOrderShard) == 64, "one line per order");
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
  static TestShard shards[kWriters];
  const uint64_t base = ReadMemStats().stacks_sys;
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([w] {
      RegisterMStatsShard(&shards[w].shard);
      for (int i = 0; i < kIters; ++i) shards[w].orders[w % 9].sys.Add(1);
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

TEST(MStatsDeathTest, AShardWithoutItsOrdersIsRefused) {
  static MStatsShard bare;
  EXPECT_DEATH(RegisterMStatsShard(&bare), "check failed");
}

}  // namespace
}  // namespace stackalloc
