// A fault that is not ours behaves exactly as it would without the library:
// the action installed before ours runs with its own semantics (SA_SIGINFO
// or not, its mask blocked during the call, SA_RESETHAND and SA_NODEFER
// honoured, SIG_DFL and SIG_IGN meaning what they mean); a handler
// installed after ours keeps working; a framework that puts back a handler
// it saved before ours loses the report until InstallStackOverflowHandler()
// puts it back in front.
//
// Regression: the chain called the previous handler directly, without the
// kernel's semantics, so a handler with SA_RESETHAND ran hundreds of
// thousands of times on a fault that was not ours instead of once.
//
// Each case runs in a child of its own: signal dispositions are the
// process's, and several cases end with the default action.

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "gtest/gtest.h"
#include "stackalloc.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace {

using testing_util::WriteBelow;

// A page no one may touch: a fault there is not ours.
char* ForbiddenPage() {
  void* p = mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) _exit(90);
  return static_cast<char*>(p);
}

// A guarded stack of ours: the first one installs our handler in front of
// whatever the test installed before.
void* OurStack() {
  void* v = stackalloc(kFixedStack);
  if (v == nullptr) _exit(91);
  return v;
}

void Install(int sig, void (*handler)(int), int flags, const sigset_t* mask) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sa.sa_flags = flags;
  if (mask != nullptr) {
    sa.sa_mask = *mask;
  } else {
    sigemptyset(&sa.sa_mask);
  }
  if (sigaction(sig, &sa, nullptr) != 0) _exit(92);
}

void InstallInfo(int sig, void (*handler)(int, siginfo_t*, void*), int flags) {
  struct sigaction sa {};
  sa.sa_sigaction = handler;
  sa.sa_flags = flags | SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, nullptr) != 0) _exit(92);
}

std::atomic<int> calls{0};
sigjmp_buf jump;

// --- SA_RESETHAND: the previous handler runs once, then the default. ---

void OnceHandler(int) {
  if (calls.fetch_add(1) != 0) _exit(3);  // A second call: not the kernel's.
}

TEST(SignalChainDeathTest, ResetHandRunsThePreviousHandlerOnce) {
  EXPECT_EXIT(
      {
        Install(SIGSEGV, &OnceHandler, SA_RESETHAND, nullptr);
        OurStack();
        // Returns from the handler, faults again: now the default action.
        *static_cast<volatile char*>(ForbiddenPage()) = 1;
        _exit(4);
      },
      testing::KilledBySignal(SIGSEGV), "");
}

// Two threads fault at once: the kernel runs a SA_RESETHAND action for one
// delivery only; the other thread's fault finds SIG_DFL and the process
// ends. (The chain read the flag, then set it: both threads could pass.)
std::atomic<int> waiting{0};
void SlowOnceHandler(int) {
  calls.fetch_add(1);
  // Long enough for the other thread's fault to be delivered meanwhile.
  for (int i = 0; i < 200 && calls.load() < 2; ++i) usleep(10000);
  _exit(calls.load() == 1 ? 5 : 6);
}

TEST(SignalChainDeathTest, ResetHandRunsOnceForFaultsAtTheSameTime) {
  for (int round = 0; round < 5; ++round) {
    EXPECT_EXIT(
        {
          Install(SIGSEGV, &SlowOnceHandler, SA_RESETHAND | SA_ONSTACK,
                  nullptr);
          OurStack();
          // A page each: the same byte written by both would be a race.
          auto fault = [](char* page) {
            waiting.fetch_add(1);
            while (waiting.load() < 2) {
            }
            *static_cast<volatile char*>(page) = 1;
          };
          std::thread t(fault, ForbiddenPage());
          fault(ForbiddenPage());
          t.join();
          _exit(4);
        },
        testing::KilledBySignal(SIGSEGV), "");
  }
}

// --- The mask: the previous action's, and the signal unless SA_NODEFER. ---

sigset_t seen_mask;
void MaskHandler(int) {
  pthread_sigmask(SIG_SETMASK, nullptr, &seen_mask);
  siglongjmp(jump, 1);
}

TEST(SignalChainDeathTest, ThePreviousMaskIsBlockedDuringItsCall) {
  EXPECT_EXIT(
      {
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR1);
        Install(SIGSEGV, &MaskHandler, 0, &mask);
        OurStack();
        char* page = ForbiddenPage();
        if (sigsetjmp(jump, 1) == 0) *static_cast<volatile char*>(page) = 1;
        if (sigismember(&seen_mask, SIGUSR1) != 1) _exit(1);
        if (sigismember(&seen_mask, SIGSEGV) != 1) _exit(2);
        // siglongjmp restored the mask the jump buffer saved.
        sigset_t now;
        pthread_sigmask(SIG_SETMASK, nullptr, &now);
        if (sigismember(&now, SIGUSR1) == 1) _exit(3);
        _exit(0);
      },
      testing::ExitedWithCode(0), "");
}

TEST(SignalChainDeathTest, NoDeferLeavesTheSignalUnblocked) {
  EXPECT_EXIT(
      {
        Install(SIGSEGV, &MaskHandler, SA_NODEFER, nullptr);
        OurStack();
        char* page = ForbiddenPage();
        if (sigsetjmp(jump, 1) == 0) *static_cast<volatile char*>(page) = 1;
        _exit(sigismember(&seen_mask, SIGSEGV) == 0 ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
}

// --- SA_SIGINFO: the previous action gets the fault's address. ---

void* seen_addr = nullptr;
bool seen_context = false;
void InfoHandler(int, siginfo_t* info, void* context) {
  seen_addr = info->si_addr;
  seen_context = context != nullptr;
  siglongjmp(jump, 1);
}

TEST(SignalChainDeathTest, SigInfoHandlersGetTheFaultsInfo) {
  EXPECT_EXIT(
      {
        InstallInfo(SIGSEGV, &InfoHandler, 0);
        OurStack();
        char* page = ForbiddenPage();
        if (sigsetjmp(jump, 1) == 0) page[7] = 1;
        _exit(seen_addr == page + 7 && seen_context ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
}

// --- SIG_IGN: a sent signal stays ignored; a fault gets the default. ---

TEST(SignalChainDeathTest, IgnoredSentSignalsStayIgnored) {
  EXPECT_EXIT(
      {
        Install(SIGSEGV, SIG_IGN, 0, nullptr);
        OurStack();
        raise(SIGSEGV);
        raise(SIGSEGV);
        _exit(0);
      },
      testing::ExitedWithCode(0), "");
}

TEST(SignalChainDeathTest, AnIgnoredFaultStillKills) {
  EXPECT_EXIT(
      {
        Install(SIGSEGV, SIG_IGN, 0, nullptr);
        OurStack();
        *static_cast<volatile char*>(ForbiddenPage()) = 1;
        _exit(1);
      },
      testing::KilledBySignal(SIGSEGV), "");
}

// --- Handlers installed after ours, and frameworks that restore theirs. ---

struct sigaction saved_before_us;
void LaterHandler(int sig, siginfo_t* info, void* context) {
  calls.fetch_add(1);
  // Chains to what it found: ours.
  saved_before_us.sa_sigaction(sig, info, context);
}

TEST(SignalChainDeathTest, AHandlerInstalledAfterOursStillSeesOverflows) {
  EXPECT_DEATH(
      {
        void* v = OurStack();
        struct sigaction sa {};
        sa.sa_sigaction = &LaterHandler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSEGV, &sa, &saved_before_us) != 0) _exit(92);
        WriteBelow(v);
      },
      "fatal error: stack overflow: 4096-byte stack");
}

TEST(SignalChainDeathTest, ReinstallingAfterAFrameworkRestoredItsHandler) {
  EXPECT_DEATH(
      {
        // The framework's handler, and what it saves before each test case.
        InstallInfo(SIGSEGV, &InfoHandler, 0);
        struct sigaction framework;
        sigaction(SIGSEGV, nullptr, &framework);
        void* v = OurStack();  // Ours goes in front.
        // After the test case the framework puts its own back: our report
        // is gone, and a fault in our guard reaches the framework.
        sigaction(SIGSEGV, &framework, nullptr);
        if (sigsetjmp(jump, 1) == 0) WriteBelow(v);
        if (seen_addr != static_cast<char*>(v) - 1) _exit(1);
        // Back in front, chaining to the framework's for what is not ours.
        InstallStackOverflowHandler();
        InstallStackOverflowHandler();  // Once in front, it stays as it is.
        char* page = ForbiddenPage();
        seen_addr = nullptr;
        if (sigsetjmp(jump, 1) == 0) *static_cast<volatile char*>(page) = 1;
        if (seen_addr != page) _exit(2);
        WriteBelow(v);
      },
      "fatal error: stack overflow: 4096-byte stack");
}

// A handler that saved ours as its previous one, with ours put in front of
// it again: the chain would go round for ever; the fault gets the default
// action instead.
TEST(SignalChainDeathTest, AChainThatComesBackToUsEnds) {
  EXPECT_EXIT(
      {
        OurStack();
        struct sigaction sa {};
        sa.sa_sigaction = &LaterHandler;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSEGV, &sa, &saved_before_us) != 0) _exit(92);
        InstallStackOverflowHandler();
        *static_cast<volatile char*>(ForbiddenPage()) = 1;
        _exit(1);
      },
      testing::KilledBySignal(SIGSEGV), "");
}

// A fork while another thread puts the report back in front: the child
// can put it back too. Regression: the installers' spin flag was held by
// the other thread at the fork, and the child's call spun for ever.
TEST(SignalChainTest, AForkChildCanReinstallTheReport) {
  OurStack();
  std::atomic<bool> stop{false};
  std::thread installer([&stop] {
    while (!stop.load()) InstallStackOverflowHandler();
  });
  int hung = 0;
  for (int i = 0; i < 100 && hung == 0; ++i) {
    const int status = testing_util::RunInChild(
        [] { InstallStackOverflowHandler(); }, nullptr, /*timeout_ms=*/2000);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++hung;
  }
  stop.store(true);
  installer.join();
  EXPECT_EQ(hung, 0);
}

// --- SIG_DFL and SIG_IGN set with SA_SIGINFO in the flags. ---
//
// The kernel reads the handler's word alone: 0 is SIG_DFL and 1 SIG_IGN
// whatever the flags (crash reporters reset to the default with the flags
// they always use, SA_SIGINFO among them).
//
// Regression: the chain took SA_SIGINFO to mean a function and called
// address 0 or 1: an ignored SIGSEGV sent with kill() killed the process,
// and a SIGBUS with the default action died of SIGSEGV.

void InstallSpecial(int sig, void (*handler)(int), int flags) {
  struct sigaction sa {};
  sa.sa_handler = handler;  // The union's one word, sa_sigaction too.
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, nullptr) != 0) _exit(92);
}

TEST(SignalChainDeathTest, IgnoredWithSigInfoFlagStaysIgnored) {
  EXPECT_EXIT(
      {
        InstallSpecial(SIGSEGV, SIG_IGN, SA_SIGINFO | SA_ONSTACK);
        InstallSpecial(SIGBUS, SIG_IGN, SA_SIGINFO);
        OurStack();
        raise(SIGSEGV);
        kill(getpid(), SIGSEGV);
        raise(SIGBUS);
        _exit(0);
      },
      testing::ExitedWithCode(0), "");
}

TEST(SignalChainDeathTest, DefaultWithSigInfoFlagIsTheDefault) {
  EXPECT_EXIT(
      {
        InstallSpecial(SIGBUS, SIG_DFL, SA_SIGINFO);
        OurStack();
        raise(SIGBUS);
        _exit(1);
      },
      testing::KilledBySignal(SIGBUS), "");
}

TEST(SignalChainDeathTest, DefaultWithSigInfoFlagOnAFault) {
  EXPECT_EXIT(
      {
        InstallSpecial(SIGSEGV, SIG_DFL, SA_SIGINFO | SA_RESETHAND);
        OurStack();
        *static_cast<volatile char*>(ForbiddenPage()) = 1;
        _exit(1);
      },
      testing::KilledBySignal(SIGSEGV), "");
}

}  // namespace
}  // namespace stackalloc
