// What the child of a fork() inherits, and must still be able to use: the
// Ms of threads that did not survive (flags and all), the guard pages of
// stacks allocated in the parent, and a fatal buffer a parent's thread had
// claimed.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "base/sanitizers.h"
#include "gtest/gtest.h"
#include "proc/proc.h"
#include "sched/m.h"
#include "stackalloc.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace {

using testing_util::DescribeWaitStatus;
using testing_util::RunInChild;
using testing_util::WriteBelow;

// README "Fork": "In the child, the Ms of the threads that did not survive
// are idle, caches intact: the child may call everything, from any thread it
// starts". An M whose thread was inside malloc/GC (set_mallocing(1) /
// set_gcing(1), the seed's flags) when another thread forked kept the flag
// in the child; the child's first new thread took that M over and every
// stackalloc other than kFixedStack died "in malloc".
//
// Forks while another thread sits with its M flagged; in the child a new
// thread allocates an 8 KiB stack. Returns the child's wait status.
int ForkWhileFlagged(bool gc) {
  std::atomic<int> phase{0};
  std::thread t([&] {
    M* m = getm();
    stackfree(stackalloc(8192), 8192);  // Bound, warm.
    if (gc) {
      m->set_gcing(1);
    } else {
      m->set_mallocing(1);
    }
    phase.store(1);
    while (phase.load() != 2) std::this_thread::yield();
    if (gc) {
      m->set_gcing(0);
    } else {
      m->set_mallocing(0);
    }
  });
  while (phase.load() != 1) std::this_thread::yield();
  // The forking thread is bound too, so its M is not the one a new child
  // thread gets; the flagged M is the only idle one in the child.
  stackfree(stackalloc(4096), 4096);
  const int status = RunInChild([] {
    int ok = 0;
    std::thread c([&] {
      void* v = stackalloc(8192);
      if (v != nullptr) {
        stackfree(v, 8192);
        ok = 1;
      }
    });
    c.join();
    return ok ? 0 : 1;
  });
  phase.store(2);
  t.join();
  return status;
}

TEST(ForkChildTest, ChildThreadAfterAFlaggedMCanAllocateAnyOrder) {
  if (sanitizer::kTsan)
    GTEST_SKIP() << "TSan cannot start threads after a multi-threaded fork";
  for (bool gc : {false, true}) {
    const int status = ForkWhileFlagged(gc);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << (gc ? "gcing: " : "mallocing: ") << DescribeWaitStatus(status);
  }
}

// Guards survive fork(): a stack allocated (guard installed) in the parent,
// overflowed in the child, is reported -- also when the parent never wrote
// to any stack page (the arena mapping has no anonymous pages yet).
//
// Allocates a stack (written first if `touched`), forks, and writes just
// below it in the child: the child's overflow must be reported (the parent
// then dies of the child's report, which it prints).
[[noreturn]] void OverflowInAChild(bool touched) {
  void* s = stackalloc(kFixedStack);
  if (touched) static_cast<volatile char*>(s)[100] = 1;
  const int st = RunInChild([s] { WriteBelow(s, 8); });
  if (WIFEXITED(st)) {
    // Not reported, no fault: wrote into the neighbour.
    fprintf(stderr, "child wrote below its stack without a fault\n");
    exit(0);
  }
  exit(1);
}

TEST(ForkChildDeathTest, ChildOverflowIsReportedUntouchedOrTouched) {
  for (bool touched : {false, true}) {
    EXPECT_DEATH(OverflowInAChild(touched), "stack overflow: 4096-byte stack")
        << (touched ? "touched" : "never written in the parent");
  }
}

// FatalBuffer (base/throw.h) is claimed by the first thread of a process to
// die. A claim made in the parent, by a thread still writing its message
// (stderr slow: here a full pipe) when another thread forks, is not the
// child's: the child's own fatal error (WithStack: frame too large) prints
// and aborts. It once parked for ever in pause().
TEST(ForkChildTest, ChildsFatalErrorAbortsThoughAParentThreadWasDying) {
  const int status = RunInChild([] {
    // P: stderr becomes a full pipe nobody reads.
    int fds[2];
    if (pipe(fds) != 0) return 10;
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    char junk[4096] = {};
    while (write(fds[1], junk, sizeof(junk)) > 0) {
    }
    fcntl(fds[1], F_SETFL, 0);
    dup2(fds[1], STDERR_FILENO);
    std::thread dying([] {
      // Claims FatalBuffer, then blocks in Throw's writev.
      proc::WithStack(size_t{1} << 40, [] {});
    });
    dying.detach();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const int c = RunInChild(
        [] {
          int devnull = open("/dev/null", O_WRONLY);
          dup2(devnull, STDERR_FILENO);
          proc::WithStack(size_t{1} << 41, [] {});  // Must print and abort.
          return 11;
        },
        nullptr, 2000);
    if (WIFSIGNALED(c) && WTERMSIG(c) == SIGABRT) return 0;
    return WIFSIGNALED(c) && WTERMSIG(c) == SIGKILL ? 13 : 12;
  });
  EXPECT_EQ(DescribeWaitStatus(status), "exit 0")
      << "13: the child's fatal error parked for ever (FatalBuffer claimed "
         "by a thread of the parent that did not follow the fork)";
}

}  // namespace
}  // namespace stackalloc
