// proc.h: Go may be called from an ordinary thread while a runtime runs,
// and Stop is Wait(), then ends the Ms. A Go from an ordinary thread that
// overlaps Stop is either refused ("go: no runtime") or its G runs before
// Stop returns; here Go has begun (its closure is being copied, slowly)
// before Stop, so Stop must wait for it and the G must run. It once
// crashed: Stop's Wait did not see a G between NewprocStart and
// NewprocFinish and deleted the runtime under it.

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "proc/proc.h"

namespace stackalloc {
namespace proc {
namespace {

std::atomic<bool> copying{false};
std::atomic<bool> ran{false};

struct SlowCopy {
  SlowCopy() = default;
  SlowCopy(const SlowCopy&) {
    copying = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  void operator()() const { ran = true; }
};

int Child() {
  Options o;
  o.gomaxprocs = 1;
  Start(o);
  std::thread t([] {
    SlowCopy f;
    Go(f);
  });
  while (!copying) std::this_thread::yield();
  Stop();
  t.join();
  return ran ? 0 : 3;  // 3: Go returned, and its G was dropped.
}

TEST(GoRacesStopTest, StopWaitsForASpawnUnderWayOnAnotherThread) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], STDERR_FILENO);
    _exit(Child());
  }
  close(fds[1]);
  std::string err;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) err.append(buf, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const bool g_ran = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  EXPECT_TRUE(g_ran) << "status " << status << " (signal "
                     << (WIFSIGNALED(status) ? WTERMSIG(status) : 0)
                     << ", exit "
                     << (WIFEXITED(status) ? WEXITSTATUS(status) : -1)
                     << "), stderr: " << err;
}

}  // namespace
}  // namespace proc
}  // namespace stackalloc
