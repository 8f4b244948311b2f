// fork() while Gs run: the runtime's locks are consistent in the child, the
// old runtime is abandoned there (its Ms are gone), calls into it die
// clearly, and Start gives the child a fresh runtime; a fork() inside a
// closure's copy cuts only that spawn.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

#include "base/sanitizers.h"
#include "gtest/gtest.h"
#include "proc/proc.h"
#include "testing/test_helpers.h"

// A multithreaded parent's child may start threads here (that is the
// point); TSan refuses that unless told otherwise. TSan's runtime calls this
// hook if it is defined; no header of TSan's declares it. The name, reserved,
// is TSan's.
// NOLINTNEXTLINE(bugprone-reserved-identifier)
extern "C" const char* __tsan_default_options();
extern "C" const char* __tsan_default_options() { return "die_after_fork=0"; }

namespace stackalloc {
namespace proc {
namespace {

constexpr int kChildOk = 42;

using sanitizer::kAsan;
using sanitizer::kTsan;
using testing_util::DescribeWaitStatus;
using testing_util::RunInChild;
using testing_util::WaitForChild;

// Starts a runtime whose Gs yield (taking the global queue's lock) in a loop
// until *stop, and returns once they are running.
void StartBusyRuntime(std::atomic<bool>* stop, std::atomic<int64_t>* turns) {
  Options o;
  o.gomaxprocs = 2;
  Start(o);
  for (int i = 0; i < 4; ++i) {
    Go([stop, turns] {
      while (!stop->load()) {
        turns->fetch_add(1);
        Gosched();
        Go([] {});  // And spawn: the run queues and free lists move too.
      }
    });
  }
  while (turns->load() < 1000) std::this_thread::yield();
}

int ChildStartsAFreshRuntime() {
  // Its lock was held across the fork, and released in the child; the
  // counters are the abandoned runtime's at the fork.
  if (ReadProcStats().gs_started == 0) return 3;
  // TSan cannot follow threads started in the child of a multithreaded
  // process (its registry still holds the parent's threads' ids, and dies
  // with "dup thread"), and ASan's allocator (GCC 12's libsanitizer) takes
  // no lock around fork(), so a malloc in the child can wait for ever on a
  // lock a parent thread held; there, the child checks the locks only.
  if (kTsan || kAsan) return kChildOk;
  Options o;
  o.gomaxprocs = 2;
  Start(o);
  std::atomic<int> ran{0};
  for (int i = 0; i < 100; ++i) Go([&ran] { ran.fetch_add(1); });
  Wait();
  Stop();
  if (ran.load() != 100) return 1;
  if (ReadProcStats().gs_finished != 100) return 2;
  return kChildOk;
}

TEST(ProcForkTest, ChildOfABusyRuntimeStartsAFreshOne) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> turns{0};
  StartBusyRuntime(&stop, &turns);
  for (int round = 0; round < 5; ++round) {
    std::string err;
    int status = RunInChild(&ChildStartsAFreshRuntime, &err);
    ASSERT_TRUE(WIFEXITED(status)) << err;
    EXPECT_EQ(WEXITSTATUS(status), kChildOk) << err;
  }
  // The parent's runtime carries on.
  const int64_t before = turns.load();
  while (turns.load() < before + 1000) std::this_thread::yield();
  stop.store(true);
  Stop();
  EXPECT_EQ(ReadProcStats().gs_finished, ReadProcStats().gs_started);
}

TEST(ProcForkTest, ChildCallingIntoTheAbandonedRuntimeDies) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> turns{0};
  StartBusyRuntime(&stop, &turns);
  struct Case {
    int (*child)();
    const char* message;
  };
  const Case cases[] = {
      {[] {
         Go([] {});
         return 0;
       },
       "fatal error: go: the runtime did not survive fork() (its Ms are "
       "gone); call proc::Start for a new one in the child"},
      {[] {
         Wait();
         return 0;
       },
       "fatal error: proc: Wait: the runtime did not survive fork()"},
      {[] {
         Stop();
         return 0;
       },
       "fatal error: proc: Stop: the runtime did not survive fork()"},
  };
  for (const Case& c : cases) {
    std::string err;
    int status = RunInChild(c.child, &err);
    ASSERT_TRUE(WIFSIGNALED(status)) << err;
    EXPECT_EQ(WTERMSIG(status), SIGABRT);
    EXPECT_NE(err.find(c.message), std::string::npos) << err;
  }
  stop.store(true);
  Stop();
}

// A closure whose copy forks, with the child's stderr sent into a pipe: the
// fork comes while a Go() is under way on the forking thread.
int fork_pipe[2] = {-1, -1};
pid_t forked_in_copy = -1;
struct ForksInCopy {
  ForksInCopy() = default;
  ForksInCopy(const ForksInCopy&) {
    forked_in_copy = fork();
    if (forked_in_copy == 0) {
      close(fork_pipe[0]);
      dup2(fork_pipe[1], STDERR_FILENO);
    }
  }
  void operator()() const {}
};

// The child of such a fork cannot finish the spawn on the runtime it
// abandoned: it dies with the message, not a SIGSEGV. From an ordinary
// thread and from a G.
TEST(ProcForkTest, ForkWhileCopyingAClosureDiesInTheChild) {
  for (const bool from_a_g : {false, true}) {
    // In the child of a fork() taken on a G (a TSan fiber), TSan mixes up
    // the forking thread with its fibers and reports races of the thread
    // with itself: the G case is checked in the other builds.
    if (from_a_g && kTsan) continue;
    Options o;
    o.gomaxprocs = 1;
    Start(o);
    if (pipe(fork_pipe) != 0) abort();
    auto spawn = [] {
      ForksInCopy f;
      Go(f);
      if (forked_in_copy == 0) _exit(kChildOk);  // The child got through.
    };
    if (from_a_g) {
      // fork() needs more than a G's 4 KiB (TSan's, much more).
      Go([spawn] { WithStack(64 << 10, spawn); });
      Wait();
    } else {
      spawn();
    }
    std::string err;
    close(fork_pipe[1]);
    const int status = WaitForChild(forked_in_copy, fork_pipe[0], &err);
    Stop();
    ASSERT_TRUE(WIFSIGNALED(status)) << "from a G: " << from_a_g << err;
    EXPECT_EQ(WTERMSIG(status), SIGABRT) << err;
    EXPECT_NE(err.find("fatal error: go: the runtime did not survive fork() "
                       "(its Ms are gone)"),
              std::string::npos)
        << "from a G: " << from_a_g << ": " << err;
    // Only the parent's G ran.
    EXPECT_EQ(ReadProcStats().gs_finished, from_a_g ? 2u : 1u);
  }
}

void StartOne() {
  Options o;
  o.gomaxprocs = 1;
  Start(o);
}

// A fork() in a closure's copy cuts only that spawn: the parent's runtime
// carries on, and in the child, where the copy throws, only that spawn
// dies (in NewprocAbort, with the fork message).
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

TEST(ProcForkTest, ForkInCopyChildAbortDies) {
  if (kAsan) GTEST_SKIP() << "the child allocates its exception (see above)";
  StartOne();
  ForksInCopyThenThrowsInChild c;
  Go(c);  // The child dies in NewprocAbort, with the fork message.
  Wait();
  Stop();
  const int st = ForksInCopyThenThrowsInChild::child_status;
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT)
      << DescribeWaitStatus(st);
  EXPECT_EQ(ReadProcStats().gs_finished, 1u);
}

// The child starts a runtime of its own (as the fork message tells it to),
// runs a G, stops it and _exits (0 if the G ran). Not under TSan or ASan
// (see ChildStartsAFreshRuntime).
int ChildRunsItsOwnRuntime() {
  StartOne();
  std::atomic<int> r{0};
  Go([&] { r.fetch_add(1); });
  Wait();
  Stop();
  return r.load() == 1 ? 0 : 4;
}

struct ThrowsInCopy {
  ThrowsInCopy() = default;
  ThrowsInCopy(const ThrowsInCopy&) { throw std::runtime_error("copy"); }
  void operator()() const {}
};

// In the parent after a spawn whose copy threw: a child forked from a plain
// thread (no spawn under way) may Start, Go, Wait and Stop; the parent's
// Wait and Stop work after it.
TEST(ProcForkTest, AfterForkChildCanStartAgain) {
  if (kTsan || kAsan) {
    GTEST_SKIP() << "the child starts threads and allocates (see above)";
  }
  StartOne();
  ThrowsInCopy t;
  EXPECT_THROW(Go(t), std::runtime_error);
  const int st = RunInChild(&ChildRunsItsOwnRuntime);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << DescribeWaitStatus(st);
  Wait();
  Stop();
  EXPECT_EQ(ReadProcStats().gs_started, 0u);
}

// fork() from inside the closure's copy; the child does its own work there,
// as the fork message advises ("call proc::Start for a new one in the
// child"), and _exits without returning into Go().
struct ChildStartsItsOwnRuntimeInCopy {
  ChildStartsItsOwnRuntimeInCopy() = default;
  ChildStartsItsOwnRuntimeInCopy(const ChildStartsItsOwnRuntimeInCopy&) {
    child_status = RunInChild(&ChildRunsItsOwnRuntime);
  }
  void operator()() const {}
  static int child_status;
};
int ChildStartsItsOwnRuntimeInCopy::child_status = -1;

TEST(ProcForkTest, ChildForkedInCopyCanStartItsOwnRuntime) {
  if (kTsan || kAsan) {
    GTEST_SKIP() << "the child starts threads and allocates (see above)";
  }
  StartOne();
  ChildStartsItsOwnRuntimeInCopy c;
  Go(c);
  Wait();
  Stop();
  const int st = ChildStartsItsOwnRuntimeInCopy::child_status;
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << DescribeWaitStatus(st);
  EXPECT_EQ(ReadProcStats().gs_finished, 1u);  // The parent's G ran.
}

}  // namespace
}  // namespace proc
}  // namespace stackalloc
