#include "alloc/sys_alloc.h"

#include <cstdint>
#include <cstring>

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
  SysFree(p, kN);
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
    SysFree(p, kAlign);
  }
  EXPECT_EQ(SysAllocAligned(kPageSize, 3 * kPageSize), nullptr);  // Not 2^k.
}

TEST(SysAllocTest, UnusedPagesReadZeroAndStayMapped) {
  auto* p = static_cast<unsigned char*>(SysAlloc(2 * kPageSize));
  ASSERT_NE(p, nullptr);
  memset(p, 0x5a, 2 * kPageSize);
  SysUnused(p, kPageSize);
  EXPECT_EQ(p[0], 0);
  EXPECT_EQ(p[kPageSize - 1], 0);
  EXPECT_EQ(p[kPageSize], 0x5a);  // The second page was not released.
  p[0] = 1;                       // Still mapped and writable.
  EXPECT_EQ(p[0], 1);
  SysFree(p, 2 * kPageSize);
}

}  // namespace
}  // namespace stackalloc
