// WithStack's budget leaves room for a signal frame delivered on the G's
// stack (a handler installed without SA_ONSTACK: glibc's, which signals
// every thread for setuid() and setgid(); a profiler's), so a G that stays
// within what WithStack promised survives such a signal.
//
// Regression: WithStack kept only kStackGuard free (256 bytes in an
// optimised build), and the kernel's frame (AT_MINSIGSTKSZ, 3.4 KiB with
// AVX-512) did not fit: the process died of a bare SIGSEGV.

#include <signal.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "gtest/gtest.h"
#include "proc/proc.h"

namespace stackalloc {
namespace proc {
namespace {

std::atomic<int> handled{0};

// Uses a little stack of its own, as a small handler does.
void SmallHandler(int) {
  volatile char frame[128];
  frame[0] = 1;
  handled.fetch_add(frame[0]);
}

// Fills n bytes of the stack below WithStack's call (less the bytes its own
// frame needs), then runs `at_the_bottom`.
template <size_t kBytes, typename F>
void UseAllOf(F at_the_bottom) {
  WithStack(kBytes, [&] {
    volatile char frame[kBytes - 256];
    memset(const_cast<char*>(frame), 0x5a, sizeof frame);
    at_the_bottom();
    if (frame[0] != 0x5a || frame[sizeof frame - 1] != 0x5a) abort();
  });
}

TEST(SignalFrameTest, TheReserveHoldsTheKernelsFrame) {
  EXPECT_GE(SignalFrameReserve(), getauxval(AT_MINSIGSTKSZ) + 128);
  // A segment holds a frame beside its reserves.
  EXPECT_GT(SegmentStack(), SignalFrameReserve() + kStackGuard);
}

// A signal raised on the G itself, at the bottom of what WithStack gave it.
TEST(SignalFrameTest, AGWithinItsBudgetSurvivesASignalOnItsStack) {
  struct sigaction sa {};
  sa.sa_handler = &SmallHandler;  // No SA_ONSTACK: the frame goes on the G.
  sigemptyset(&sa.sa_mask);
  struct sigaction old;
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  handled = 0;
  Start(Options{1});
  for (int i = 0; i < 16; ++i) {
    Go([] { UseAllOf<1024>([] { raise(SIGUSR1); }); });
    Go([] { UseAllOf<3000>([] { raise(SIGUSR1); }); });
    Go([] { UseAllOf<12000>([] { raise(SIGUSR1); }); });
  }
  Stop();
  EXPECT_EQ(handled.load(), 48);
  ASSERT_EQ(sigaction(SIGUSR1, &old, nullptr), 0);
}

// setgid() signals every thread of the process (glibc's SIGSETXID, whose
// handler has no SA_ONSTACK) while Gs spin at the bottom of their budget.
TEST(SignalFrameTest, SetgidWhileGsSitAtTheBottomOfTheirBudget) {
  std::atomic<bool> stop{false};
  std::atomic<int> at_bottom{0};
  Start(Options{2});
  for (int i = 0; i < 2; ++i) {
    Go([&] {
      UseAllOf<2048>([&] {
        at_bottom.fetch_add(1);
        while (!stop.load()) {
        }
      });
    });
  }
  while (at_bottom.load() < 2) std::this_thread::yield();
  const gid_t gid = getgid();
  for (int i = 0; i < 200; ++i) ASSERT_EQ(setgid(gid), 0);
  stop = true;
  Stop();
  EXPECT_EQ(ReadProcStats().gs_finished, 2u);
}

}  // namespace
}  // namespace proc
}  // namespace stackalloc
