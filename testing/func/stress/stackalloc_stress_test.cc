// 16 threads, random allocations and frees of every order (and above the
// largest), a third of the frees on another thread than the allocation,
// threads that exit and are replaced (their Ms reused), scavenging and cache
// limit changes meanwhile. At quiescence every counter is exact, no stack
// was handed out twice and every stack kept its contents. Run under TSan
// and ASan like every test.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "sched/m.h"
#include "stack/test_peer.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace {

using internal::StackallocTestPeer;
using testing_util::MarkedStack;
using testing_util::RunThreads;

// A size of a random order (sometimes between orders, sometimes above the
// largest), weighted toward the small ones as fiber runtimes are.
size_t RandomSize(std::mt19937& rng) {
  const unsigned r = rng() % 100;
  if (r < 2) return kMaxOrderStack + 1 + rng() % (3 * kMaxOrderStack);
  const int order = r < 50 ? 0 : r < 70 ? 1 : r < 82 ? 2 : 3 + rng() % 6;
  const size_t size = OrderStackSize(order);
  return rng() % 4 == 0 && order > 0 ? size - rng() % (size / 2) : size;
}

TEST(StackallocStressTest, SixteenThreadsEveryOrderChurnAndCrossFrees) {
  constexpr int kThreads = 16;
  constexpr int kGenerations = 3;  // Each slot's thread exits and is replaced.
  constexpr int kOps = 3000;
  const MemStats before = ReadMemStats();
  std::mutex mu;
  std::vector<MarkedStack> shared;  // Stacks handed from one thread to another.
  std::vector<MarkedStack> survivors;
  std::atomic<bool> bad{false};
  std::atomic<bool> stop{false};
  // Meanwhile: scavenging, and cache limits moving up and down.
  std::thread meddler([&] {
    std::mt19937 rng(99);
    while (!stop.load()) {
      ScavengeStacks();
      SetStackCacheLimit(2 * (1 + rng() % 32), OrderStackSize(rng() % 9));
      std::this_thread::yield();
    }
  });
  for (int gen = 0; gen < kGenerations; ++gen) {
    RunThreads(kThreads, [&, gen](int t) {
      std::mt19937 rng(1 + t + 100 * gen);
      std::vector<MarkedStack> mine;
      for (int i = 0; i < kOps; ++i) {
        const unsigned r = rng() % 6;
        if (r <= 2 || mine.empty()) {
          const size_t n = RandomSize(rng);
          auto* p = static_cast<unsigned char*>(stackalloc(n));
          if (p == nullptr) {
            bad = true;
            return;
          }
          mine.push_back({p, n, static_cast<unsigned char>(rng())});
          mine.back().Mark();
        } else if (r == 3) {
          const size_t j = rng() % mine.size();
          if (!mine[j].Intact()) bad = true;
          stackfree(mine[j].p, mine[j].n);
          mine[j] = mine.back();
          mine.pop_back();
        } else if (r == 4) {
          std::lock_guard<std::mutex> l(mu);
          shared.push_back(mine.back());
          mine.pop_back();
        } else {
          MarkedStack h{nullptr, 0, 0};
          {
            std::lock_guard<std::mutex> l(mu);
            if (shared.empty()) continue;
            h = shared.back();
            shared.pop_back();
          }
          if (!h.Intact()) bad = true;
          stackfree(h.p, h.n);  // Allocated on another thread.
        }
      }
      std::lock_guard<std::mutex> l(mu);  // The rest outlives the thread.
      survivors.insert(survivors.end(), mine.begin(), mine.end());
    });
  }
  stop = true;
  meddler.join();
  for (int k = 0; k < kNumStackOrders; ++k) {
    SetStackCacheLimit(DefaultStackCacheLimit(k), OrderStackSize(k));
  }
  ASSERT_FALSE(bad.load()) << "a stack was refused or its contents changed";

  std::vector<MarkedStack> all = shared;
  all.insert(all.end(), survivors.begin(), survivors.end());
  std::set<unsigned char*> distinct;
  uint64_t bytes = 0;
  for (const MarkedStack& h : all) {
    distinct.insert(h.p);
    EXPECT_TRUE(h.Intact());
    bytes += StackBytes(h.n);
  }
  ASSERT_EQ(distinct.size(), all.size()) << "a stack was handed out twice";
  MemStats st = ReadMemStats();
  EXPECT_EQ(st.stacks_inuse - before.stacks_inuse, bytes);
  EXPECT_LE(mcount(), 1 + kThreads + 1 + 2) << "Ms were not reused";
  for (const MarkedStack& h : all) stackfree(h.p, h.n);
  st = ReadMemStats();
  EXPECT_EQ(st.stacks_inuse, before.stacks_inuse);
  // Every free stack is in a cache or a pool, exactly.
  for (int k = 0; k < kNumStackOrders; ++k) {
    const uint64_t pool_stacks = StackallocTestPeer::PoolStacks(k);
    EXPECT_LE(st.orders[k].pooled, pool_stacks * OrderStackSize(k)) << k;
    EXPECT_EQ(
        st.orders[k].sys + st.orders[k].released >=
            st.orders[k].inuse + st.orders[k].cached + st.orders[k].pooled,
        true)
        << k;
  }
  // Scavenging now returns every chunk no cache holds a stack of.
  ScavengeStacks();
  st = ReadMemStats();
  EXPECT_EQ(st.stacks_inuse, before.stacks_inuse);
}

}  // namespace
}  // namespace stackalloc
