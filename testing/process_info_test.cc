#include "testing/process_info.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/sanitizers.h"
#include "gtest/gtest.h"

namespace stackalloc {
namespace testing_util {
namespace {

using sanitizer::kTsan;

// A mapping of its own shows up in every reader: one more line of maps, its
// size in the address space, its touched pages in RSS.
TEST(ProcessInfoTest, AMappingIsSeenByEveryReader) {
  constexpr size_t kBytes = size_t{32} << 20;
  const int maps0 = MapsLines();
  const size_t vm0 = VmSize();
  const int64_t rss0 = RssKiB();
  ASSERT_GT(maps0, 0);
  ASSERT_GT(rss0, 0);
  EXPECT_EQ(MapsLines(getpid()), maps0);
  // PROT_NONE beside it keeps it from merging with a neighbour.
  auto* p = static_cast<char*>(mmap(nullptr, kBytes + 2 * 4096, PROT_NONE,
                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(p, MAP_FAILED);
  ASSERT_EQ(mprotect(p + 4096, kBytes, PROT_READ | PROT_WRITE), 0);
  memset(p + 4096, 1, kBytes);
  // Guard, body, guard; TSan maps shadow and metadata for it besides.
  if (kTsan) {
    EXPECT_GE(MapsLines(), maps0 + 3);
  } else {
    EXPECT_EQ(MapsLines(), maps0 + 3);
  }
  EXPECT_GE(VmSize(), vm0 + kBytes);
  EXPECT_GE(RssKiB(), rss0 + static_cast<int64_t>(kBytes >> 10) * 9 / 10);
  ASSERT_EQ(munmap(p, kBytes + 2 * 4096), 0);
  if (!kTsan) {
    EXPECT_EQ(MapsLines(), maps0);
  }
}

TEST(ProcessInfoTest, OpenFilesCountsADescriptorMoreAndAGoneProcessNone) {
  const int files0 = OpenFiles(getpid());
  ASSERT_GT(files0, 0);
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  EXPECT_EQ(OpenFiles(getpid()), files0 + 2);
  close(fds[0]);
  close(fds[1]);
  EXPECT_EQ(OpenFiles(getpid()), files0);
  // Pids above pid_max (at most 2^22) never exist.
  EXPECT_EQ(OpenFiles(1 << 23), -1);
  EXPECT_EQ(MapsLines(1 << 23), -1);
  EXPECT_EQ(RssKiB(1 << 23), -1);
}

TEST(ProcessInfoTest, RaiseOpenFileLimitReachesTheHardLimit) {
  rlimit before{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &before), 0);
  const uint64_t raised = RaiseOpenFileLimit();
  const int err = errno;
  ASSERT_NE(raised, 0u) << strerror(err);
  rlimit after{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &after), 0);
  EXPECT_EQ(raised, after.rlim_cur);
  EXPECT_EQ(after.rlim_cur, before.rlim_max);
  EXPECT_EQ(after.rlim_max, before.rlim_max);
}

}  // namespace
}  // namespace testing_util
}  // namespace stackalloc
