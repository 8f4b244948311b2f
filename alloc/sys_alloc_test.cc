#include "alloc/sys_alloc.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "base/sanitizers.h"
#include "gtest/gtest.h"

namespace stackalloc {
namespace {

TEST(SysAllocTest, ZeroedPageAlignedWritable) {
  constexpr size_t kN = 3 * kPageSize + 1;  // Rounded up to 4 pages.
  auto* p = static_cast<unsigned char*>(SysAlloc(kN));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kPageSize, 0u);
  for (size_t i = 0; i < 4 * kPageSize; ++i) ASSERT_EQ(p[i], 0) << i;
  memset(p, 0xab, 4 * kPageSize);
  EXPECT_EQ(p[4 * kPageSize - 1], 0xab);
  EXPECT_TRUE(SysFree(p, kN));
  EXPECT_TRUE(SysFree(nullptr, kN));
}

TEST(SysAllocTest, RefusalIsNullptr) {
  EXPECT_EQ(SysAlloc(0), nullptr);
  EXPECT_EQ(SysAlloc(SIZE_MAX), nullptr);
  EXPECT_EQ(SysAlloc(SIZE_MAX / 2), nullptr);  // More than the address space.
}

TEST(SysAllocTest, AlignedBlocksAreAlignedAndWhollyUsable) {
  constexpr size_t kAlign = 128 << 10;
  for (int i = 0; i < 8; ++i) {
    auto* p = static_cast<unsigned char*>(SysAllocAligned(kAlign, kAlign));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kAlign, 0u);
    EXPECT_EQ(p[0], 0);
    EXPECT_EQ(p[kAlign - 1], 0);
    memset(p, 0x11, kAlign);
    EXPECT_TRUE(SysFree(p, kAlign));
  }
  EXPECT_EQ(SysAllocAligned(kPageSize, 3 * kPageSize), nullptr);  // Not 2^k.
}

TEST(SysAllocTest, UnusedPagesReadZeroAndStayMapped) {
  auto* p = static_cast<unsigned char*>(SysAlloc(2 * kPageSize));
  ASSERT_NE(p, nullptr);
  memset(p, 0x5a, 2 * kPageSize);
  ASSERT_TRUE(SysUnused(p, kPageSize));
  EXPECT_EQ(p[0], 0);
  EXPECT_EQ(p[kPageSize - 1], 0);
  EXPECT_EQ(p[kPageSize], 0x5a);  // The second page was not released.
  p[0] = 1;                       // Still mapped and writable.
  EXPECT_EQ(p[0], 1);
  EXPECT_TRUE(SysFree(p, 2 * kPageSize));
}

// Locked pages (mlock, or mlockall(MCL_FUTURE) before the mapping) cannot be
// released: SysUnused says so, and they keep their contents.
TEST(SysAllocTest, LockedPagesAreNotReleased) {
  if (sanitizer::kAsan || sanitizer::kTsan) {
    GTEST_SKIP() << "the sanitizers make mlock() do nothing";
  }
  auto* p = static_cast<unsigned char*>(SysAlloc(kPageSize));
  ASSERT_NE(p, nullptr);
  memset(p, 0x5a, kPageSize);
  ASSERT_EQ(mlock(p, kPageSize), 0) << "RLIMIT_MEMLOCK below a page?";
  EXPECT_FALSE(SysUnused(p, kPageSize));
  EXPECT_EQ(p[0], 0x5a);
  EXPECT_EQ(p[kPageSize - 1], 0x5a);
  ASSERT_EQ(munlock(p, kPageSize), 0);
  EXPECT_TRUE(SysUnused(p, kPageSize));
  EXPECT_EQ(p[0], 0);
  EXPECT_TRUE(SysFree(p, kPageSize));
}

// Residency is what was touched since the pages were last returned: a write
// and a read each make a page resident, SysUnused makes it not; a range with
// a hole in it is refused, and so is one larger than the vector allows.
TEST(SysAllocTest, ResidencyIsWhatWasTouchedSinceLastReturned) {
  auto* p = static_cast<unsigned char*>(SysAlloc(4 * kPageSize));
  ASSERT_NE(p, nullptr);
  unsigned char vec[4] = {9, 9, 9, 9};
  ASSERT_TRUE(SysResidency(p, 4 * kPageSize, vec));
  EXPECT_EQ((std::vector<int>{vec[0], vec[1], vec[2], vec[3]}),
            (std::vector<int>{0, 0, 0, 0}));
  p[kPageSize] = 1;
  EXPECT_EQ(static_cast<volatile unsigned char*>(p)[3 * kPageSize + 7], 0);
  ASSERT_TRUE(SysResidency(p, 4 * kPageSize, vec));
  EXPECT_EQ((std::vector<int>{vec[0], vec[1], vec[2], vec[3]}),
            (std::vector<int>{0, 1, 0, 1}));
  ASSERT_TRUE(SysUnused(p + kPageSize, kPageSize));
  ASSERT_TRUE(SysResidency(p, 4 * kPageSize, vec));
  EXPECT_EQ((std::vector<int>{vec[0], vec[1], vec[2], vec[3]}),
            (std::vector<int>{0, 0, 0, 1}));
  ASSERT_TRUE(SysFree(p + 2 * kPageSize, kPageSize));  // A hole.
  EXPECT_FALSE(SysResidency(p, 4 * kPageSize, vec));
  EXPECT_TRUE(SysResidency(p, 2 * kPageSize, vec));
  EXPECT_FALSE(SysResidency(p, 0, vec));
  EXPECT_FALSE(SysResidency(p, (kMaxResidencyPages + 1) * kPageSize, vec));
  EXPECT_TRUE(SysFree(p, 2 * kPageSize));
  EXPECT_TRUE(SysFree(p + 3 * kPageSize, kPageSize));
}

// At vm.max_map_count, unmapping the middle of a mapping needs one mapping
// more and fails: SysFree says so, and the memory stays mapped and intact.
TEST(SysAllocDeathTest, ARefusedUnmapIsReported) {
  EXPECT_EXIT(
      {
        auto* p = static_cast<unsigned char*>(SysAlloc(3 * kPageSize));
        if (p == nullptr) _exit(1);
        p[kPageSize] = 0x77;
        // Fill the map count with pages that cannot merge with each other.
        for (int i = 0;; ++i) {
          void* q = mmap(nullptr, kPageSize,
                         i % 2 == 0 ? PROT_READ : PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
          if (q == MAP_FAILED) break;
        }
        if (SysFree(p + kPageSize, kPageSize)) _exit(2);
        if (p[kPageSize] != 0x77) _exit(3);
        _exit(0);
      },
      testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace stackalloc
