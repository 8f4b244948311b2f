#include "sched/m.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace stackalloc {
namespace {

std::vector<M*> WalkAllm() {
  std::vector<M*> ms;
  for (M* m = allm(); m != nullptr; m = m->alllink()) ms.push_back(m);
  return ms;
}

// Runs first (gtest keeps declaration order within a file and this is the
// only test that registers Ms before it), so ids start at 0.
TEST(MTest, SixtyFourThreadsRegisterAtOnceWhileAReaderWalks) {
  ASSERT_EQ(mcount(), 0);
  ASSERT_EQ(allm(), nullptr);
  constexpr int kThreads = 64;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<bool> done{false};
  std::atomic<int> registered{0};
  std::vector<M*> ms(kThreads);

  // The reader walks allm continuously; every walk must see distinct, fully
  // initialised Ms and never more than have registered.
  std::atomic<int64_t> walks{0};
  std::thread reader([&] {
    while (!done.load(std::memory_order_acquire)) {
      std::set<int64_t> ids;
      int32_t upper = mcount();
      for (M* m = allm(); m != nullptr; m = m->alllink()) {
        ASSERT_GE(m->id(), 0);
        ASSERT_LT(m->id(), kThreads);
        ASSERT_EQ(m->fastrand(), 0x49f6428aU + m->id());
        ASSERT_EQ(m->stackalloc.size(), kFixedStack);
        ASSERT_TRUE(ids.insert(m->id()).second) << "M twice on allm";
      }
      ASSERT_LE(static_cast<int32_t>(ids.size()), std::max(upper, mcount()));
      walks.fetch_add(1, std::memory_order_relaxed);
    }
  });

  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      ms[i] = getm();
      EXPECT_EQ(getm(), ms[i]);  // Bound once per thread.
      // Stay alive until all have registered, or exited threads' Ms would
      // be reused.
      registered.fetch_add(1);
      while (registered.load() != kThreads) std::this_thread::yield();
    });
  }
  while (ready.load() != kThreads) std::this_thread::yield();
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  done.store(true, std::memory_order_release);
  reader.join();

  EXPECT_EQ(mcount(), kThreads);
  std::set<int64_t> ids;
  for (M* m : ms) ids.insert(m->id());
  ASSERT_EQ(ids.size(), static_cast<size_t>(kThreads));
  EXPECT_EQ(*ids.begin(), 0);
  EXPECT_EQ(*ids.rbegin(), kThreads - 1);

  std::vector<M*> listed = WalkAllm();
  EXPECT_EQ(listed.size(), static_cast<size_t>(kThreads));
  EXPECT_EQ(std::set<M*>(listed.begin(), listed.end()),
            std::set<M*>(ms.begin(), ms.end()));
  EXPECT_GT(walks.load(), 0);
}

TEST(MTest, ExitedThreadsMsAreReusedOnTheNewThreadsStack) {
  // The 64 threads above have exited: their Ms wait on the idle list.
  const int32_t ms = mcount();
  ASSERT_EQ(idle_m_count(), ms);
  M* reused = nullptr;
  std::thread([&] {
    M* m = getm();
    int local = 0;
    EXPECT_EQ(idle_m_count(), ms - 1);
    EXPECT_EQ(m->curg(), m->g0());
    EXPECT_TRUE(m->g0()->OnStack(&local)) << "g0 still on the old thread";
    EXPECT_EQ(m->g0()->m, m);
    EXPECT_EQ(m->stackalloc_fast_size(), kFixedStack);
    EXPECT_EQ(internal::tls_m, m);
    reused = m;
  }).join();
  EXPECT_EQ(mcount(), ms) << "a new M was created although one was idle";
  EXPECT_EQ(idle_m_count(), ms);
  std::vector<M*> listed = WalkAllm();
  EXPECT_NE(std::find(listed.begin(), listed.end(), reused), listed.end());
  EXPECT_EQ(listed.size(), static_cast<size_t>(ms));
}

TEST(MTest, DropmUnbindsAndTheNextGetmRebinds) {
  std::thread([] {
    M* m = getm();
    const int32_t idle = idle_m_count();
    dropm();
    EXPECT_EQ(internal::tls_m, internal::UnboundM());
    EXPECT_EQ(idle_m_count(), idle + 1);
    M* again = getm();  // LIFO idle list: the same M, warm.
    EXPECT_EQ(again, m);
    EXPECT_EQ(idle_m_count(), idle);
  }).join();
}

TEST(MTest, SetCurgTracksTheFastSize) {
  M* m = getm();
  G other;
  m->set_curg(&other);
  EXPECT_EQ(m->stackalloc_fast_size(), M::kNotOnG0);
  m->set_curg(m->g0());
  EXPECT_EQ(m->stackalloc_fast_size(), kFixedStack);
}

TEST(MTest, UnboundSentinelNeverMatchesASize) {
  std::thread([] {
    EXPECT_EQ(internal::tls_m, internal::UnboundM());
    EXPECT_EQ(internal::UnboundM()->stackalloc_fast_size(), M::kNotOnG0);
  }).join();
}

}  // namespace
}  // namespace stackalloc
