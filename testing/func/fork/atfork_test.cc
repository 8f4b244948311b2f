// README "Fork": "fork() waits for every thread's slow path to close
// (pthread_atfork) ... the child may call everything, from any thread".
//
// Our prepare handler sets `forking` and only the parent/child handler
// clears it. pthread_atfork runs prepare handlers in reverse order of
// registration and child/parent handlers in order. A library that
// registered its handlers before our first getm() (typically at start-up)
// therefore runs its prepare handler after ours and its child handler
// before ours, both with `forking` set: any slow path there (a refill, a
// flush, ScavengeStacks() to trim before forking, a first call of a thread)
// spun in SlowPathGate for ever, waiting for a flag only the same thread
// could clear, and fork() never returned.

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "gtest/gtest.h"
#include "stackalloc.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace {

using testing_util::RunInChild;
using testing_util::WaitForChild;

// Runs body in a child process that must finish within 5 s; true if it
// exited 0, false if it hung (then killed) or failed.
template <typename F>
bool FinishesInTime(F body, const char* what) {
  const int status = RunInChild(body, nullptr, 5000);
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
    fprintf(stderr, "%s: HUNG (fork never returned)\n", what);
    return false;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Waits up to 3 s for child p to exit 0; kills it if it hangs.
bool ChildExitsInTime(pid_t p) {
  const int status = WaitForChild(p, -1, nullptr, 3000);
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
    fprintf(stderr, "child %d HUNG in its atfork child handler\n", p);
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void ScavengeBeforeFork() { ScavengeStacks(); }

TEST(AtforkTest, ScavengeInAPrepareHandlerRegisteredFirst) {
  EXPECT_TRUE(FinishesInTime(
      [] {
        // The library's handlers, registered at start-up...
        pthread_atfork(&ScavengeBeforeFork, nullptr, nullptr);
        // ...then the process uses stacks (ours get registered now).
        stackfree(stackalloc(kFixedStack), kFixedStack);
        const pid_t p = fork();
        if (p == 0) _exit(0);
        waitpid(p, nullptr, 0);
      },
      "ScavengeStacks in prepare"));
}

void AllocInChild() {
  // E.g. a runtime re-creating its scheduler stack in the child: a size
  // whose cache is empty, so the slow path runs.
  void* v = stackalloc(256 << 10);
  if (v == nullptr) _exit(3);
  stackfree(v, 256 << 10);
}

TEST(AtforkTest, StackallocInAChildHandlerRegisteredFirst) {
  EXPECT_TRUE(FinishesInTime(
      [] {
        pthread_atfork(nullptr, nullptr, &AllocInChild);
        stackfree(stackalloc(kFixedStack), kFixedStack);
        const pid_t p = fork();
        if (p == 0) _exit(0);
        if (!ChildExitsInTime(p)) _exit(4);
      },
      "stackalloc in child handler"));
}

// The same child handler registered after our first getm() runs after
// ours: fine. (Control.)
TEST(AtforkTest, StackallocInAChildHandlerRegisteredLaterWorks) {
  EXPECT_TRUE(FinishesInTime(
      [] {
        stackfree(stackalloc(kFixedStack), kFixedStack);
        pthread_atfork(nullptr, nullptr, &AllocInChild);
        const pid_t p = fork();
        if (p == 0) _exit(0);
        if (!ChildExitsInTime(p)) _exit(4);
      },
      "control"));
}

// A crash reporter whose SIGABRT handler forks (to run a symboliser, or
// to write the report from a clean process) while the thread that dies is
// inside a slow path: a misuse found there, or a signal handler that
// re-entered, ends in abort() with the slow path's gate still held by the
// thread itself. fork()'s prepare handler waited for every gate to close,
// this thread's own among them: the process hung for ever instead of
// reporting. A thread that forks from within its own slow path cannot wait
// for it.
void ForkOnAbort(int) {
  const pid_t p = fork();
  if (p == 0) _exit(0);  // The reporter's child: done at once.
  int status = 0;
  if (p < 0 || waitpid(p, &status, 0) != p) _exit(3);
  _exit(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 4);
}

TEST(AtforkTest, ACrashReporterThatForksOnAbortInsideASlowPath) {
  EXPECT_TRUE(FinishesInTime(
      [] {
        // Atfork handlers registered, the thread bound.
        stackfree(stackalloc(kFixedStack), kFixedStack);
        struct sigaction sa {};
        sa.sa_handler = &ForkOnAbort;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGABRT, &sa, nullptr);
        // Not a stack of ours: above 1 MiB every build checks it at the
        // call, in the slow path, gate held, and dies there.
        static char not_ours[3 << 20];
        stackfree(not_ours + (1 << 20), 2 << 20);
        _exit(1);
      },
      "fork from SIGABRT inside a slow path"));
}

}  // namespace
}  // namespace stackalloc
