// StackMargin() on the main thread, whose stack grows on demand down to
// where RLIMIT_STACK lets it (as of the first call), and stops short of the
// kernel's guard gap (256 pages) above a mapping that lies within that. Each
// case runs in a process of its own (death tests in the "threadsafe" style
// run a fresh copy of this binary), so that its limit and mappings are set
// before the thread's bounds are first read: a recursion that stops when
// the margin runs low goes down to the limit and never past it, and the
// margin is exact to within a page against the bounds the test reads from
// /proc/self/maps and getrlimit.

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "stackalloc.h"
#include "testing/func/margin/recursion.h"

namespace stackalloc {
namespace {

using testing_util::RecurseAndCheck;

constexpr uintptr_t kGuardGap = uintptr_t{1} << 20;  // 256 pages.
constexpr uintptr_t kLimit = uintptr_t{8} << 20;

// The mapping that holds a, as [*lo, *hi), and the end of the one below it.
bool MappingHolding(uintptr_t a, uintptr_t* lo, uintptr_t* hi,
                    uintptr_t* below_end) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  uintptr_t prev_end = 0;
  while (std::getline(maps, line)) {
    uintptr_t l, h;
    if (sscanf(line.c_str(), "%" SCNxPTR "-%" SCNxPTR, &l, &h) != 2) continue;
    if (l <= a && a < h) {
      *lo = l;
      *hi = h;
      *below_end = prev_end;
      return true;
    }
    prev_end = h;
  }
  return false;
}

int Fail(const std::string& what) {
  fprintf(stderr, "%s\n", what.c_str());
  return 1;
}

void SetSoftLimit(rlim_t bytes) {
  struct rlimit rl;
  getrlimit(RLIMIT_STACK, &rl);
  rl.rlim_cur = bytes;
  if (setrlimit(RLIMIT_STACK, &rl) != 0) _exit(Fail("setrlimit"));
}

uintptr_t Here() {
  return reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
}

// The stack goes down to the top of its mapping less the limit.
int WithinItsLimit() {
  SetSoftLimit(kLimit);
  uintptr_t lo, hi, below;
  if (!MappingHolding(Here(), &lo, &hi, &below)) return Fail("no stack");
  const std::string error = RecurseAndCheck(hi - kLimit);
  return error.empty() ? 0 : Fail(error);
}

// A mapping placed within the limit: the stack stops the guard gap above it.
int ShortOfAMappingWithinItsLimit() {
  SetSoftLimit(kLimit);
  uintptr_t lo, hi, below;
  if (!MappingHolding(Here(), &lo, &hi, &below)) return Fail("no stack");
  const uintptr_t at = hi - kLimit / 2;
  if (at + 4096 > lo) return Fail("the stack is already too deep");
  void* p = mmap(reinterpret_cast<void*>(at), 4096, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (p != reinterpret_cast<void*>(at)) return Fail("mmap");
  const std::string error = RecurseAndCheck(at + 4096 + kGuardGap);
  return error.empty() ? 0 : Fail(error);
}

// Without a limit, the mapping below stops it (too far to recurse to).
int WithoutALimit() {
  SetSoftLimit(RLIM_INFINITY);
  uintptr_t lo, hi, below;
  if (!MappingHolding(Here(), &lo, &hi, &below)) return Fail("no stack");
  const uintptr_t here = Here();
  const size_t margin = StackMargin();
  const uintptr_t bottom = below + kGuardGap;
  if (margin > here - bottom || here - bottom - margin >= 4096) {
    return Fail("margin " + std::to_string(margin) + ", " +
                std::to_string(here - bottom) + " bytes to the bottom");
  }
  return 0;
}

class MainThreadMarginDeathTest : public testing::Test {
 protected:
  // A fresh copy of the binary for each case: nothing read the main
  // thread's bounds before the case sets its limit.
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(MainThreadMarginDeathTest, RecursionStopsAtTheLimit) {
  EXPECT_EXIT(_exit(WithinItsLimit()), testing::ExitedWithCode(0), "");
}

TEST_F(MainThreadMarginDeathTest, RecursionStopsShortOfAMappingWithinIt) {
  EXPECT_EXIT(_exit(ShortOfAMappingWithinItsLimit()),
              testing::ExitedWithCode(0), "");
}

TEST_F(MainThreadMarginDeathTest, WithoutALimitTheMappingBelowIsTheBound) {
  struct rlimit rl;
  getrlimit(RLIMIT_STACK, &rl);
  if (rl.rlim_max != RLIM_INFINITY) {
    GTEST_SKIP() << "the hard limit of the stack is not infinite";
  }
  EXPECT_EXIT(_exit(WithoutALimit()), testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace stackalloc
