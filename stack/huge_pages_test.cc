// Stack memory is advised MADV_NOHUGEPAGE by default, so a fiber that
// touches a few KiB of a large stack costs a few KiB, not 2 MiB, where
// transparent huge pages are `always` (users' machines often are);
// SetStackHugePages(true) advises MADV_HUGEPAGE instead, for users who want
// huge pages. Checked with /proc/self/smaps (VmFlags: nh, hg) and mincore.
//
// This machine's policy is `madvise`: MADV_HUGEPAGE stands in for
// `always` there, and shows what a stack would cost without our advice.

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "base/stack_sizes.h"
#include "gtest/gtest.h"
#include "stackalloc.h"

namespace stackalloc {
namespace {

constexpr size_t kHuge = size_t{2} << 20;

// The VmFlags of the mapping that holds p, or "" if none does.
std::string VmFlags(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    uintptr_t lo, hi;
    if (sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 &&
        line.find(':') > line.find(' ')) {
      inside = lo <= a && a < hi;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

bool Has(const std::string& flags, const char* flag) {
  std::istringstream words(flags);
  std::string w;
  while (words >> w) {
    if (w == flag) return true;
  }
  return false;
}

// Pages of [p, p + n) resident now.
size_t Resident(const void* p, size_t n) {
  const auto a = reinterpret_cast<uintptr_t>(p) & ~(kPageSize - 1);
  const size_t pages = (n + kPageSize - 1) / kPageSize;
  std::string vec(pages, '\0');
  if (mincore(reinterpret_cast<void*>(a), pages * kPageSize,
              reinterpret_cast<unsigned char*>(&vec[0])) != 0) {
    return SIZE_MAX;
  }
  size_t r = 0;
  for (char c : vec) r += c & 1;
  return r;
}

// The first 2 MiB-aligned 2 MiB of [lo, lo + n).
char* HugeAlignedInside(char* lo, size_t n) {
  const auto a =
      (reinterpret_cast<uintptr_t>(lo) + kHuge - 1) & ~uintptr_t{kHuge - 1};
  if (a + kHuge > reinterpret_cast<uintptr_t>(lo) + n) return nullptr;
  return reinterpret_cast<char*>(a);
}

bool HugePagesAvailable() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string policy;
  std::getline(f, policy);
  return policy.find("[never]") == std::string::npos && !policy.empty();
}

TEST(HugePagesTest, StackMemoryIsAdvisedAgainstHugePagesByDefault) {
  void* small = stackalloc(kFixedStack);
  void* large = stackalloc(size_t{8} << 20);
  ASSERT_NE(small, nullptr);
  ASSERT_NE(large, nullptr);
  EXPECT_TRUE(Has(VmFlags(small), "nh")) << VmFlags(small);  // The arena.
  EXPECT_TRUE(Has(VmFlags(large), "nh")) << VmFlags(large);
  // A few KiB touched at a 2 MiB boundary cost a few KiB.
  char* at = HugeAlignedInside(static_cast<char*>(large), size_t{8} << 20);
  ASSERT_NE(at, nullptr);
  at[0] = 1;
  at[4096] = 1;
  EXPECT_EQ(Resident(at, kHuge), 2u);
  stackfree(large, size_t{8} << 20);
  stackfree(small, kFixedStack);
}

TEST(HugePagesTest, TheSwitchAllowsThem) {
  if (!HugePagesAvailable()) GTEST_SKIP() << "no transparent huge pages";
  EXPECT_FALSE(SetStackHugePages(true));
  void* large = stackalloc(size_t{8} << 20);
  ASSERT_NE(large, nullptr);
  EXPECT_TRUE(Has(VmFlags(large), "hg")) << VmFlags(large);
  EXPECT_FALSE(Has(VmFlags(large), "nh")) << VmFlags(large);
  char* at = HugeAlignedInside(static_cast<char*>(large), size_t{8} << 20);
  ASSERT_NE(at, nullptr);
  at[0] = 1;
  // One touch, a huge page: what `always` would cost every stack.
  EXPECT_EQ(Resident(at, kHuge), kHuge / kPageSize);
  stackfree(large, size_t{8} << 20);
  EXPECT_TRUE(SetStackHugePages(false));
}

}  // namespace
}  // namespace stackalloc
