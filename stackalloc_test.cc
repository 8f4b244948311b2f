#include "stackalloc.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/config.h"
#include "alloc/sys_alloc.h"
#include "gtest/gtest.h"
#include "sched/m.h"
#include "stackalloc_test_peer.h"
#include "stats/mstats.h"

namespace stackalloc {
namespace {

using internal::StackallocTestPeer;

constexpr size_t kChunk = FixAlloc::kChunk;
constexpr int kStacksPerChunkForTest = kChunk / kFixedStack;

// Counts chunks and can refuse them, like an OS out of address space.
std::atomic<int64_t> chunks{0};
std::atomic<bool> refuse{false};
void* CountingChunkSource(size_t n) {
  if (refuse.load()) return nullptr;
  void* v = SysAllocAligned(n, kChunk);
  if (v != nullptr) chunks.fetch_add(1);
  return v;
}

class StackallocTest : public testing::Test {
 protected:
  void SetUp() override {
    refuse = false;
    StackallocTestPeer::SetChunkSource(&CountingChunkSource);
    before_ = ReadMemStats();
    chunks_before_ = chunks.load();
  }
  void TearDown() override { StackallocTestPeer::SetChunkSource(nullptr); }

  int64_t InuseDelta() const {
    return static_cast<int64_t>(ReadMemStats().stacks_inuse) -
           static_cast<int64_t>(before_.stacks_inuse);
  }
  // Change in memory mapped for stacks: in use by stacks (stacks_sys) or
  // released to the OS but still mapped for reuse (stacks_released).
  int64_t MappedDelta() const {
    MemStats st = ReadMemStats();
    return static_cast<int64_t>(st.stacks_sys + st.stacks_released) -
           static_cast<int64_t>(before_.stacks_sys + before_.stacks_released);
  }
  int64_t NewChunks() const { return chunks.load() - chunks_before_; }

  MemStats before_;
  int64_t chunks_before_ = 0;
};

// A stack the test owns, filled with a pattern it can check later.
struct Held {
  unsigned char* p;
  unsigned char pattern;
};

void Fill(const Held& h) { memset(h.p, h.pattern, kFixedStack); }
void Verify(const Held& h) {
  for (size_t i = 0; i < kFixedStack; i += 61) {
    ASSERT_EQ(h.p[i], h.pattern) << "stack contents changed at " << i;
  }
  ASSERT_EQ(h.p[kFixedStack - 1], h.pattern);
}

TEST_F(StackallocTest, StacksAreDistinctAlignedAndKeepTheirContents) {
  std::vector<Held> held;
  for (int i = 0; i < 300; ++i) {  // Several chunks, several refills.
    auto* p = static_cast<unsigned char*>(stackalloc(kFixedStack));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kFixedStack, 0u);
    held.push_back({p, static_cast<unsigned char>(i * 7 + 1)});
    Fill(held.back());
  }
  std::set<unsigned char*> distinct;
  for (const Held& h : held) distinct.insert(h.p);
  EXPECT_EQ(distinct.size(), held.size());
  for (const Held& h : held) Verify(h);
  EXPECT_EQ(InuseDelta(), 300 * static_cast<int64_t>(kFixedStack));
  EXPECT_EQ(MappedDelta(), NewChunks() * static_cast<int64_t>(kChunk));
  for (const Held& h : held) stackfree(h.p, kFixedStack);
  EXPECT_EQ(InuseDelta(), 0);
}

TEST_F(StackallocTest, FreedStackIsReusedLifo) {
  void* a = stackalloc(kFixedStack);
  void* b = stackalloc(kFixedStack);
  stackfree(a, kFixedStack);
  stackfree(b, kFixedStack);
  EXPECT_EQ(stackalloc(kFixedStack), b);
  EXPECT_EQ(stackalloc(kFixedStack), a);
  stackfree(a, kFixedStack);
  stackfree(b, kFixedStack);
}

TEST_F(StackallocTest, CacheOverflowAndUnderflowKeepCountersExact) {
  M* m = getm();
  const int64_t cached0 = m->stats.cached.value();
  std::vector<void*> v;
  for (int i = 0; i < 5 * kStackCacheDefaultLimit + 3; ++i) {
    v.push_back(stackalloc(kFixedStack));
    ASSERT_NE(v.back(), nullptr);
  }
  for (void* p : v) stackfree(p, kFixedStack);
  EXPECT_LE(m->stats.cached.value(), kStackCacheDefaultLimit);
  EXPECT_EQ(InuseDelta(), 0);
  // Other Ms' caches did not change: the global figure moved with ours.
  MemStats st = ReadMemStats();
  EXPECT_EQ(
      st.stacks_cached - before_.stacks_cached,
      static_cast<uint64_t>(m->stats.cached.value() - cached0) * kFixedStack);
  EXPECT_EQ(MappedDelta(), NewChunks() * static_cast<int64_t>(kChunk));
  // Everything comes back from the cache and the global pool: no new chunk.
  int64_t c = NewChunks();
  for (void*& p : v) p = stackalloc(kFixedStack);
  EXPECT_EQ(NewChunks(), c);
  EXPECT_EQ(std::set<void*>(v.begin(), v.end()).size(), v.size());
  for (void* p : v) stackfree(p, kFixedStack);
}

TEST_F(StackallocTest, RefusedChunkReturnsNullAndLeavesCountersExact) {
  std::thread([&] {
    // With the OS refusing chunks, take every free stack there is (this M's
    // cache, the global pool, its FixAlloc's current chunk) until stackalloc
    // has to ask for a chunk.
    refuse = true;
    std::vector<void*> drained;
    while (void* p = stackalloc(kFixedStack)) drained.push_back(p);
    MemStats st0 = ReadMemStats();
    EXPECT_EQ(st0.stacks_inuse - before_.stacks_inuse,
              drained.size() * kFixedStack);
    EXPECT_EQ(stackalloc(kFixedStack), nullptr);
    MemStats st1 = ReadMemStats();
    EXPECT_EQ(st1.stacks_inuse, st0.stacks_inuse);
    EXPECT_EQ(st1.stacks_sys, st0.stacks_sys);
    EXPECT_EQ(st1.stacks_cached, st0.stacks_cached);
    EXPECT_EQ(st1.stacks_pooled, st0.stacks_pooled);
    EXPECT_EQ(NewChunks(), 0);
    // The OS relents: exactly one new chunk, and it works.
    refuse = false;
    auto* p = static_cast<unsigned char*>(stackalloc(kFixedStack));
    ASSERT_NE(p, nullptr);
    memset(p, 0x3c, kFixedStack);
    EXPECT_EQ(NewChunks(), 1);
    EXPECT_EQ(ReadMemStats().stacks_sys - st1.stacks_sys, kChunk);
    EXPECT_EQ(InuseDelta(),
              static_cast<int64_t>((drained.size() + 1) * kFixedStack));
    stackfree(p, kFixedStack);
    for (void* d : drained) stackfree(d, kFixedStack);
    EXPECT_EQ(InuseDelta(), 0);
  }).join();
}

TEST_F(StackallocTest, MsBoundBeforeTheirFirstStackUseTheSameChunkSource) {
  std::thread([&] {
    getm();  // Bound by the runtime before any stackalloc.
    refuse = true;
    std::vector<void*> drained;
    while (void* p = stackalloc(kFixedStack)) drained.push_back(p);
    refuse = false;
    const int64_t chunks0 = NewChunks();
    void* p = stackalloc(kFixedStack);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(NewChunks(), chunks0 + 1)
        << "chunk not from the installed source";
    EXPECT_EQ(MappedDelta(), NewChunks() * static_cast<int64_t>(kChunk));
    stackfree(p, kFixedStack);
    for (void* d : drained) stackfree(d, kFixedStack);
  }).join();
  EXPECT_EQ(InuseDelta(), 0);
}

TEST_F(StackallocTest, LargeStacksUseTheGeneralAllocator) {
  auto* p = static_cast<unsigned char*>(stackalloc(3 * kFixedStack));
  ASSERT_NE(p, nullptr);
  memset(p, 0x77, 3 * kFixedStack);
  EXPECT_EQ(ReadMemStats().large_stacks_inuse - before_.large_stacks_inuse,
            3 * kFixedStack);
  EXPECT_EQ(InuseDelta(), 0);
  EXPECT_EQ(NewChunks(), 0);
  stackfree(p, 3 * kFixedStack);
  EXPECT_EQ(ReadMemStats().large_stacks_inuse, before_.large_stacks_inuse);
}

TEST_F(StackallocTest, InMallocFixedStackUsesTheMPool) {
  M* m = getm();
  m->mallocing = 1;
  void* p = stackalloc(kFixedStack);
  EXPECT_NE(p, nullptr);
  EXPECT_EQ(InuseDelta(), static_cast<int64_t>(kFixedStack));
  stackfree(p, kFixedStack);
  m->mallocing = 0;
  EXPECT_EQ(InuseDelta(), 0);
}

TEST_F(StackallocTest,
       ScavengeReleasesWhollyFreeChunksExactlyAndTheyWorkAgain) {
  ScavengeStacks();  // Start from a pool with no wholly free chunk.
  constexpr int kN = 10 * kStacksPerChunkForTest;
  std::vector<void*> v;
  for (int i = 0; i < kN; ++i) v.push_back(stackalloc(kFixedStack));
  for (void* p : v) ASSERT_NE(p, nullptr);
  for (void* p : v) stackfree(p, kFixedStack);
  const MemStats st0 = ReadMemStats();
  const size_t released = ScavengeStacks();
  const MemStats st1 = ReadMemStats();
  ASSERT_GE(released, kChunk);
  EXPECT_EQ(released % kChunk, 0u);
  EXPECT_EQ(st0.stacks_sys - st1.stacks_sys, released);
  EXPECT_EQ(st1.stacks_released - st0.stacks_released, released);
  EXPECT_EQ(st0.stacks_pooled - st1.stacks_pooled, released);
  EXPECT_EQ(st1.stacks_inuse, st0.stacks_inuse);
  EXPECT_EQ(st1.stacks_cached, st0.stacks_cached);

  // Allocate until a released chunk is taken back: it is reused before
  // anything new is mapped, and its stacks hold what we write.
  const int64_t chunks0 = NewChunks();
  const int64_t released0 = StackallocTestPeer::PoolReleasedChunks();
  std::vector<Held> held;
  auto take = [&] {
    auto* p = static_cast<unsigned char*>(stackalloc(kFixedStack));
    ASSERT_NE(p, nullptr);
    held.push_back({p, static_cast<unsigned char>(held.size())});
    Fill(held.back());
  };
  while (StackallocTestPeer::PoolReleasedChunks() == released0 &&
         held.size() < 100000) {
    take();
  }
  ASSERT_LT(StackallocTestPeer::PoolReleasedChunks(), released0);
  for (int i = 0; i < kStacksPerChunkForTest; ++i) take();  // Its stacks.
  for (const Held& h : held) Verify(h);
  EXPECT_EQ(NewChunks(), chunks0);
  const MemStats st2 = ReadMemStats();
  EXPECT_EQ(st2.stacks_sys + st2.stacks_released,
            st1.stacks_sys + st1.stacks_released);
  EXPECT_LT(st2.stacks_released, st1.stacks_released);
  for (const Held& h : held) stackfree(h.p, kFixedStack);
  EXPECT_EQ(InuseDelta(), 0);
}

TEST_F(StackallocTest, ScavengePolicyRunsWhenThePoolPassesTheThreshold) {
  ScavengeStacks();
  // The policy waits for the pool to pass the threshold and to double what
  // the last scavenge left in it: free enough stacks for both.
  const size_t left = ReadMemStats().stacks_pooled / kFixedStack;
  // The allocations drain the pool first; the frees must then leave it
  // holding more than twice `left` and more than the threshold.
  const size_t n = 2 * left + 16 * kStacksPerChunkForTest;
  std::vector<void*> v;
  for (size_t i = 0; i < n; ++i) v.push_back(stackalloc(kFixedStack));
  const MemStats st0 = ReadMemStats();  // Released chunks reused, if any.
  SetScavengeThreshold(4 * kChunk);
  for (void* p : v) stackfree(p, kFixedStack);
  SetScavengeThreshold(0);
  const MemStats st1 = ReadMemStats();
  EXPECT_GT(st1.stacks_released, st0.stacks_released) << "policy never ran";
  EXPECT_EQ(st0.stacks_sys - st1.stacks_sys,
            st1.stacks_released - st0.stacks_released);
  // Whatever was released or newly mapped, the total is exact.
  EXPECT_EQ(
      st1.stacks_sys + st1.stacks_released,
      before_.stacks_sys + before_.stacks_released + NewChunks() * kChunk);
  EXPECT_EQ(InuseDelta(), 0);
}

TEST_F(StackallocTest, CacheLimitIsTunableAndEnforced) {
  EXPECT_FALSE(SetStackCacheLimit(0));
  EXPECT_FALSE(SetStackCacheLimit(7));
  EXPECT_FALSE(SetStackCacheLimit(kStackCacheMax + 2));
  ASSERT_TRUE(SetStackCacheLimit(8));
  M* m = getm();
  std::vector<void*> v;
  for (int i = 0; i < 100; ++i) v.push_back(stackalloc(kFixedStack));
  for (void* p : v) {
    stackfree(p, kFixedStack);
    ASSERT_LE(m->stats.cached.value(), m->stackcache_limit);
  }
  EXPECT_EQ(m->stackcache_limit, 8);
  EXPECT_LE(m->stats.cached.value(), 8);
  ASSERT_TRUE(SetStackCacheLimit(kStackCacheMax));
  for (void*& p : v) p = stackalloc(kFixedStack);
  for (void* p : v) stackfree(p, kFixedStack);
  EXPECT_EQ(m->stackcache_limit, kStackCacheMax);
  EXPECT_GT(m->stats.cached.value(), 8);
  ASSERT_TRUE(SetStackCacheLimit(kStackCacheDefaultLimit));
  EXPECT_EQ(InuseDelta(), 0);
}

std::atomic<bool> refuse_nodes{false};
void* NodeSource(size_t n) { return refuse_nodes ? nullptr : SysAlloc(n); }

TEST_F(StackallocTest, NoMemoryForPoolRecordsLosesNoStack) {
  StackallocTestPeer::SetNodeSource(&NodeSource);
  std::thread([&] {
    // Far more batches than one chunk of spare records holds.
    constexpr int kN = 6000;
    std::vector<void*> v;
    for (int i = 0; i < kN; ++i) v.push_back(stackalloc(kFixedStack));
    const int64_t chunks0 = NewChunks();
    refuse_nodes = true;
    for (void* p : v) stackfree(p, kFixedStack);
    EXPECT_EQ(InuseDelta(), 0);
    EXPECT_EQ(MappedDelta(), NewChunks() * static_cast<int64_t>(kChunk));
    // The stacks the pool could not take went to this M's FixAlloc: all of
    // them come back without a new chunk.
    for (void*& p : v) p = stackalloc(kFixedStack);
    EXPECT_EQ(NewChunks(), chunks0);
    EXPECT_EQ(std::set<void*>(v.begin(), v.end()).size(), v.size());
    refuse_nodes = false;
    for (void* p : v) stackfree(p, kFixedStack);
    EXPECT_EQ(InuseDelta(), 0);
  }).join();
  StackallocTestPeer::SetNodeSource(nullptr);
}

// 16 threads, 10k random operations each; a third of the frees happen on
// another thread than the allocation. At quiescence the counters are exact.
TEST_F(StackallocTest, SixteenThreadsRandomAllocFreeCountersExact) {
  constexpr int kThreads = 16;
  constexpr int kOps = 10000;
  std::mutex mu;
  std::vector<Held> shared;  // Stacks handed from one thread to another.
  std::vector<std::vector<Held>> live(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t + 1);
      std::vector<Held>& mine = live[t];
      for (int i = 0; i < kOps; ++i) {
        unsigned r = rng() % 6;
        if (r <= 2 || mine.empty()) {
          auto* p = static_cast<unsigned char*>(stackalloc(kFixedStack));
          ASSERT_NE(p, nullptr);
          mine.push_back({p, static_cast<unsigned char>(rng())});
          Fill(mine.back());
        } else if (r == 3) {
          size_t j = rng() % mine.size();
          Verify(mine[j]);
          stackfree(mine[j].p, kFixedStack);
          mine[j] = mine.back();
          mine.pop_back();
        } else if (r == 4) {
          std::lock_guard<std::mutex> l(mu);
          shared.push_back(mine.back());
          mine.pop_back();
        } else {
          Held h{nullptr, 0};
          {
            std::lock_guard<std::mutex> l(mu);
            if (shared.empty()) continue;
            h = shared.back();
            shared.pop_back();
          }
          Verify(h);
          stackfree(h.p, kFixedStack);  // Allocated on another thread.
        }
      }
    });
  }
  for (auto& th : threads) th.join();

  std::vector<Held> all = shared;
  for (auto& v : live) all.insert(all.end(), v.begin(), v.end());
  std::set<unsigned char*> distinct;
  for (const Held& h : all) {
    distinct.insert(h.p);
    Verify(h);
  }
  ASSERT_EQ(distinct.size(), all.size()) << "a stack was handed out twice";
  EXPECT_EQ(InuseDelta(), static_cast<int64_t>(all.size() * kFixedStack));
  EXPECT_EQ(MappedDelta(), NewChunks() * static_cast<int64_t>(kChunk));
  EXPECT_GT(NewChunks(), 0);

  for (const Held& h : all) stackfree(h.p, kFixedStack);
  EXPECT_EQ(InuseDelta(), 0);
  EXPECT_EQ(MappedDelta(), NewChunks() * static_cast<int64_t>(kChunk));
  const MemStats st = ReadMemStats();
  EXPECT_EQ(
      st.stacks_pooled,
      static_cast<uint64_t>(StackallocTestPeer::PoolStacks()) * kFixedStack);
  EXPECT_EQ(
      st.stacks_released,
      static_cast<uint64_t>(StackallocTestPeer::PoolReleasedChunks()) * kChunk);
}

TEST(StackallocDeathTest, NotOnSchedulerStack) {
  EXPECT_DEATH(
      {
        G g;  // Pretend the M now runs a G.
        getm()->set_curg(&g);
        stackalloc(kFixedStack);
      },
      "stackalloc not on scheduler stack");
  EXPECT_DEATH(
      {
        void* p = stackalloc(kFixedStack);
        G g;
        getm()->set_curg(&g);
        stackfree(p, kFixedStack);
      },
      "stackfree not on scheduler stack");
}

TEST(StackallocDeathTest, WrongSizeInMalloc) {
  EXPECT_DEATH(
      {
        getm()->mallocing = 1;
        stackalloc(8192);
      },
      "stackalloc: in malloc, size=4096 want 8192");
  EXPECT_DEATH(
      {
        getm()->gcing = 1;
        stackalloc(100);
      },
      "stackalloc: in malloc, size=4096 want 100");
}

#ifdef ABSL_HAVE_ADDRESS_SANITIZER
TEST(StackallocDeathTest, UseAfterStackfreeIsReportedUnderAsan) {
  EXPECT_DEATH(
      {
        auto* p = static_cast<volatile char*>(stackalloc(kFixedStack));
        stackfree(const_cast<char*>(p), kFixedStack);
        p[100] = 1;
      },
      "use-after-poison");
}
#endif

TEST(StackallocDeathTest, BadArguments) {
  EXPECT_DEATH(stackalloc(0), "stackalloc: zero-sized stack");
#ifndef NDEBUG
  EXPECT_DEATH(stackfree(nullptr, kFixedStack), "stackfree: nil stack");
  EXPECT_DEATH(
      {
        auto* p = static_cast<char*>(stackalloc(kFixedStack));
        stackfree(p + 16, kFixedStack);
      },
      "stackfree: not a FixedStack stack");
#endif
}

}  // namespace
}  // namespace stackalloc
