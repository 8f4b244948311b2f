// The stack census at Stop(): printed to stderr when Options or the
// environment ask, exactly FormatStackUsage's table of every stack once the
// Gs' stacks are back, and nothing otherwise. stderr is captured in a file
// around Stop(), in this process (no death test, no child).

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <string>

#include "gtest/gtest.h"
#include "proc/proc.h"
#include "stackalloc.h"

namespace stackalloc {
namespace proc {
namespace {

// What f wrote to stderr (fd 2), read back from a temporary file.
template <typename F>
std::string CaptureStderr(F f) {
  fflush(stderr);
  char path[] = "/tmp/stack_usage_test.XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) abort();
  unlink(path);
  const int saved = dup(STDERR_FILENO);
  if (saved < 0 || dup2(fd, STDERR_FILENO) < 0) abort();
  f();
  fflush(stderr);
  if (dup2(saved, STDERR_FILENO) < 0) abort();
  close(saved);
  std::string out;
  char buf[4096];
  lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) out.append(buf, n);
  close(fd);
  return out;
}

// The census's table as it is now.
std::string Table() {
  char buf[8192];
  const size_t n = FormatStackUsage(buf, sizeof(buf));
  EXPECT_LT(n, sizeof(buf));
  return std::string(buf, n);
}

// Runs Gs that take a segment each and write a few KiB into it, then stops
// the runtime with stderr captured; returns what Stop printed.
std::string RunAndStop(bool print_stack_usage) {
  Options o;
  o.gomaxprocs = 2;
  o.print_stack_usage = print_stack_usage;
  Start(o);
  std::atomic<int> done{0};
  for (int i = 0; i < 100; ++i) {
    Go([&done] {
      WithStack(kFixedStack, [&done] {
        volatile char pad[3 << 10];
        for (size_t b = 0; b < sizeof(pad); b += 256) pad[b] = 1;
        done.fetch_add(1);
      });
    });
  }
  Wait();
  EXPECT_EQ(done.load(), 100);
  return CaptureStderr([] { Stop(); });
}

class StopStackUsageTest : public ::testing::Test {
 protected:
  void SetUp() override { unsetenv("STACKALLOC_STACK_USAGE"); }
  void TearDown() override { unsetenv("STACKALLOC_STACK_USAGE"); }
};

TEST_F(StopStackUsageTest, PrintedWhenOptionsAsk) {
  const std::string printed = RunAndStop(true);
  // Nothing has moved since Stop(): the same census, the same text.
  EXPECT_EQ(printed, Table());
  EXPECT_EQ(printed.rfind("stack usage: ", 0), 0u) << printed;
  // A row for every order that has stacks (the Gs' 4 KiB stacks, their
  // segments), each starting with its stack size right-aligned in 8
  // columns; and the segments' pages touched.
  const StackUsage u = ReadStackUsage();
  EXPECT_GE(u.orders[0].stacks, 2u);
  uint64_t segments_touched = 0;
  for (int k = 0; k < kNumStackOrders; ++k) {
    const StackOrderUsage& o = u.orders[k];
    const std::string name = o.stack_size == kMaxOrderStack
                                 ? std::string("1 MiB")
                                 : std::to_string(o.stack_size >> 10) + " KiB";
    const std::string row = "\n" + std::string(8 - name.size(), ' ') + name;
    EXPECT_EQ(printed.find(row) != std::string::npos, o.stacks != 0)
        << name << "\n"
        << printed;
    if (k > 0) segments_touched += o.stacks - o.depth[0];
  }
  EXPECT_GT(segments_touched, 0u);
}

TEST_F(StopStackUsageTest, NothingPrintedUnlessAsked) {
  EXPECT_EQ(RunAndStop(false), "");
  setenv("STACKALLOC_STACK_USAGE", "0", 1);
  EXPECT_EQ(RunAndStop(false), "");
  setenv("STACKALLOC_STACK_USAGE", "", 1);
  EXPECT_EQ(RunAndStop(false), "");
}

TEST_F(StopStackUsageTest, PrintedWhenTheEnvironmentAsks) {
  setenv("STACKALLOC_STACK_USAGE", "1", 1);
  const std::string printed = RunAndStop(false);
  EXPECT_EQ(printed, Table());
  EXPECT_EQ(printed.rfind("stack usage: ", 0), 0u) << printed;
}

// Stop() without a runtime prints nothing, even when asked.
TEST_F(StopStackUsageTest, NoRuntimeNoTable) {
  setenv("STACKALLOC_STACK_USAGE", "1", 1);
  EXPECT_EQ(CaptureStderr([] { Stop(); }), "");
}

}  // namespace
}  // namespace proc
}  // namespace stackalloc
