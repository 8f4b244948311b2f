// What a dependent project relies on: FixedStack stacks from stackalloc are
// distinct, aligned, writable and keep their contents, and ReadMemStats()
// accounts for them exactly, including stacks freed on another thread.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "stackalloc.h"
#include "stats/mstats.h"

namespace {

using ::stackalloc::kFixedStack;
using ::stackalloc::ReadMemStats;

constexpr int kStacks = 100;  // More than one M cache, several chunk slots.

unsigned char Pattern(int i) { return static_cast<unsigned char>(i * 7 + 1); }

std::vector<unsigned char*> AllocateFilled(int n) {
  std::vector<unsigned char*> stacks;
  for (int i = 0; i < n; ++i) {
    auto* p = static_cast<unsigned char*>(stackalloc::stackalloc(kFixedStack));
    EXPECT_NE(p, nullptr);
    if (p == nullptr) break;
    memset(p, Pattern(i), kFixedStack);
    stacks.push_back(p);
  }
  return stacks;
}

TEST(ConsumerTest, FixedStackIsFourKiB) { EXPECT_EQ(kFixedStack, 4096u); }

TEST(ConsumerTest, StacksAreDistinctAlignedWritableAndCountedExactly) {
  const uint64_t inuse_before = ReadMemStats().stacks_inuse;

  std::vector<unsigned char*> stacks = AllocateFilled(kStacks);
  ASSERT_EQ(stacks.size(), static_cast<size_t>(kStacks));

  std::set<uintptr_t> starts;
  for (unsigned char* p : stacks) {
    auto a = reinterpret_cast<uintptr_t>(p);
    EXPECT_EQ(a % kFixedStack, 0u) << "stack not FixedStack-aligned";
    starts.insert(a);
  }
  // Aligned and distinct starts imply the 4 KiB stacks do not overlap.
  EXPECT_EQ(starts.size(), stacks.size());

  // Every byte written is still there after all the other stacks were
  // handed out and filled.
  for (int i = 0; i < kStacks; ++i) {
    for (size_t j = 0; j < kFixedStack; ++j) {
      ASSERT_EQ(stacks[i][j], Pattern(i)) << "stack " << i << " byte " << j;
    }
  }

  const stackalloc::MemStats during = ReadMemStats();
  EXPECT_EQ(during.stacks_inuse, inuse_before + kStacks * kFixedStack);
  EXPECT_GE(during.stacks_sys, during.stacks_inuse);

  for (unsigned char* p : stacks) stackalloc::stackfree(p, kFixedStack);
  EXPECT_EQ(ReadMemStats().stacks_inuse, inuse_before);
}

TEST(ConsumerTest, StacksFreedOnAnotherThreadAreCountedExactly) {
  const uint64_t inuse_before = ReadMemStats().stacks_inuse;

  std::vector<unsigned char*> stacks;
  std::thread([&] { stacks = AllocateFilled(kStacks); }).join();
  ASSERT_EQ(stacks.size(), static_cast<size_t>(kStacks));
  EXPECT_EQ(ReadMemStats().stacks_inuse, inuse_before + kStacks * kFixedStack);

  std::thread([&] {
    for (unsigned char* p : stacks) stackalloc::stackfree(p, kFixedStack);
  }).join();
  EXPECT_EQ(ReadMemStats().stacks_inuse, inuse_before);
}

}  // namespace
