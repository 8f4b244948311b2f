// README "Guards": "A fault that is not in one of our guard pages goes to
// the handler that was installed before ours, or to the default action."
// A SIGSEGV/SIGBUS that is not a fault (raise, kill, pthread_kill, sigqueue)
// with no handler before ours must still get the default action (terminate
// with a core). overflow.cc's Chain() restores SIG_DFL and *returns*,
// relying on the faulting instruction running again: for a sent signal
// nothing runs again, so the process survives the signal -- and our handler
// is gone, so the next overflow is a plain SIGSEGV with no report.

#include <signal.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/base/config.h"
#include "gtest/gtest.h"
#include "stackalloc.h"

namespace stackalloc {
namespace {

// ASan and TSan put their own SIGSEGV handler before ours, so the
// SIG_DFL branch of Chain() is not reached under them.
#if defined(ABSL_HAVE_ADDRESS_SANITIZER) || defined(ABSL_HAVE_THREAD_SANITIZER)
#define SKIP_UNDER_SANITIZERS() GTEST_SKIP() << "sanitizer owns SIGSEGV"
#else
#define SKIP_UNDER_SANITIZERS() (void)0
#endif

void TouchBelow(void* stack) {
  *(reinterpret_cast<volatile char*>(stack) - 8) = 1;
}

// Without stackalloc: raise(SIGSEGV) kills.
TEST(SignalChainDeathTest, BaselineRaiseKills) {
  SKIP_UNDER_SANITIZERS();
  EXPECT_EXIT(
      {
        raise(SIGSEGV);
        exit(0);
      },
      testing::KilledBySignal(SIGSEGV), "");
}

TEST(SignalChainDeathTest, RaisedSigsegvStillKillsAfterTheFirstStack) {
  SKIP_UNDER_SANITIZERS();
  EXPECT_EXIT(
      {
        stackalloc(kFixedStack);  // Installs the overflow handler.
        raise(SIGSEGV);
        exit(0);  // Survived a SIGSEGV whose default action is to kill.
      },
      testing::KilledBySignal(SIGSEGV), "");
}

TEST(SignalChainDeathTest, RaisedSigbusStillKillsAfterTheFirstStack) {
  SKIP_UNDER_SANITIZERS();
  EXPECT_EXIT(
      {
        stackalloc(kFixedStack);
        raise(SIGBUS);
        exit(0);
      },
      testing::KilledBySignal(SIGBUS), "");
}

// With SIGSEGV ignored before our handler (the "handler installed before
// ours"), a stray SIGSEGV is ignored, as it should be -- but Chain() has
// replaced our handler with SIG_DFL (not even the SIG_IGN that was there),
// so the next overflow dies of a plain SIGSEGV with no report.
TEST(SignalChainDeathTest, OverflowStillReportedAfterAStraySigsegv) {
  SKIP_UNDER_SANITIZERS();
  EXPECT_DEATH(
      {
        signal(SIGSEGV, SIG_IGN);
        void* s = stackalloc(kFixedStack);  // Ours goes in front of SIG_IGN.
        raise(SIGSEGV);                     // Ignored (correctly)...
        TouchBelow(s);                      // ...but is this reported?
      },
      "stack overflow: 4096-byte stack");
}

}  // namespace
}  // namespace stackalloc
