// "ScavengeStacks() returns the bytes released; stacks_sys falls and
// stacks_released rises by exactly that much", with scavengers racing each
// other and the policy; and "stacks_sys + stacks_released changes only
// when a chunk is mapped" per order.

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "stack/test_peer.h"
#include "stackalloc.h"
#include "stats/mstats.h"

namespace stackalloc {
namespace {

void FillPools() {
  // Threads that free everything and exit: idle Ms' caches, pools.
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; ++t) {
    ts.emplace_back([t] {
      std::vector<std::pair<void*, size_t>> v;
      for (int k = 0; k < kNumStackOrders; ++k) {
        for (int i = 0; i < 70 - 20 * t; ++i) {
          void* p = stackalloc(OrderStackSize(k));
          static_cast<volatile char*>(p)[OrderStackSize(k) - 1] = 1;
          v.push_back({p, OrderStackSize(k)});
        }
      }
      for (size_t i = 0; i < v.size(); i += 2)
        stackfree(v[i].first, v[i].second);
      for (size_t i = 1; i < v.size(); i += 2)
        stackfree(v[i].first, v[i].second);
    });
  }
  for (auto& t : ts) t.join();
}

TEST(ScavengeExactTest, RacingScavengersReturnExactlyWhatMoved) {
  for (int round = 0; round < 50; ++round) {
    FillPools();
    const MemStats before = ReadMemStats();
    std::atomic<size_t> total{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 3; ++t) {
      ts.emplace_back([&total] { total.fetch_add(ScavengeStacks()); });
    }
    for (auto& t : ts) t.join();
    const MemStats after = ReadMemStats();
    EXPECT_EQ(before.stacks_sys - after.stacks_sys, total.load()) << round;
    EXPECT_EQ(after.stacks_released - before.stacks_released, total.load())
        << round;
    for (int k = 0; k < kNumStackOrders; ++k) {
      EXPECT_EQ(before.orders[k].sys + before.orders[k].released,
                after.orders[k].sys + after.orders[k].released)
          << "order " << k << " round " << round;
    }
  }
}

}  // namespace
}  // namespace stackalloc
