// README "Misuse", literally: each misuse dies with the README's message,
// at the call in debug and checked builds, and in the default optimised
// build either at the call (immediate double free, nil into an empty
// cache, everything above 1 MiB) or when the stack leaves the cache (here
// forced by filling the cache past its limit).

#include <sys/mman.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "base/check.h"
#include "gtest/gtest.h"
#include "sched/m.h"
#include "stackalloc.h"

namespace stackalloc {
namespace {

constexpr bool kChecked = STACKALLOC_DEBUG_CHECKS != 0;

// Frees enough fresh stacks of size n that the older half of the cache
// (where the bad one sits) leaves for the pool.
// Two rounds, so a stale copy handed out by the first round is freed and
// leaves in the second.
void Flush(size_t n) {
  for (int round = 0; round < 2; ++round) {
    std::vector<void*> v;
    for (int i = 0; i < 2 * kStackCacheMax; ++i) v.push_back(stackalloc(n));
    for (void* p : v) stackfree(p, n);
  }
}

// At the call in checked builds; else at the flush.
#define MISUSE(body, n, re)    \
  EXPECT_DEATH(                \
      {                        \
        body;                  \
        if (kChecked) exit(0); \
        Flush(n);              \
        exit(0);               \
      },                       \
      re)

const char kNotOurs[] =
    "fatal error: stackfree: 0x[0-9a-f]+ is not a stack from stackalloc";

TEST(MisuseDeathTest, ForeignPointers) {
  MISUSE(stackfree(malloc(8192), 4096), 4096, kNotOurs);
  MISUSE(
      {
        char local[16];
        stackfree(local, 4096);
      },
      4096, kNotOurs);
  MISUSE(stackfree(mmap(nullptr, 4096, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                   4096),
         4096, kNotOurs);
  MISUSE(
      {
        char* v = static_cast<char*>(stackalloc(4096));
        stackfree(v - 4096, 4096);  // Its guard page.
      },
      4096, kNotOurs);
  MISUSE(
      {
        char* v = static_cast<char*>(stackalloc(8192));
        stackfree(v + 4096, 8192);  // The middle.
      },
      8192, kNotOurs);
}

TEST(MisuseDeathTest, WrongOrder) {
  MISUSE(stackfree(stackalloc(8192), 4096), 4096,
         "fatal error: stackfree: 8192-byte stack 0x[0-9a-f]+ freed as 4096");
  MISUSE(stackfree(stackalloc(4096), 8192), 8192,
         "fatal error: stackfree: 4096-byte stack 0x[0-9a-f]+ freed as 8192");
  MISUSE(stackfree(stackalloc(2 << 20), 4096), 4096,
         "fatal error: stackfree: [0-9]+-byte stack 0x[0-9a-f]+ freed as 4096");
  // Above 1 MiB: at the call in every build.
  EXPECT_DEATH(stackfree(stackalloc(2 << 20), 3 << 20),
               "fatal error: stackfree: 2097152-byte stack 0x[0-9a-f]+ freed "
               "as 3145728");
  EXPECT_DEATH(stackfree(stackalloc(4096), 2 << 20),
               "fatal error: stackfree: 4096-byte stack 0x[0-9a-f]+ freed as "
               "2097152");
}

const char kTwice4k[] =
    "fatal error: stackfree: 4096-byte stack 0x[0-9a-f]+ freed twice";

TEST(MisuseDeathTest, DoubleFrees) {
  // Separated by another free.
  MISUSE(
      {
        void* a = stackalloc(4096);
        void* b = stackalloc(4096);
        stackfree(a, 4096);
        stackfree(b, 4096);
        stackfree(a, 4096);
      },
      4096, kTwice4k);
  // Across threads: caught at the call in checked builds; the default build
  // sees it only if both copies reach the pool (README, "Misuse").
  if (!kChecked) return;
  MISUSE(
      {
        void* a = stackalloc(4096);
        stackfree(a, 4096);
        std::thread([a] {
          stackfree(a, 4096);
          if (kChecked) exit(0);
          Flush(4096);
        }).join();
      },
      4096, kTwice4k);
}

// A large stack freed twice: at the call (README: everything above 1 MiB),
// with the "freed twice" message.
TEST(MisuseDeathTest, LargeDoubleFree) {
  EXPECT_DEATH(
      {
        void* a = stackalloc(2 << 20);
        stackfree(a, 2 << 20);
        stackfree(a, 2 << 20);
      },
      // Its mapping and record went at the first free: the second finds
      // nothing, and says both possibilities.
      "fatal error: stackfree: 0x[0-9a-f]+ is not a stack from stackalloc "
      "\\(or a stack above 1 MiB freed twice\\)");
}

// Freed twice after scavenging released its chunk.
TEST(MisuseDeathTest, DoubleFreeAfterItsChunkWasReleased) {
  MISUSE(
      {
        // A chunk of 256 KiB stacks of our own: 2 stacks.
        void* a = stackalloc(256 << 10);
        void* b = stackalloc(256 << 10);
        stackfree(a, 256 << 10);
        stackfree(b, 256 << 10);
        Flush(256 << 10);  // Both to the pool.
        ScavengeStacks();  // The chunk goes (if wholly free).
        stackfree(a, 256 << 10);
      },
      256 << 10,
      "fatal error: stackfree: 262144-byte stack 0x[0-9a-f]+ freed twice");
}

TEST(MisuseDeathTest, NilIntoANonEmptyCache) {
  MISUSE(
      {
        void* a = stackalloc(4096);
        stackfree(a, 4096);  // The cache is not empty now.
        stackfree(nullptr, 4096);
      },
      4096, "fatal error: stackfree: nil stack");
}

// A nil freed into a non-empty cache: checked builds die at the call; the
// default build hands it out again as if memory were refused, as the
// README says (its fast path affords no more than the repeat check).
TEST(MisuseDeathTest, NilFreedIntoANonEmptyCache) {
  auto misuse = [] {
    void* a = stackalloc(4096);
    stackfree(a, 4096);
    stackfree(nullptr, 4096);  // The bug (dies here when checked).
    exit(stackalloc(4096) == nullptr ? 3 : 4);
  };
  if (kChecked) {
    EXPECT_DEATH(misuse(), "fatal error: stackfree: nil stack");
  } else {
    EXPECT_EXIT(misuse(), testing::ExitedWithCode(3), "");
  }
}

}  // namespace
}  // namespace stackalloc
