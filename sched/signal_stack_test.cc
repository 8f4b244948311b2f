// The alternate signal stack each M gives its thread: large enough for the
// CPU's signal frame with room to spare, with a guard page below it, so a
// handler that runs past it is reported instead of writing into what lies
// below; and a signal stack the thread installs itself is never disabled,
// replaced or freed by us.
//
// Regression: dropm() disabled whatever signal stack the thread had, the
// user's own installed after the thread bound its M among them, and nothing
// guarded the M's signal stack.

#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <thread>

#include "base/sanitizers.h"
#include "gtest/gtest.h"
#include "sched/m.h"
#include "stackalloc.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace {

// Sanitizers give every thread a signal stack of their own; take it away,
// so that the M gives the thread ours.
void DropAnySignalStack() {
  stack_t off{};
  off.ss_flags = SS_DISABLE;
  ASSERT_EQ(sigaltstack(&off, nullptr), 0);
}

TEST(SignalStackTest, FollowsWhatTheCpuNeeds) {
  EXPECT_GE(SignalStackBytes(), kMinSignalStack);
  EXPECT_GE(SignalStackBytes(), 8 * getauxval(AT_MINSIGSTKSZ));
  EXPECT_EQ(SignalStackBytes() % 4096, 0u);
  std::thread([] {
    DropAnySignalStack();
    M* m = getm();
    ASSERT_TRUE(m->sigaltstack_installed);
    stack_t st;
    ASSERT_EQ(sigaltstack(nullptr, &st), 0);
    EXPECT_EQ(st.ss_sp, m->sigaltstack.load());
    EXPECT_EQ(st.ss_size, SignalStackBytes());
    // The page below it is the guard: the overflow report knows it.
    const auto lo = reinterpret_cast<uintptr_t>(m->sigaltstack.load());
    EXPECT_EQ(SignalStackGuardHolding(lo - 1), m);
    EXPECT_EQ(SignalStackGuardHolding(lo - 4096), m);
    EXPECT_EQ(SignalStackGuardHolding(lo), nullptr);
    EXPECT_EQ(SignalStackGuardHolding(lo - 4097), nullptr);
  }).join();
}

// A stack the thread installs after its M gave it ours stays the thread's:
// dropm() (or the thread's exit) does not disable it.
TEST(SignalStackTest, AStackTheThreadInstallsLaterIsNeverTaken) {
  std::thread([] {
    DropAnySignalStack();
    ASSERT_TRUE(getm()->sigaltstack_installed);
    static char mine[64 << 10];
    stack_t st{};
    st.ss_sp = mine;
    st.ss_size = sizeof mine;
    ASSERT_EQ(sigaltstack(&st, nullptr), 0);
    dropm();
    stack_t now;
    ASSERT_EQ(sigaltstack(nullptr, &now), 0);
    EXPECT_EQ(now.ss_flags & SS_DISABLE, 0);
    EXPECT_EQ(now.ss_sp, mine);
    // Binding again keeps it too.
    getm();
    ASSERT_EQ(sigaltstack(nullptr, &now), 0);
    EXPECT_EQ(now.ss_sp, mine);
    EXPECT_FALSE(getm()->sigaltstack_installed);
    st.ss_flags = SS_DISABLE;
    ASSERT_EQ(sigaltstack(&st, nullptr), 0);
  }).join();
}

// Ours, the thread still using it, is taken back when the M goes idle, so
// the next thread to get the M can have it.
TEST(SignalStackTest, OursIsTakenBackWithTheM) {
  std::thread([] {
    DropAnySignalStack();
    ASSERT_TRUE(getm()->sigaltstack_installed);
    dropm();
    stack_t now;
    ASSERT_EQ(sigaltstack(nullptr, &now), 0);
    EXPECT_NE(now.ss_flags & SS_DISABLE, 0);
  }).join();
}

// A handler on the signal stack that runs past it hits the guard and is
// reported, naming the M and the function that ran past (the report's
// handler runs at the top of the same stack, over the outer frames).
void DeepHandler(int) { testing_util::RecurseUntilOverflow(); }

TEST(SignalStackDeathTest, AHandlerThatRunsPastItIsReported) {
  if (sanitizer::kAsan || sanitizer::kTsan) {
    // ASan reports the overrun itself, before the guard; TSan's handler
    // wrappers need the signal stack the overrun used up.
    GTEST_SKIP() << "the sanitizers' own handling comes first";
  }
  EXPECT_DEATH(
      {
        stackfree(stackalloc(kFixedStack), kFixedStack);  // Our handler in.
        dropm();
        DropAnySignalStack();
        if (!getm()->sigaltstack_installed) _exit(1);
        struct sigaction sa {};
        sa.sa_handler = &DeepHandler;
        sa.sa_flags = SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, nullptr);
        raise(SIGUSR1);
      },
      "fatal error: signal stack overflow: a handler ran past [^\n]*\n"
      "  pc 0x[0-9a-f]+ in [^\n]*Recurse\\(\\)\n");
}

}  // namespace
}  // namespace stackalloc
