#include "base/check.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <limits>
#include <string>

#include "base/throw.h"
#include "gtest/gtest.h"

namespace stackalloc {
namespace {

TEST(CheckTest, PassingChecksDoNothing) {
  int evaluated = 0;
  STACKALLOC_CHECK(++evaluated == 1);
  STACKALLOC_CHECK_EQ(evaluated, 1);
  STACKALLOC_CHECK_LE(1, 2);
  EXPECT_EQ(evaluated, 1);
}

TEST(CheckDeathTest, FailingCheckNamesFileLineAndCondition) {
  int x = 3;
  EXPECT_DEATH(STACKALLOC_CHECK(x == 4),
               "fatal error: check failed: base/check_test.cc:[0-9]+: x == 4");
  EXPECT_DEATH(STACKALLOC_CHECK_LT(x, 2), "x < 2 \\(3 vs 2\\)");
}

TEST(CheckDeathTest, DcheckRunsOnlyInDebugBuilds) {
  int evaluated = 0;
  STACKALLOC_DCHECK(++evaluated > 0);
  EXPECT_EQ(evaluated, STACKALLOC_DEBUG_CHECKS ? 1 : 0);
#if STACKALLOC_DEBUG_CHECKS
  EXPECT_DEATH(STACKALLOC_DCHECK(evaluated == 0), "evaluated == 0");
#endif
}

TEST(RawBufferTest, FormatsWithoutLibraryCalls) {
  RawBuffer b;
  b.Str("x=").Dec(-42).Str(" u=").Udec(18446744073709551615u).Str(" h=");
  b.Hex(0xdeadbeef).Str(" z=").Hex(0).Str(" m=");
  b.Dec(std::numeric_limits<int64_t>::min());
  EXPECT_STREQ(b.c_str(),
               "x=-42 u=18446744073709551615 h=0xdeadbeef z=0x0 "
               "m=-9223372036854775808");
}

TEST(RawBufferTest, CutsLongText) {
  RawBuffer b;
  for (int i = 0; i < 100; ++i) b.Str("0123456789");
  EXPECT_LT(b.size(), 1000u);
  EXPECT_EQ(b.c_str()[b.size()], '\0');
}

// stderr a pipe set O_NONBLOCK and full when the process dies: the message
// waits for the reader, which drains the pipe 200 ms after the child said
// the pipe was full, and arrives.
// Regression: the write gave up on EAGAIN and the report was lost.
TEST(ThrowTest, AFullNonBlockingStderrStillGetsTheMessage) {
  int err[2];
  int full[2];  // The child's word that err is full.
  ASSERT_EQ(pipe2(err, O_NONBLOCK), 0);
  ASSERT_EQ(pipe(full), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(err[0]);
    close(full[0]);
    if (dup2(err[1], STDERR_FILENO) < 0) _exit(90);
    char fill[4096] = {};
    while (write(STDERR_FILENO, fill, sizeof fill) > 0) {
    }
    if (errno != EAGAIN) _exit(91);
    if (write(full[1], "f", 1) != 1) _exit(92);
    Throw("the message after a full pipe");
  }
  close(err[1]);
  close(full[1]);
  char word = 0;
  ASSERT_EQ(read(full[0], &word, 1), 1);  // The pipe is full.
  close(full[0]);
  usleep(200 * 1000);
  std::string got;
  char buf[4096];
  const int flags = fcntl(err[0], F_GETFL);
  ASSERT_EQ(fcntl(err[0], F_SETFL, flags & ~O_NONBLOCK), 0);
  for (ssize_t n; got.size() < (size_t{16} << 20) &&
                  (n = read(err[0], buf, sizeof buf)) > 0;) {
    got.append(buf, static_cast<size_t>(n));
  }
  close(err[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) << status;
  EXPECT_NE(got.find("fatal error: the message after a full pipe\n"),
            std::string::npos)
      << got.size() << " bytes read";
}

}  // namespace
}  // namespace stackalloc
