#include "testing/func/stress/stress_workload.h"

#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "gtest/gtest.h"
#include "sched/mcache.h"
#include "stackalloc.h"

namespace stackalloc {
namespace testing_util {
namespace {

// A size of a random order (sometimes between orders, sometimes above the
// largest), weighted toward the small ones as fiber runtimes are.
size_t RandomSize(std::mt19937& rng) {
  const unsigned r = rng() % 100;
  if (r < 2) return kMaxOrderStack + 1 + rng() % (3 * kMaxOrderStack);
  const int order = r < 50 ? 0 : r < 70 ? 1 : r < 82 ? 2 : 3 + rng() % 6;
  const size_t size = OrderStackSize(order);
  return rng() % 4 == 0 && order > 0 ? size - rng() % (size / 2) : size;
}

}  // namespace

StressResult RunStressWorkload(const StressOptions& options) {
  std::mutex mu;
  std::vector<MarkedStack> shared;  // Stacks handed from one thread to another.
  StressResult result;
  // Reserved up front: under a resource limit, the stacks may use up the
  // address space, and a vector's growth would throw then.
  shared.reserve(static_cast<size_t>(options.threads) * options.ops);
  result.held.reserve(static_cast<size_t>(options.threads) * options.ops *
                      options.generations);
  std::atomic<int64_t> refused{0}, corrupted{0}, unexpected{0};
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
  for (int gen = 0; gen < options.generations; ++gen) {
    // Every thread of the generation starts (its own stack mapped) before
    // any allocates: under a limit, a late thread might not start at all.
    std::atomic<int> started{0};
    RunThreads(options.threads, [&, gen](int t) {
      std::vector<MarkedStack> mine;
      mine.reserve(options.ops);
      started.fetch_add(1);
      while (started.load() < options.threads) std::this_thread::yield();
      if (options.on_thread_start) options.on_thread_start(t);
      std::mt19937 rng(1 + t + 100 * gen);
      for (int i = 0; i < options.ops; ++i) {
        const unsigned r = rng() % 6;
        if (r <= 2 || mine.empty()) {
          const size_t n = RandomSize(rng);
          auto* p = static_cast<unsigned char*>(stackalloc(n));
          if (p == nullptr) {
            (options.refusals_allowed ? refused : unexpected).fetch_add(1);
            continue;
          }
          mine.push_back({p, n, static_cast<unsigned char>(rng())});
          mine.back().Mark();
        } else if (r == 3) {
          const size_t j = rng() % mine.size();
          if (!mine[j].Intact()) corrupted.fetch_add(1);
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
          if (!h.Intact()) corrupted.fetch_add(1);
          stackfree(h.p, h.n);  // Allocated on another thread.
        }
      }
      if (options.on_thread_end) options.on_thread_end(t);
      std::lock_guard<std::mutex> l(mu);  // The rest outlives the thread.
      result.held.insert(result.held.end(), mine.begin(), mine.end());
    });
  }
  stop = true;
  meddler.join();
  for (int k = 0; k < kNumStackOrders; ++k) {
    SetStackCacheLimit(DefaultStackCacheLimit(k), OrderStackSize(k));
  }
  result.held.insert(result.held.end(), shared.begin(), shared.end());
  result.refused = refused.load();
  result.corrupted = corrupted.load();
  result.unexpected_refusals = unexpected.load();
  return result;
}

void ExpectExactAndFree(const MemStats& before, StressResult* result) {
  EXPECT_EQ(result->corrupted, 0) << "a stack's contents changed";
  EXPECT_EQ(result->unexpected_refusals, 0) << "a stack was refused";
  std::set<unsigned char*> distinct;
  uint64_t bytes = 0;
  for (const MarkedStack& h : result->held) {
    distinct.insert(h.p);
    EXPECT_TRUE(h.Intact());
    bytes += StackBytes(h.n);
  }
  ASSERT_EQ(distinct.size(), result->held.size())
      << "a stack was handed out twice";
  MemStats st = ReadMemStats();
  EXPECT_EQ(st.stacks_inuse - before.stacks_inuse, bytes);
  for (const MarkedStack& h : result->held) stackfree(h.p, h.n);
  result->held.clear();
  st = ReadMemStats();
  EXPECT_EQ(st.stacks_inuse, before.stacks_inuse);
  EXPECT_EQ(FirstInexactPool(), -1) << "a pool holds other than its stats say";
}

}  // namespace testing_util
}  // namespace stackalloc
