// README "Limits": allm holds about as many Ms as the most threads that
// were in the runtime at once; a thread that enters while a scavenger holds
// an idle M takes another, or a new one rather than wait, so a few more may
// appear, but the count does not grow with thread churn. (It did: TakeIdleM
// made a new M whenever the top of the idle list was borrowed, and 3,000
// rounds of churn left 89 Ms.)

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "sched/m.h"
#include "stackalloc.h"

namespace stackalloc {
namespace {

TEST(McountTest, ChurnWithAScavengerStaysWithinThePeakPlusOne) {
  getm();  // main: 1 M.
  std::atomic<bool> stop{false};
  std::thread scavenger([&] {
    while (!stop.load()) ScavengeStacks();
  });
  // Warm: some idle Ms with full caches (long to empty).
  constexpr int kConcurrent = 2;
  const auto churn = [] {
    std::vector<void*> v;
    for (int k = 0; k < kNumStackOrders; ++k) {
      for (int i = 0; i < 40; ++i) v.push_back(stackalloc(OrderStackSize(k)));
      for (void* p : v) stackfree(p, OrderStackSize(k));
      v.clear();
    }
  };
  for (int round = 0; round < 1000; ++round) {
    std::vector<std::thread> ts;
    for (int i = 0; i < kConcurrent; ++i) ts.emplace_back(churn);
    for (auto& t : ts) t.join();
  }
  stop.store(true);
  scavenger.join();
  // At most main + scavenger + kConcurrent threads at once, + 1 for the
  // scavenger's borrow, + 1 for a binder racing another past it.
  const int bound = 1 + 1 + kConcurrent + 2;
  fprintf(stderr, "mcount %d, bound %d\n", mcount(), bound);
  EXPECT_LE(mcount(), bound);
}

}  // namespace
}  // namespace stackalloc
