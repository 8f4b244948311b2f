// README "Fork": "In the child, the Ms of the threads that did not survive
// are idle, caches intact: the child may call everything, from any thread it
// starts". An M whose thread was inside malloc/GC (set_mallocing(1) /
// set_gcing(1), the seed's flags) when another thread forked keeps the flag
// in the child; the child's first new thread takes that M over and every
// stackalloc other than kFixedStack dies "in malloc".

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "base/sanitizers.h"
#include "gtest/gtest.h"
#include "sched/m.h"
#include "stackalloc.h"

namespace stackalloc {
namespace {

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
  const pid_t pid = fork();
  if (pid == 0) {
    int ok = 0;
    std::thread c([&] {
      void* v = stackalloc(8192);
      if (v != nullptr) {
        stackfree(v, 8192);
        ok = 1;
      }
    });
    c.join();
    _exit(ok ? 0 : 1);
  }
  phase.store(2);
  t.join();
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

TEST(ForkFlagsTest, ChildThreadAfterMallocingMCanAllocateAnyOrder) {
  if (sanitizer::kTsan)
    GTEST_SKIP() << "TSan cannot start threads after a multi-threaded fork";
  const int status = ForkWhileFlagged(false);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "child status " << status
      << (WIFSIGNALED(status) ? " (killed by signal)" : "");
}

TEST(ForkFlagsTest, ChildThreadAfterGcingMCanAllocateAnyOrder) {
  if (sanitizer::kTsan)
    GTEST_SKIP() << "TSan cannot start threads after a multi-threaded fork";
  const int status = ForkWhileFlagged(true);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "child status " << status
      << (WIFSIGNALED(status) ? " (killed by signal)" : "");
}

}  // namespace
}  // namespace stackalloc
