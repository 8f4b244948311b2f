// What a request of n bytes gets, pinned to numbers: the library computes
// its stacks with these functions, and tests compute what to expect with
// them, so only here are they checked against the README's own figures
// ("Sizes": 4 KiB to 1 MiB by powers of two, whole pages above, nothing
// above 2^40).
#include "base/stack_sizes.h"

#include "gtest/gtest.h"

namespace stackalloc {
namespace {

TEST(StackSizesTest, OrdersAreThePowersOfTwoFromFourKiBToOneMiB) {
  static_assert(kFixedStack == 4096);
  static_assert(kMaxOrderStack == 1 << 20);
  static_assert(OrderStackSize(0) == 4096);
  static_assert(OrderStackSize(kNumStackOrders - 1) == kMaxOrderStack);
  EXPECT_EQ(StackOrder(0), -1);
  EXPECT_EQ(StackOrder(1), 0);
  EXPECT_EQ(StackOrder(4096), 0);
  EXPECT_EQ(StackOrder(4097), 1);
  EXPECT_EQ(StackOrder(5000), 1);
  EXPECT_EQ(StackOrder(size_t{1} << 20), 8);
  EXPECT_EQ(StackOrder((size_t{1} << 20) + 1), -1);
}

TEST(StackSizesTest, StackBytesIsTheOrderOrWholePagesUpToTwoToTheForty) {
  static_assert(kMaxStackRequest == size_t{1} << 40);
  EXPECT_EQ(StackBytes(0), 0u);
  EXPECT_EQ(StackBytes(1), 4096u);
  EXPECT_EQ(StackBytes(4096), 4096u);
  EXPECT_EQ(StackBytes(5000), 8192u);
  EXPECT_EQ(StackBytes(100 << 10), 128u << 10);
  EXPECT_EQ(StackBytes(size_t{1} << 20), size_t{1} << 20);
  EXPECT_EQ(StackBytes((size_t{1} << 20) + 1), (size_t{1} << 20) + 4096);
  EXPECT_EQ(StackBytes((size_t{3} << 20) + 17), (size_t{3} << 20) + 4096);
  EXPECT_EQ(StackBytes(size_t{1} << 40), size_t{1} << 40);
  EXPECT_EQ(StackBytes((size_t{1} << 40) + 1), 0u);
  EXPECT_EQ(StackBytes(SIZE_MAX), 0u);
}

}  // namespace
}  // namespace stackalloc
