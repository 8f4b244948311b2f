// Ms of exited threads are reused, warm caches and all: 10,000 short-lived
// threads, at most 8 alive at a time, each allocating and freeing stacks,
// leave allm at no more than 8 Ms besides the main thread's, stacks_sys
// bounded, and every stack accounted for.

#include <atomic>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "sched/m.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace {

using testing_util::RunThreads;

int AllmLength() {
  int n = 0;
  for (M* m = allm(); m != nullptr; m = m->alllink()) ++n;
  return n;
}

TEST(MReuseTest, TenThousandShortLivedThreadsReuseAtMostEightMs) {
  constexpr int kThreads = 10000;
  constexpr int kAtOnce = 8;
  constexpr int kStacksPerThread = 40;  // More than one cache: uses the pool.
  getm();                               // The main thread's M.
  ASSERT_EQ(AllmLength(), 1);

  std::atomic<int64_t> bad{0};
  std::atomic<int64_t> ms_seen_max{0};
  uint64_t max_sys = 0;
  for (int started = 0; started < kThreads; started += kAtOnce) {
    RunThreads(kAtOnce, [&, started](int t) {
      const int seed = started + t;
      void* stacks[kStacksPerThread];
      for (int i = 0; i < kStacksPerThread; ++i) {
        stacks[i] = stackalloc(kFixedStack);
        if (stacks[i] == nullptr) {
          bad.fetch_add(1);
          return;
        }
        memset(stacks[i], (seed + i) & 0xff, kFixedStack);
      }
      for (int i = 0; i < kStacksPerThread; ++i) {
        auto* p = static_cast<unsigned char*>(stacks[i]);
        if (p[0] != ((seed + i) & 0xff) || p[kFixedStack - 1] != p[0]) {
          bad.fetch_add(1);
        }
        stackfree(stacks[i], kFixedStack);
      }
      int64_t id = getm()->id();
      int64_t prev = ms_seen_max.load();
      while (id > prev && !ms_seen_max.compare_exchange_weak(prev, id)) {
      }
    });
    max_sys = std::max(max_sys, ReadMemStats().stacks_sys);
  }
  EXPECT_EQ(bad.load(), 0) << "a stack was refused or lost its contents";
  EXPECT_LE(AllmLength(), kAtOnce + 1);
  EXPECT_EQ(AllmLength(), mcount());
  EXPECT_LE(ms_seen_max.load(), kAtOnce);
  EXPECT_EQ(idle_m_count(), mcount() - 1);  // All but main's are idle.

  // Bounded: at most 8 threads' worth of live stacks plus, per M, a full
  // cache and a partly carved chunk, plus one batch in flight each.
  const MemStats st = ReadMemStats();
  const uint64_t ms = static_cast<uint64_t>(mcount());
  const uint64_t bound =
      kAtOnce * kStacksPerThread * kFixedStack +
      ms * (kStackCacheDefaultLimit * kFixedStack + FixAlloc::kChunk) +
      ms * (kStackCacheDefaultLimit / 2) * kFixedStack;
  EXPECT_LE(max_sys, bound);

  // Every stack accounted for: none in use, the rest cached or pooled or in
  // the Ms' partly carved chunks.
  EXPECT_EQ(st.stacks_inuse, 0u);
  EXPECT_LE(st.stacks_cached + st.stacks_pooled, st.stacks_sys);
  EXPECT_LT(st.stacks_sys - st.stacks_cached - st.stacks_pooled,
            ms * FixAlloc::kChunk);
}

// A thread_local object built before the thread's first stackalloc is
// destroyed after everything the runtime set up for the thread; if it frees
// stacks then, the M must still go back to the idle list.
struct LateFreer {
  std::vector<void*> stacks;
  ~LateFreer() {
    for (void* p : stacks) stackfree(p, kFixedStack);
  }
};

TEST(MReuseTest, StacksFreedByLateThreadLocalDestructorsDoNotStrandMs) {
  getm();
  const int32_t ms0 = mcount();
  for (int t = 0; t < 200; ++t) {
    std::thread([] {
      static thread_local LateFreer late;
      late.stacks.push_back(nullptr);  // Constructed before any getm().
      late.stacks.pop_back();
      for (int i = 0; i < 40; ++i) {
        late.stacks.push_back(stackalloc(kFixedStack));
      }
    }).join();
  }
  EXPECT_LE(mcount(), ms0 + 1) << "Ms leaked at thread exit";
  EXPECT_EQ(idle_m_count(), mcount() - 1);
  EXPECT_EQ(ReadMemStats().stacks_inuse, 0u);
}

// The scavenger empties the caches of idle Ms (their threads exited), so
// their chunks can go back to the OS too.
TEST(MReuseTest, ScavengeEmptiesIdleMsCaches) {
  std::thread([] {
    std::vector<void*> v;
    for (int i = 0; i < 100; ++i) v.push_back(stackalloc(kFixedStack));
    for (void* p : v) stackfree(p, kFixedStack);
  }).join();
  ASSERT_GT(ReadMemStats().stacks_cached,
            getm()->mcache.stackcache.c[0].stats.cached.value() * kFixedStack);
  ScavengeStacks();
  const MemStats st = ReadMemStats();
  EXPECT_EQ(st.stacks_cached,
            static_cast<uint64_t>(
                getm()->mcache.stackcache.c[0].stats.cached.value()) *
                kFixedStack);
  for (M* m = allm(); m != nullptr; m = m->alllink()) {
    if (m != getm()) {
      EXPECT_EQ(m->mcache.stackcache.c[0].stats.cached.value(), 0) << m->id();
    }
  }
}

}  // namespace
}  // namespace stackalloc
