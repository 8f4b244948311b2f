// FatalBuffer (base/throw.h) is claimed by the first thread of a process to
// die. A claim made in the parent, by a thread still writing its message
// (stderr slow: here a full pipe) when another thread forks, is not the
// child's: the child's own fatal error (WithStack: frame too large) prints
// and aborts. It once parked for ever in pause().
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "proc/proc.h"

namespace stackalloc {
namespace proc {
namespace {

TEST(FatalBufferFork, ChildsFatalErrorAborts) {
  const pid_t p = fork();
  if (p == 0) {
    // P: stderr becomes a full pipe nobody reads.
    int fds[2];
    if (pipe(fds) != 0) _exit(10);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    char junk[4096] = {};
    while (write(fds[1], junk, sizeof(junk)) > 0) {
    }
    fcntl(fds[1], F_SETFL, 0);
    dup2(fds[1], STDERR_FILENO);
    std::thread dying([] {
      WithStack(size_t{1} << 40, [] {});  // claims FatalBuffer, then blocks
    });                                   // in Throw's writev
    dying.detach();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const pid_t c = fork();
    if (c == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, STDERR_FILENO);
      WithStack(size_t{1} << 41, [] {});  // must print and abort
      _exit(11);
    }
    int st = 0;
    for (int i = 0; i < 200; ++i) {
      if (waitpid(c, &st, WNOHANG) == c) {
        _exit(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT ? 0 : 12);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(c, SIGKILL);
    waitpid(c, &st, 0);
    _exit(13);  // the child hung
  }
  int st = 0;
  waitpid(p, &st, 0);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0)
      << "13: the child's fatal error parked for ever (FatalBuffer claimed "
         "by a thread of the parent that did not follow the fork)";
}

}  // namespace
}  // namespace proc
}  // namespace stackalloc
