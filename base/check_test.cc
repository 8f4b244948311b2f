#include "base/check.h"

#include <cstdint>
#include <limits>

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

}  // namespace
}  // namespace stackalloc
