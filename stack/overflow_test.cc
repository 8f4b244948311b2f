// Guard pages and the overflow report, in every order and mode.

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "alloc/guard.h"
#include "alloc/sys_alloc.h"
#include "base/sanitizers.h"
#include "gtest/gtest.h"
#include "sched/m.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/process_info.h"

namespace stackalloc {
namespace {

using testing_util::MapsLines;

constexpr bool kSanitized = sanitizer::kAsan || sanitizer::kTsan;

// Writes one byte just below p.
void TouchBelow(void* p) { *(reinterpret_cast<volatile char*>(p) - 1) = 1; }

std::string OverflowMessage(size_t size) {
  return "fatal error: stack overflow: " + std::to_string(size) +
         "-byte stack \\[0x[0-9a-f]+, 0x[0-9a-f]+\\) on M [0-9]+ \\(fault "
         "at 0x[0-9a-f]+, 1 bytes below the stack\\)";
}

class OverflowDeathTest : public testing::TestWithParam<int> {};

// A byte written just below a stack of every order, on a plain thread.
TEST_P(OverflowDeathTest, AByteBelowAStackIsReportedWithItsRange) {
  const size_t size = OrderStackSize(GetParam());
  EXPECT_DEATH(
      {
        void* p = stackalloc(size);
        TouchBelow(p);
      },
      OverflowMessage(size));
}

// The same on another thread than main, and on a stack that had been freed
// and handed out again.
TEST_P(OverflowDeathTest, OnAnyThreadAndAfterReuse) {
  const size_t size = OrderStackSize(GetParam());
  EXPECT_DEATH(
      {
        std::thread([size] {
          void* p = stackalloc(size);
          stackfree(p, size);
          p = stackalloc(size);
          TouchBelow(p);
        }).join();
      },
      OverflowMessage(size));
}

INSTANTIATE_TEST_SUITE_P(EveryOrder, OverflowDeathTest,
                         testing::Range(0, kNumStackOrders));

TEST(OverflowDeathTest, LargeStacksHaveGuardsToo) {
  constexpr size_t kSize = 2 * kMaxOrderStack;
  EXPECT_DEATH(
      {
        void* p = stackalloc(kSize);
        TouchBelow(p);
      },
      OverflowMessage(kSize));
}

// Recursion that runs off a stack on a thread that switched to it by hand
// (as a fiber library would): the handler runs on the M's signal stack.
TEST(OverflowDeathTest, RecursionOffTheEndOfAStack) {
  EXPECT_DEATH(
      {
        std::thread([] {
          getm();  // Binds: the thread gets the M's signal stack.
          char* stack = static_cast<char*>(stackalloc(kFixedStack));
          // Run a recursion with its stack pointer on `stack`.
          static volatile int depth = 0;
          struct R {
            static void Recurse() {
              volatile char frame[512];
              frame[0] = static_cast<char>(depth++);
              if (depth > 0) Recurse();  // Always; says so to the compiler.
              (void)frame[0];
            }
          };
          asm volatile(
              "mov %0, %%rsp\n\t"
              "call *%1\n\t"
              :
              : "r"(stack + kFixedStack - 64), "r"(&R::Recurse)
              : "memory");
        }).join();
      },
      "fatal error: stack overflow: 4096-byte stack \\[0x[0-9a-f]+, "
      "0x[0-9a-f]+\\) on M [0-9]+ \\(fault at 0x[0-9a-f]+, [0-9]+ bytes "
      "below the stack\\)");
}

// Without the kernel's guard markers, guards fall back to mprotect, and
// overflows are reported the same way.
TEST(OverflowDeathTest, MprotectFallbackReportsTheSame) {
  EXPECT_DEATH(
      {
        internal::ForceGuardFallback(true);
        // A fresh order for this process, so its slots get guards now.
        void* p = stackalloc(3 * kMaxOrderStack / 4);
        TouchBelow(p);
      },
      OverflowMessage(kMaxOrderStack));
}

TEST(GuardTest, AMillionGuardsWouldAddNoMapping) {
  // 20,000 live guarded stacks of 4 KiB in this test (the benchmark shows a
  // million): the mappings barely move.
  const int lines0 = MapsLines();
  const MemStats st0 = ReadMemStats();
  std::vector<void*> v;
  for (int i = 0; i < 20000; ++i) v.push_back(stackalloc(kFixedStack));
  const MemStats st1 = ReadMemStats();
  EXPECT_GE(st1.stacks_guard - st0.stacks_guard,
            20000u * kPageSize - (64 << 10));
  EXPECT_EQ(st1.stacks_unguarded, st0.stacks_unguarded);
  // (The sanitizers map memory of their own meanwhile: not ours to count.)
  if (!kSanitized) {
    EXPECT_LE(MapsLines() - lines0, 10);
  }
  for (void* p : v) stackfree(p, kFixedStack);
}

// Past the fallback's budget, stacks come without guards, counted; an
// allocation never fails for want of a mapping.
TEST(GuardDeathTest, PastTheBudgetStacksAreUnguardedAndCounted) {
  EXPECT_EXIT(
      {
        internal::ForceGuardFallback(true);
        SetGuardMappingBudget(GuardMappingsUsed() + 2 * 3);  // Three guards.
        const MemStats st0 = ReadMemStats();
        const int lines0 = MapsLines();
        std::vector<void*> v;
        for (int i = 0; i < 40; ++i) {
          void* p = stackalloc(256 << 10);
          if (p == nullptr) exit(1);
          v.push_back(p);
        }
        const MemStats st1 = ReadMemStats();
        if (st1.stacks_unguarded - st0.stacks_unguarded != 37) exit(2);
        if (!kSanitized && MapsLines() - lines0 > 6 + 4) exit(3);
        for (void* p : v) stackfree(p, 256 << 10);
        exit(0);
      },
      testing::ExitedWithCode(0), "");
}

// A fault that is not ours goes to the handler that was there before, or
// to the default action.
sigjmp_buf user_jump;
volatile int user_handler_calls = 0;
void UserHandler(int, siginfo_t*, void*) {
  ++user_handler_calls;
  siglongjmp(user_jump, 1);
}

TEST(OverflowDeathTest, OtherFaultsReachTheUsersHandler) {
  EXPECT_EXIT(
      {
        struct sigaction sa {};
        sa.sa_sigaction = &UserHandler;
        sa.sa_flags = SA_SIGINFO;
        sigaction(SIGSEGV, &sa, nullptr);
        // Our handler goes in front of it with the first guarded chunk.
        void* stack = stackalloc(OrderStackSize(3));
        char* page = static_cast<char*>(mmap(
            nullptr, kPageSize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (sigsetjmp(user_jump, 1) == 0) *page = 1;
        if (user_handler_calls != 1) exit(1);
        TouchBelow(stack);  // Ours: reported, not passed on.
        exit(2);
      },
      testing::KilledBySignal(SIGABRT), "stack overflow: 32768-byte stack");
}

// With no handler before ours, the default action (SIGSEGV kills); under a
// sanitizer, the sanitizer's own handler was there first and reports.
TEST(OverflowDeathTest, OtherFaultsGetTheDefaultAction) {
  auto fault = [] {
    stackalloc(kFixedStack);
    char* page = static_cast<char*>(mmap(nullptr, kPageSize, PROT_NONE,
                                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    *reinterpret_cast<volatile char*>(page) = 1;
    exit(0);
  };
  if (kSanitized) {
    EXPECT_DEATH(fault(), "Sanitizer: SEGV on unknown address");
  } else {
    EXPECT_EXIT(fault(), testing::KilledBySignal(SIGSEGV), "");
  }
}

// A SIGSEGV or SIGBUS sent with raise() or kill() is not a fault: it has no
// address, and returning from the handler would swallow it. It gets what it
// would have got without us.
TEST(OverflowDeathTest, SentSignalsAreNotSwallowed) {
  // A fresh process for each case: ours must go in after the signal()
  // below, as it would in a program that set its dispositions first.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (int sig : {SIGSEGV, SIGBUS}) {
    EXPECT_EXIT(
        {
          signal(sig, SIG_DFL);     // What a sanitizer may have put there.
          stackalloc(kFixedStack);  // Our handler goes in.
          raise(sig);
          exit(0);
        },
        testing::KilledBySignal(sig), "")
        << sig;
  }
  EXPECT_EXIT(
      {
        signal(SIGBUS, SIG_IGN);
        stackalloc(kFixedStack);
        raise(SIGBUS);  // Ignored before us: still ignored.
        exit(7);
      },
      testing::ExitedWithCode(7), "");
}

}  // namespace
}  // namespace stackalloc
