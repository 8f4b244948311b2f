// Guard pages and the overflow report, in every order and mode; the budget
// of the mprotect fallback; signals that are not our overflows go where they
// would have gone without us.

#include <setjmp.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/config.h"
#include "alloc/guard.h"
#include "alloc/sys_alloc.h"
#include "base/sanitizers.h"
#include "gtest/gtest.h"
#include "sched/m.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/process_info.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace {

using testing_util::CallWithStackPointer;
using testing_util::MapsLines;
using testing_util::RecurseUntilOverflow;
using testing_util::WriteBelow;

constexpr bool kSanitized = sanitizer::kAsan || sanitizer::kTsan;

// A write one byte below the stack.
std::string OverflowMessage(size_t size) {
  return testing_util::OverflowReportPattern(size, /*on_a_g=*/false, "1");
}

class OverflowDeathTest : public testing::TestWithParam<int> {};

// A byte written just below a stack of every order, on a plain thread.
TEST_P(OverflowDeathTest, AByteBelowAStackIsReportedWithItsRange) {
  const size_t size = OrderStackSize(GetParam());
  EXPECT_DEATH(
      {
        void* p = stackalloc(size);
        WriteBelow(p);
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
          WriteBelow(p);
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
        WriteBelow(p);
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
          CallWithStackPointer(stack + kFixedStack - 64, &RecurseUntilOverflow);
        }).join();
      },
      testing_util::OverflowReportPattern(kFixedStack));
}

// A signal whose handler was installed without SA_ONSTACK arrives while
// the thread runs near the bottom of one of our stacks: the kernel cannot
// push the signal frame and sends SIGSEGV with no address. The interrupted
// stack pointer says whose stack it was.
// Regression: the process died of a bare SIGSEGV, with no report.
void NoOnStackHandler(int) {}

void RaiseUsr1() { raise(SIGUSR1); }

TEST(OverflowDeathTest, ASignalFrameThatDoesNotFitIsReported) {
  EXPECT_DEATH(
      {
        struct sigaction sa {};
        sa.sa_handler = &NoOnStackHandler;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, nullptr);
        std::thread([] {
          getm();  // Binds: the thread gets the M's signal stack.
          char* stack = static_cast<char*>(stackalloc(kFixedStack));
          // 1 KiB above the guard: less than a signal frame needs.
          CallWithStackPointer(stack + 1024, &RaiseUsr1);
        }).join();
      },
      "fatal error: stack overflow: 4096-byte stack \\[0x[0-9a-f]+, "
      "0x[0-9a-f]+\\) on M [0-9]+ \\(a signal frame did not fit below sp "
      "0x[0-9a-f]+, [0-9]+ bytes above the stack's lowest byte\\)");
}

// A general protection fault (a corrupt pointer that is not canonical:
// SIGSEGV with SI_KERNEL and no address, as a signal frame that did not
// fit) near the bottom of one of our stacks is not an overflow of ours: it
// reaches the action installed before ours, as it would without us.
// Regression: every such fault with sp less than AT_MINSIGSTKSZ + 1152
// bytes above a stack's lowest byte (all of a 4 KiB stack) was reported as
// "a signal frame did not fit below sp", and the process aborted.
void NonCanonicalLoad() {
  *reinterpret_cast<volatile char*>(uintptr_t{0xdead000000000000}) = 1;
}

void ExitOnKernelSegv(int, siginfo_t* info, void*) {
  _exit(info->si_code == SI_KERNEL ? 7 : 8);
}

void GeneralProtectionFaultAt(size_t above_lo) {
  struct sigaction sa {};
  sa.sa_sigaction = &ExitOnKernelSegv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, nullptr);
  std::thread([above_lo] {
    getm();
    char* stack = static_cast<char*>(stackalloc(kFixedStack));
    CallWithStackPointer(stack + above_lo, &NonCanonicalLoad);
  }).join();
}

TEST(OverflowDeathTest, AGeneralProtectionFaultIsNotAnOverflow) {
  if (kSanitized) GTEST_SKIP() << "the sanitizers' own handling comes first";
  // Above any signal frame: room for the kernel's, not for 1 KiB more.
  const size_t room = getauxval(AT_MINSIGSTKSZ) + 128 + 256;
  ASSERT_LT(room, kFixedStack);
  EXPECT_EXIT(GeneralProtectionFaultAt(room), testing::ExitedWithCode(7), "");
  // Where a signal frame would not have fit either.
  EXPECT_EXIT(GeneralProtectionFaultAt(1024), testing::ExitedWithCode(7), "");
}

// Without the kernel's guard markers, guards fall back to mprotect, and
// overflows are reported the same way.
TEST(OverflowDeathTest, MprotectFallbackReportsTheSame) {
  EXPECT_DEATH(
      {
        internal::ForceGuardFallback(true);
        // A fresh order for this process, so its slots get guards now.
        void* p = stackalloc(3 * kMaxOrderStack / 4);
        WriteBelow(p);
      },
      OverflowMessage(kMaxOrderStack));
}

TEST(StackGuardTest, AMillionGuardsWouldAddNoMapping) {
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
TEST(StackGuardDeathTest, PastTheBudgetStacksAreUnguardedAndCounted) {
  EXPECT_EXIT(
      {
        internal::ForceGuardFallback(true);
        // The thread's M first (its signal stack's mappings are not the
        // stacks' to count).
        getm();
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

// Kernels before 6.13 (no MADV_GUARD_INSTALL): guards are mprotect'ed pages
// within a budget of mappings (SetGuardMappingBudget). A large stack's guard
// is mprotect'ed in the stack's own mapping, which stackfree unmaps; the
// budget was never given back, so a process that allocated and freed large
// stacks lost every guard after 8,192 large-stack lifetimes (new chunks and
// large stacks came unguarded, overflows went unreported) while holding only
// a handful of mappings.
TEST(StackGuardDeathTest, FreedLargeStacksGiveTheirMappingsBack) {
  EXPECT_EXIT(
      {
        internal::ForceGuardFallback(true);  // A kernel before 6.13.
        // A budget of 4 guards, as if the default had been nearly used.
        SetGuardMappingBudget(GuardMappingsUsed() + 2 * 4);
        const size_t used0 = GuardMappingsUsed();
        const int lines0 = MapsLines();
        for (int i = 0; i < 100; ++i) {
          const MemStats st0 = ReadMemStats();
          void* p = stackalloc(2 << 20);
          const MemStats st1 = ReadMemStats();
          if (st1.stacks_unguarded != st0.stacks_unguarded) {
            fprintf(stderr,
                    "large stack #%d came without a guard; one live large "
                    "stack, %d mappings more than at the start, budget "
                    "used %zu\n",
                    i, MapsLines() - lines0, GuardMappingsUsed());
            exit(1);
          }
          stackfree(p, 2 << 20);
          if (GuardMappingsUsed() != used0) {
            fprintf(stderr, "large stack #%d kept %zu of the budget\n", i,
                    GuardMappingsUsed() - used0);
            exit(2);
          }
        }
        exit(0);
      },
      testing::ExitedWithCode(0), "");
}

// The consequence: a 4 KiB stack's overflow after large-stack churn.
TEST(StackGuardDeathTest, OverflowStillReportedAfterLargeStackChurn) {
  EXPECT_DEATH(
      {
        internal::ForceGuardFallback(true);
        SetGuardMappingBudget(GuardMappingsUsed() + 2 * 4);
        for (int i = 0; i < 10; ++i) stackfree(stackalloc(2 << 20), 2 << 20);
        void* s = stackalloc(kFixedStack);
        WriteBelow(s, 8);
        fprintf(stderr, "no fault: wrote into the neighbour\n");
        exit(0);
      },
      "stack overflow: 4096-byte stack");
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
        WriteBelow(stack);  // Ours: reported, not passed on.
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

// README "Guards": "A fault that is not in one of our guard pages goes to
// the handler that was installed before ours, or to the default action."
// A SIGSEGV or SIGBUS sent with raise() or kill() is not a fault: it has no
// address, and returning from the handler would swallow it. It gets what it
// would have got without us. (Chain() restored SIG_DFL and returned,
// relying on the faulting instruction running again: for a sent signal
// nothing ran again, so the process survived a signal whose default action
// kills, and our handler was gone.)
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
          exit(0);  // Survived a signal whose default action is to kill.
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

// ASan and TSan put their own SIGSEGV handler before ours, so a stray
// SIGSEGV never reaches ours under them.
#if defined(ABSL_HAVE_ADDRESS_SANITIZER) || defined(ABSL_HAVE_THREAD_SANITIZER)
#define SKIP_UNDER_SANITIZERS() GTEST_SKIP() << "sanitizer owns SIGSEGV"
#else
#define SKIP_UNDER_SANITIZERS() (void)0
#endif

// Without stackalloc: raise(SIGSEGV) kills (the control for the above).
TEST(SignalChainDeathTest, BaselineRaiseKills) {
  SKIP_UNDER_SANITIZERS();
  EXPECT_EXIT(
      {
        raise(SIGSEGV);
        exit(0);
      },
      testing::KilledBySignal(SIGSEGV), "");
}

// With SIGSEGV ignored before our handler (the "handler installed before
// ours"), a stray SIGSEGV is ignored, as it should be; Chain() replaced our
// handler with SIG_DFL (not even the SIG_IGN that was there), so the next
// overflow died of a plain SIGSEGV with no report.
TEST(SignalChainDeathTest, OverflowStillReportedAfterAStraySigsegv) {
  SKIP_UNDER_SANITIZERS();
  EXPECT_DEATH(
      {
        signal(SIGSEGV, SIG_IGN);
        void* s = stackalloc(kFixedStack);  // Ours goes in front of SIG_IGN.
        raise(SIGSEGV);                     // Ignored (correctly)...
        WriteBelow(s, 8);                   // ...but is this reported?
      },
      "stack overflow: 4096-byte stack");
}

}  // namespace
}  // namespace stackalloc
