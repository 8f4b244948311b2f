// The public calls a fiber's code may make from a G (proc.h: Gs run on
// 4 KiB stacks; stackalloc.h and mstats.h put no "g0 only" on these):
// ScavengeStacks(), ReadMemStats(), SetStackCacheLimit(), ... run on the G's
// own 4 KiB stack.

#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "proc/proc.h"
#include "sched/m.h"
#include "stackalloc.h"
#include "stats/mstats.h"

namespace stackalloc {
namespace {

void WarmIdleMs() {
  // Idle Ms with full caches of every order: ScavengeStacks empties them.
  for (int t = 0; t < 3; ++t) {
    std::thread([] {
      std::vector<void*> v;
      for (int k = 0; k < kNumStackOrders; ++k) {
        for (int i = 0; i < 40; ++i) v.push_back(stackalloc(OrderStackSize(k)));
        for (void* p : v) stackfree(p, OrderStackSize(k));
        v.clear();
      }
    }).join();
  }
}

TEST(GCallsDeathTest, ScavengeStacksFromAG) {
  EXPECT_EXIT(
      {
        WarmIdleMs();
        proc::Start(proc::Options{});
        proc::Go([] { ScavengeStacks(); });
        proc::Wait();
        exit(0);
      },
      testing::ExitedWithCode(0), "");
}

TEST(GCallsDeathTest, ReadMemStatsAndKnobsFromAG) {
  EXPECT_EXIT(
      {
        proc::Start(proc::Options{});
        proc::Go([] {
          MemStats s = ReadMemStats();
          (void)s;
          SetStackCacheLimit(8);
          SetScavengeThreshold(0);
          SetStackGuards(true);
        });
        proc::Wait();
        exit(0);
      },
      testing::ExitedWithCode(0), "");
}

// A thread that ends while its M still says it runs a G (a runtime that
// let a fiber's thread exit, or forgot set_curg(g0)): the automatic dropm()
// at thread exit dies "dropm not on scheduler stack" -- a fatal error at
// thread exit that nothing in stackalloc.h / m.h announces (only dropm()'s
// own comment says "The thread must be on g0").
TEST(GCallsDeathTest, ThreadExitOffG0) {
  EXPECT_EXIT(
      {
        std::thread([] {
          static G g;
          getm()->set_curg(&g);
        }).join();
        exit(0);
      },
      testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace stackalloc
