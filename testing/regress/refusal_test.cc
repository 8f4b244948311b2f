// README "Failure": "When the OS refuses memory, stackalloc returns nullptr
// and no stack statistic changes (stacks_meta_sys may have grown ...)".
// Random refusal of chunks, pool nodes and chunk records, every order and
// large stacks, one thread and several; then memory returns and everything
// must work and add up.

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "alloc/sys_alloc.h"
#include "gtest/gtest.h"
#include "sched/m.h"
#include "stack/test_peer.h"
#include "stackalloc.h"
#include "stats/mstats.h"

namespace stackalloc {
namespace {

using internal::StackallocTestPeer;

std::atomic<int> refuse_percent{0};
thread_local std::mt19937 rng(12345);

bool Refuse() { return static_cast<int>(rng() % 100) < refuse_percent.load(); }
void* Chunks(size_t n) {
  return Refuse() ? nullptr : SysAllocAligned(n, kChunkGranule);
}
void* Nodes(size_t n) { return Refuse() ? nullptr : SysAlloc(n); }
void* Records(size_t n) { return Refuse() ? nullptr : SysAlloc(n); }

bool SameStackStats(const MemStats& a, const MemStats& b) {
  if (a.stacks_inuse != b.stacks_inuse || a.stacks_sys != b.stacks_sys ||
      a.stacks_cached != b.stacks_cached ||
      a.stacks_pooled != b.stacks_pooled ||
      a.stacks_released != b.stacks_released ||
      a.stacks_guard != b.stacks_guard ||
      a.stacks_unguarded != b.stacks_unguarded ||
      a.large_stacks_inuse != b.large_stacks_inuse) {
    return false;
  }
  return true;
}

size_t Pick(std::mt19937& r) {
  const int k = static_cast<int>(r() % 11);
  if (k == 10) return kMaxOrderStack + 1 + r() % (1 << 20);
  if (k == 9) return kFixedStack;
  return OrderStackSize(k) - r() % (OrderStackSize(k) / 2);
}

TEST(RefusalTest, SingleThreadEveryRefusalLeavesStatsAlone) {
  StackallocTestPeer::SetChunkSource(&Chunks);
  StackallocTestPeer::SetNodeSource(&Nodes);
  StackallocTestPeer::SetRecordSource(&Records);
  std::mt19937 r(7);
  struct H {
    void* v;
    size_t n;
  };
  std::vector<H> held;
  int refused = 0, bad = 0;
  for (int i = 0; i < 200000; ++i) {
    refuse_percent.store(i < 150000 ? static_cast<int>(r() % 60) : 0);
    if (r() % 2 == 0 || held.empty()) {
      const size_t n = Pick(r);
      const MemStats before = ReadMemStats();
      void* v = stackalloc(n);
      if (v == nullptr) {
        ++refused;
        if (!SameStackStats(before, ReadMemStats())) {
          if (bad++ < 5) fprintf(stderr, "refusal of %zu changed stats\n", n);
        }
        continue;
      }
      held.push_back({v, n});
    } else {
      const size_t j = r() % held.size();
      stackfree(held[j].v, held[j].n);
      held[j] = held.back();
      held.pop_back();
    }
    if (i % 1000 == 0) ScavengeStacks();
  }
  fprintf(stderr, "%d refused\n", refused);
  EXPECT_EQ(bad, 0);
  EXPECT_GT(refused, 0);
  // Memory is back: everything works; distinct stacks; exact.
  std::set<void*> seen;
  uint64_t bytes = 0;
  for (const H& h : held) {
    EXPECT_TRUE(seen.insert(h.v).second);
    bytes += h.n <= kMaxOrderStack ? OrderStackSize(StackOrder(h.n))
                                   : (h.n + 4095) & ~size_t{4095};
  }
  EXPECT_EQ(ReadMemStats().stacks_inuse, bytes);
  for (int i = 0; i < 2000; ++i) {
    const size_t n = Pick(r);
    void* v = stackalloc(n);
    ASSERT_NE(v, nullptr);
    EXPECT_TRUE(seen.insert(v).second) << "handed out twice: " << v;
    held.push_back({v, n});
  }
  for (int k = 0; k < kNumStackOrders; ++k) {
    // Stranded stacks are counted as pooled: the pool holds them.
    const MemStats s = ReadMemStats();
    EXPECT_EQ(s.orders[k].pooled +
                  StackallocTestPeer::PoolReleasedStacks(k) * OrderStackSize(k),
              StackallocTestPeer::PoolStacks(k) * OrderStackSize(k))
        << k;
  }
  for (const H& h : held) stackfree(h.v, h.n);
  EXPECT_EQ(ReadMemStats().stacks_inuse, 0u);
  StackallocTestPeer::SetChunkSource(nullptr);
  StackallocTestPeer::SetNodeSource(nullptr);
  StackallocTestPeer::SetRecordSource(nullptr);
}

TEST(RefusalTest, ThreadsUnderRefusalThenExact) {
  StackallocTestPeer::SetChunkSource(&Chunks);
  StackallocTestPeer::SetNodeSource(&Nodes);
  StackallocTestPeer::SetRecordSource(&Records);
  refuse_percent.store(getenv("PCT") ? atoi(getenv("PCT")) : 30);
  std::atomic<uint64_t> live_bytes{0};
  std::vector<std::thread> ts;
  std::vector<std::vector<std::pair<void*, size_t>>> kept(4);
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([t, &kept, &live_bytes] {
      std::mt19937 r(t + 100);
      std::vector<std::pair<void*, size_t>> held;
      for (int i = 0; i < 50000; ++i) {
        if (r() % 2 == 0 || held.empty()) {
          const size_t n = Pick(r);
          if (void* v = stackalloc(n)) held.push_back({v, n});
        } else {
          const size_t j = r() % held.size();
          stackfree(held[j].first, held[j].second);
          held[j] = held.back();
          held.pop_back();
        }
        if (t == 0 && i % 500 == 0) ScavengeStacks();
      }
      uint64_t b = 0;
      for (auto& h : held) {
        b += h.second <= kMaxOrderStack ? OrderStackSize(StackOrder(h.second))
                                        : (h.second + 4095) & ~size_t{4095};
      }
      live_bytes.fetch_add(b);
      kept[t] = std::move(held);
    });
  }
  for (auto& t : ts) t.join();
  refuse_percent.store(0);
  EXPECT_EQ(ReadMemStats().stacks_inuse, live_bytes.load());
  for (auto& h : kept) {
    for (auto& p : h) stackfree(p.first, p.second);
  }
  EXPECT_EQ(ReadMemStats().stacks_inuse, 0u);
  {
    const MemStats m = ReadMemStats();
    fprintf(stderr, "large_inuse=%llu\n",
            (unsigned long long)m.large_stacks_inuse);
    for (int k = 0; k < kNumStackOrders; ++k)
      fprintf(stderr, "order %d inuse=%llu\n", k,
              (unsigned long long)m.orders[k].inuse);
  }
  ScavengeStacks();
  const MemStats s = ReadMemStats();
  for (int k = 0; k < kNumStackOrders; ++k) {
    EXPECT_EQ(s.orders[k].pooled +
                  StackallocTestPeer::PoolReleasedStacks(k) * OrderStackSize(k),
              StackallocTestPeer::PoolStacks(k) * OrderStackSize(k))
        << k;
  }
  StackallocTestPeer::SetChunkSource(nullptr);
  StackallocTestPeer::SetNodeSource(nullptr);
  StackallocTestPeer::SetRecordSource(nullptr);
}

}  // namespace
}  // namespace stackalloc
