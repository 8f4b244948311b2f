// README "Failure": "When the OS refuses memory, stackalloc returns nullptr
// and no stack statistic changes." Real refusal (RLIMIT_AS), on a thread
// whose first call it is: binding the M needs `new M` (operator new, which
// throws std::bad_alloc out of stackalloc) and pthread_getattr_np (which
// allocates; on failure getm() dies "cannot read the thread's stack
// bounds"). Neither returns nullptr.

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <thread>
#include <vector>

#include "base/sanitizers.h"
#include "gtest/gtest.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/process_info.h"

namespace stackalloc {
namespace {

using testing_util::VmSize;

// In a child: a thread is created first (its stack mapped), then the
// address space is capped just above what is mapped, then the thread makes
// its first stackalloc call. Exit 0: returned nullptr or a stack.
int FirstCallUnderRlimit(size_t headroom) {
  std::atomic<int> go{0};
  std::atomic<int> result{-1};
  std::thread t([&] {
    while (go.load() == 0) {
    }
    try {
      void* v = stackalloc(kFixedStack);
      result.store(v == nullptr ? 1 : 2);
    } catch (const std::bad_alloc&) {
      result.store(3);
    }
  });
  // Make malloc's arenas exist and then keep nothing spare.
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = VmSize() + headroom;
  setrlimit(RLIMIT_AS, &rl);
  go.store(1);
  t.join();
  return result.load();
}

TEST(RlimitTest, FirstCallOnAThreadUnderRefusalReturnsNullOrAStack) {
  if (sanitizer::kTsan)
    GTEST_SKIP() << "TSan needs memory of its own that RLIMIT_AS refuses";
  for (size_t headroom :
       {size_t{0}, size_t{16} << 10, size_t{64} << 10, size_t{256} << 10}) {
    const pid_t p = fork();
    if (p == 0) _exit(FirstCallUnderRlimit(headroom));
    int st = 0;
    waitpid(p, &st, 0);
    const char* what = !WIFEXITED(st)         ? "died (fatal error / terminate)"
                       : WEXITSTATUS(st) == 1 ? "nullptr"
                       : WEXITSTATUS(st) == 2 ? "a stack"
                       : WEXITSTATUS(st) == 3 ? "threw std::bad_alloc"
                                              : "?";
    fprintf(stderr, "headroom %zu KiB: %s\n", headroom >> 10, what);
    EXPECT_TRUE(WIFEXITED(st) && (WEXITSTATUS(st) == 1 || WEXITSTATUS(st) == 2))
        << "headroom " << (headroom >> 10) << " KiB: " << what;
  }
}

}  // namespace
}  // namespace stackalloc
