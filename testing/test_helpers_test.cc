#include "testing/test_helpers.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "sched/m.h"
#include "stackalloc.h"
#include "stats/mstats.h"

namespace stackalloc {
namespace testing_util {
namespace {

TEST(TestHelpersTest, StackStatsDiffNamesWhatDiffersButMetaSys) {
  MemStats a, b;
  EXPECT_EQ(StackStatsDiff(a, b), "");
  b.stacks_meta_sys = 7;
  EXPECT_EQ(StackStatsDiff(a, b), "");
  b.stacks_inuse = 4096;
  b.orders[2].pooled = 16384;
  EXPECT_EQ(StackStatsDiff(a, b), "inuse 0->4096, order 2 pooled 0->16384");
}

TEST(TestHelpersTest, PoolsAreExactAtQuiescence) {
  AllocAndFreeEveryOrder(40);
  EXPECT_EQ(FirstInexactPool(), -1);
}

TEST(TestHelpersTest, AMarkedStackSeesAWriteAtItsEndsOrMiddle) {
  constexpr size_t kN = 8192;
  auto* p = static_cast<unsigned char*>(stackalloc(kN));
  ASSERT_NE(p, nullptr);
  const MarkedStack s{p, kN, 0x5a};
  for (size_t at : {size_t{0}, kN / 2, kN - 1}) {
    s.Mark();
    EXPECT_TRUE(s.Intact());
    p[at] ^= 1;
    EXPECT_FALSE(s.Intact()) << at;
  }
  stackfree(p, kN);
}

TEST(TestHelpersDeathTest, RecurseUntilOverflowRunsIntoTheGuard) {
  EXPECT_DEATH(
      {
        auto* stack = static_cast<char*>(stackalloc(kFixedStack));
        getm();  // The thread's signal stack, for the report.
        CallWithStackPointer(stack + kFixedStack - 64, &RecurseUntilOverflow);
      },
      "fatal error: stack overflow: 4096-byte stack");
}

TEST(TestHelpersTest, RunThreadsRunsEveryIndexAtOnce) {
  std::atomic<int> started{0};
  std::atomic<int> sum{0};
  RunThreads(4, [&](int i) {
    started.fetch_add(1);
    while (started.load() < 4) {  // Only if all four run at once.
    }
    sum.fetch_add(i);
  });
  EXPECT_EQ(sum.load(), 0 + 1 + 2 + 3);
}

TEST(TestHelpersTest, WaitUntilSeesAnotherThreadsWorkOrGivesUp) {
  std::atomic<bool> set{false};
  std::thread setter([&] { set.store(true); });
  EXPECT_TRUE(WaitUntil([&] { return set.load(); }));
  setter.join();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(WaitUntil([] { return false; }, std::chrono::milliseconds(20)));
  EXPECT_GE(std::chrono::steady_clock::now() - start,
            std::chrono::milliseconds(20));
}

TEST(TestHelpersTest, RunInChildReturnsTheStatusAndWhatItWrote) {
  EXPECT_EQ(DescribeWaitStatus(RunInChild([] { return 3; })), "exit 3");
  EXPECT_EQ(DescribeWaitStatus(RunInChild([] {})), "exit 0");
  std::string err;
  const int status = RunInChild(
      [] {
        fprintf(stderr, "dying");
        fflush(stderr);
        abort();
      },
      &err);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT)
      << DescribeWaitStatus(status);
  EXPECT_EQ(err, "dying");
}

TEST(TestHelpersTest, RunInChildKillsAChildThatOutstaysItsTime) {
  const int status = RunInChild([] { pause(); }, nullptr, 100);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << DescribeWaitStatus(status);
  std::string err;
  const int status2 = RunInChild([] { pause(); }, &err, 100);
  EXPECT_TRUE(WIFSIGNALED(status2) && WTERMSIG(status2) == SIGKILL)
      << DescribeWaitStatus(status2);
  EXPECT_EQ(DescribeWaitStatus(status2), "signal 9 (Killed)");
}

}  // namespace
}  // namespace testing_util
}  // namespace stackalloc
