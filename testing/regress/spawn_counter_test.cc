// The count of spawns under way on a thread (proc.cc): after a Go() whose
// closure's copy throws (NewprocAbort), nested or not, later Wait and Stop on
// the same thread work; in the child of a fork() taken in a closure's copy,
// the child may Start, use and Stop a runtime of its own (as the fork
// message tells it to), and only the spawn the fork cut dies.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <thread>

#include "base/sanitizers.h"
#include "gtest/gtest.h"
#include "proc/proc.h"

namespace stackalloc {
namespace proc {
namespace {

void StartOne() {
  Options o;
  o.gomaxprocs = 1;
  Start(o);
}

struct ThrowsInCopy {
  std::atomic<int>* ran;
  ThrowsInCopy(std::atomic<int>* r) : ran(r) {}
  ThrowsInCopy(const ThrowsInCopy&) { throw std::runtime_error("copy"); }
  void operator()() const { ran->fetch_add(1); }
};

TEST(SpawnCounter, CopyThrowsThenWaitAndStopWork) {
  StartOne();
  std::atomic<int> ran{0};
  ThrowsInCopy c(&ran);
  EXPECT_THROW(Go(c), std::runtime_error);
  EXPECT_THROW(Go(c), std::runtime_error);
  Go([&] { ran.fetch_add(1); });
  Wait();
  Stop();
  EXPECT_EQ(ran.load(), 1);
  StartOne();  // and again: Start after it
  Go([&] { ran.fetch_add(1); });
  Wait();
  Stop();
  EXPECT_EQ(ran.load(), 2);
}

// Nested: a closure whose copy does a Go() of a closure whose copy throws.
struct NestedThrow {
  std::atomic<int>* ran;
  NestedThrow(std::atomic<int>* r) : ran(r) {}
  NestedThrow(const NestedThrow& o) : ran(o.ran) {
    ThrowsInCopy t(ran);
    try {
      Go(t);
    } catch (const std::runtime_error&) {
    }
    throw std::logic_error("outer");
  }
  void operator()() const {}
};

TEST(SpawnCounter, NestedCopyThrowsThenWaitAndStopWork) {
  StartOne();
  std::atomic<int> ran{0};
  NestedThrow c(&ran);
  EXPECT_THROW(Go(c), std::logic_error);
  Wait();
  Stop();
}

// fork() from inside the closure's copy; in the child the copy throws.
struct ForksInCopyThenThrowsInChild {
  ForksInCopyThenThrowsInChild() = default;
  ForksInCopyThenThrowsInChild(const ForksInCopyThenThrowsInChild&) {
    if (fork() == 0) throw std::runtime_error("child copy");
    wait(&child_status);
  }
  void operator()() const {}
  static int child_status;
};
int ForksInCopyThenThrowsInChild::child_status = -1;

TEST(SpawnCounter, ForkInCopyChildAbortDies) {
  if (sanitizer::kAsan) {
    GTEST_SKIP() << "the child allocates its exception (see below)";
  }
  StartOne();
  ForksInCopyThenThrowsInChild c;
  Go(c);  // The child dies in NewprocAbort, with the fork message.
  Wait();
  Stop();
  const int st = ForksInCopyThenThrowsInChild::child_status;
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT) << st;
  EXPECT_EQ(ReadProcStats().gs_finished, 1u);
}

// Forks; the child starts a runtime of its own, runs a G, stops it and
// _exits (0 if the G ran). Returns the child's wait status. Not under TSan
// (no new threads after a multithreaded fork) or ASan (GCC 12's takes no
// allocator lock around fork(), and the child allocates): see
// proc/fork_test.cc.
int ForkChildThatRunsItsOwnRuntime() {
  const pid_t pid = fork();
  if (pid == 0) {
    StartOne();
    std::atomic<int> r{0};
    Go([&] { r.fetch_add(1); });
    Wait();
    Stop();
    _exit(r.load() == 1 ? 0 : 4);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return st;
}

// In the parent after a child was forked while copying: Wait/Stop fine.
// In a child forked from a plain thread (no spawn under way): Start/Go/Wait/
// Stop work.
TEST(SpawnCounter, AfterForkChildCanStartAgain) {
  if (sanitizer::kTsan || sanitizer::kAsan) {
    GTEST_SKIP() << "the child starts threads and allocates (see above)";
  }
  StartOne();
  std::atomic<int> ran{0};
  ThrowsInCopy t(&ran);
  EXPECT_THROW(Go(t), std::runtime_error);
  const int st = ForkChildThatRunsItsOwnRuntime();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  Wait();
  Stop();
}

// fork() from inside the closure's copy; the child does its own work there,
// as the fork message advises ("call proc::Start for a new one in the
// child"), and _exits without returning into Go().
struct ChildStartsItsOwnRuntimeInCopy {
  ChildStartsItsOwnRuntimeInCopy() = default;
  ChildStartsItsOwnRuntimeInCopy(const ChildStartsItsOwnRuntimeInCopy&) {
    child_status = ForkChildThatRunsItsOwnRuntime();
  }
  void operator()() const {}
  static int child_status;
};
int ChildStartsItsOwnRuntimeInCopy::child_status = -1;

TEST(SpawnCounter, ChildForkedInCopyCanStartItsOwnRuntime) {
  if (sanitizer::kTsan || sanitizer::kAsan) {
    GTEST_SKIP() << "the child starts threads and allocates (see above)";
  }
  StartOne();
  ChildStartsItsOwnRuntimeInCopy c;
  Go(c);
  Wait();
  Stop();
  const int st = ChildStartsItsOwnRuntimeInCopy::child_status;
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "child status " << st;
}

}  // namespace
}  // namespace proc
}  // namespace stackalloc
