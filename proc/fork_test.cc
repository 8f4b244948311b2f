// fork() while Gs run: the runtime's locks are consistent in the child, the
// old runtime is abandoned there (its Ms are gone), calls into it die
// clearly, and Start gives the child a fresh runtime.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/base/config.h"
#include "gtest/gtest.h"
#include "proc/proc.h"

// A multithreaded parent's child may start threads here (that is the
// point); TSan refuses that unless told otherwise.
extern "C" const char* __tsan_default_options() { return "die_after_fork=0"; }

namespace stackalloc {
namespace proc {
namespace {

constexpr int kChildOk = 42;

#ifdef ABSL_HAVE_THREAD_SANITIZER
constexpr bool kTsan = true;
#else
constexpr bool kTsan = false;
#endif
#ifdef ABSL_HAVE_ADDRESS_SANITIZER
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif

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

// Reads what the child wrote into the pipe fds until it closes, and
// returns its wait status.
int WaitForChild(pid_t pid, const int fds[2], std::string* err) {
  close(fds[1]);
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) err->append(buf, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

// Forks; the child runs child() and _exits with its result. Returns the
// child's wait status and what it wrote on stderr.
template <typename F>
int ForkAndWait(F child, std::string* err) {
  int fds[2];
  if (pipe(fds) != 0) abort();
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], STDERR_FILENO);
    _exit(child());
  }
  return WaitForChild(pid, fds, err);
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

TEST(ForkTest, ChildOfABusyRuntimeStartsAFreshOne) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> turns{0};
  StartBusyRuntime(&stop, &turns);
  for (int round = 0; round < 5; ++round) {
    std::string err;
    int status = ForkAndWait(&ChildStartsAFreshRuntime, &err);
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

TEST(ForkTest, ChildCallingIntoTheAbandonedRuntimeDies) {
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
    int status = ForkAndWait(c.child, &err);
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
TEST(ForkTest, ForkWhileCopyingAClosureDiesInTheChild) {
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
    const int status = WaitForChild(forked_in_copy, fork_pipe, &err);
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

}  // namespace
}  // namespace proc
}  // namespace stackalloc
