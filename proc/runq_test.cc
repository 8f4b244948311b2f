// LocalRunq and GList on their own: order, overflow, stealing, and (under
// TSan) an owner racing thieves, with every G taken exactly once.

#include "proc/runq.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "proc/g.h"

namespace stackalloc {
namespace proc {
namespace internal {
namespace {

std::vector<std::unique_ptr<ProcG>> MakeGs(int n) {
  std::vector<std::unique_ptr<ProcG>> gs;
  for (int i = 0; i < n; ++i) {
    gs.push_back(std::make_unique<ProcG>());
    gs.back()->goid = i;
  }
  return gs;
}

TEST(RunqTest, RunnextFirstThenFifo) {
  auto gs = MakeGs(3);
  LocalRunq q;
  GList overflow;
  EXPECT_TRUE(q.Empty());
  ASSERT_TRUE(q.Put(gs[0].get(), &overflow));
  ASSERT_TRUE(q.Put(gs[1].get(), &overflow));
  EXPECT_EQ(q.PutNext(gs[2].get()), nullptr);
  EXPECT_EQ(q.RingSize(), 2u);
  EXPECT_EQ(q.Get(), gs[2].get());
  EXPECT_EQ(q.Get(), gs[0].get());
  EXPECT_EQ(q.Get(), gs[1].get());
  EXPECT_EQ(q.Get(), nullptr);
  EXPECT_TRUE(overflow.empty());
}

TEST(RunqTest, FullRingMovesItsOlderHalfAndTheNewGToOverflow) {
  auto gs = MakeGs(LocalRunq::kSize + 1);
  LocalRunq q;
  GList overflow;
  for (uint32_t i = 0; i < LocalRunq::kSize; ++i) {
    ASSERT_TRUE(q.Put(gs[i].get(), &overflow));
  }
  EXPECT_FALSE(q.Put(gs[LocalRunq::kSize].get(), &overflow));
  ASSERT_EQ(overflow.n, int64_t{LocalRunq::kSize / 2 + 1});
  for (uint32_t i = 0; i < LocalRunq::kSize / 2; ++i) {
    EXPECT_EQ(overflow.PopFront()->goid, int64_t{i});
  }
  EXPECT_EQ(overflow.PopFront(), gs[LocalRunq::kSize].get());
  EXPECT_EQ(q.RingSize(), LocalRunq::kSize / 2);
  EXPECT_EQ(q.Get()->goid, int64_t{LocalRunq::kSize / 2});
}

TEST(RunqTest, StealTakesHalfButRunnextOnlyWhenAsked) {
  auto gs = MakeGs(5);
  LocalRunq victim, thief;
  GList overflow;
  for (int i = 0; i < 4; ++i) victim.Put(gs[i].get(), &overflow);
  victim.PutNext(gs[4].get());
  // Half of 4 from the head: Gs 0 and 1; the last taken is returned.
  EXPECT_EQ(thief.StealFrom(&victim, false), gs[1].get());
  EXPECT_EQ(thief.Get(), gs[0].get());
  EXPECT_EQ(victim.RingSize(), 2u);
  EXPECT_EQ(thief.StealFrom(&victim, false), gs[2].get());  // Half of 2.
  EXPECT_EQ(thief.StealFrom(&victim, false), gs[3].get());  // Half of 1.
  EXPECT_EQ(thief.StealFrom(&victim, false), nullptr);      // Runnext stays.
  EXPECT_EQ(thief.StealFrom(&victim, true), gs[4].get());
  EXPECT_TRUE(victim.Empty());
}

TEST(RunqTest, GListSplitAfterKeepsTheFront) {
  auto gs = MakeGs(5);
  GList l, rest;
  for (auto& g : gs) l.PushBack(g.get());
  l.SplitAfter(2, &rest);
  EXPECT_EQ(l.n, 2);
  EXPECT_EQ(rest.n, 3);
  EXPECT_EQ(l.PopFront()->goid, 0);
  EXPECT_EQ(l.PopFront()->goid, 1);
  EXPECT_EQ(l.PopFront(), nullptr);
  EXPECT_EQ(rest.PopFront()->goid, 2);
}

// The owner puts and gets while two thieves steal (each into a ring of its
// own, which it then drains): every G is taken exactly once.
TEST(RunqTest, OwnerAndThievesTakeEveryGExactlyOnce) {
  constexpr int kGs = 200000;
  auto gs = MakeGs(kGs);
  std::vector<std::atomic<int>> taken(kGs);
  LocalRunq owner_q;
  std::atomic<bool> done{false};
  auto take = [&](ProcG* g) { taken[g->goid].fetch_add(1); };
  std::vector<std::thread> thieves;
  for (int t = 0; t < 2; ++t) {
    thieves.emplace_back([&] {
      LocalRunq mine;
      while (!done.load()) {
        if (ProcG* g = mine.StealFrom(&owner_q, true)) {
          take(g);
          while (ProcG* h = mine.Get()) take(h);
        }
      }
    });
  }
  GList overflow;
  for (int i = 0; i < kGs; ++i) {
    if (i % 7 == 0) {
      if (ProcG* kicked = owner_q.PutNext(gs[i].get())) {
        owner_q.Put(kicked, &overflow);
      }
    } else {
      owner_q.Put(gs[i].get(), &overflow);
    }
    if (i % 3 == 0) {
      if (ProcG* g = owner_q.Get()) take(g);
    }
  }
  while (ProcG* g = owner_q.Get()) take(g);
  done.store(true);
  for (auto& t : thieves) t.join();
  while (ProcG* g = overflow.PopFront()) take(g);
  for (int i = 0; i < kGs; ++i) ASSERT_EQ(taken[i].load(), 1) << "G " << i;
}

}  // namespace
}  // namespace internal
}  // namespace proc
}  // namespace stackalloc
