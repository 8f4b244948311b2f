// What tests across the tree share, each written once: the statistics a
// refusal must leave alone and the pools' exactness, a write into a guard
// page, a recursion without end, a call on a stack chosen by hand, the
// overflow report's pattern, marked stacks, every order allocated and
// freed, threads run at once, waiting for another thread's work, and child
// processes with their wait status.
// (The bytes a request takes and the largest request are the library's own,
// StackBytes and kMaxStackRequest in base/stack_sizes.h.)
//
// For tests only (testonly //testing:test_helpers). Thread-safe unless a
// function says otherwise.

#ifndef TESTING_TEST_HELPERS_H_
#define TESTING_TEST_HELPERS_H_

#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "stats/mstats.h"

namespace stackalloc {
namespace testing_util {

// --- Statistics --------------------------------------------------------------

// The stack statistics that differ between a and b, every one but
// stacks_meta_sys (which a refusal may grow: README "Failure"), as
// "name a->b" pairs; empty if none does.
std::string StackStatsDiff(const MemStats& a, const MemStats& b);

// The first order whose global pool does not hold exactly what the
// statistics call pooled, with the stacks whose pages went back one at a
// time (orders[k].pooled + their bytes == the pool's stacks' bytes); -1 if
// every order's does. Exact only at quiescence (no thread allocating or
// freeing). Allocates nothing: a forked child may call it.
int FirstInexactPool();

// --- Stacks ------------------------------------------------------------------

// Writes one byte `below` bytes below `stack`: into the guard page under it
// (stacks grow down), which must fault and be reported as an overflow.
inline void WriteBelow(void* stack, size_t below = 1) {
  *(static_cast<volatile char*>(stack) - below) = 1;
}

// A stack a test holds, marked with a pattern at its ends and middle (the
// only bytes touched, so that large stacks stay cheap), to see that nothing
// else wrote into it. n is the size asked for, at least 64 bytes.
struct MarkedStack {
  unsigned char* p;
  size_t n;
  unsigned char pattern;

  void Mark() const;
  bool Intact() const;
};

// Touches the top `pages` pages of the stack [stack, stack + size), one
// byte written (`value`) at the top of each, as frames that went that deep
// would: the census then counts it at depth `pages`.
void TouchTopPages(void* stack, size_t size, size_t pages,
                   unsigned char value = 1);

// Returns the pages of a stack the test holds to the OS (MADV_DONTNEED):
// they read as zero, and the census counts the stack at depth 0 again.
void ReturnPages(void* stack, size_t size);

// Recurses without end, every frame written (far smaller than a page): on
// one of our stacks it runs into the guard page below, and dies there.
void RecurseUntilOverflow();

// The first line of an overflow report (stack/overflow.cc) as a regular
// expression, for EXPECT_DEATH: a fault `below` bytes under a `size`-byte
// stack (`below` a regular expression too: any count by default), on an M
// and, with on_a_g, on a G of the fiber runtime.
std::string OverflowReportPattern(size_t size, bool on_a_g = false,
                                  const std::string& below = "[0-9]+");

// Calls fn on the calling thread with the stack pointer at `sp` (the caller
// chooses how near a guard or how aligned; on x86-64 the call pushes its
// return address below it), as a fiber library that switched to a stack by
// hand would run it. fn must not return: it dies, exits or jumps away,
// since the thread's stack pointer is not restored. x86-64 and AArch64;
// elsewhere it aborts.
[[noreturn]] void CallWithStackPointer(void* sp, void (*fn)());

// Allocates `per_order` stacks of every order, then frees them, order by
// order, on the calling thread: its M's caches end full, and what they
// cannot hold goes to the pools.
void AllocAndFreeEveryOrder(int per_order);

// --- Threads -----------------------------------------------------------------

// Runs f(i) for every i in [0, n) on n threads at once, and joins them.
template <typename F>
void RunThreads(int n, F f) {
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (int i = 0; i < n; ++i) threads.emplace_back(f, i);
  for (std::thread& t : threads) t.join();
}

// Yields until done() is true or `limit` has passed; returns done(). For a
// test whose other thread (an observer, an idle M) must have run before the
// test goes on: when the OS schedules a thread is not the test's to assume,
// and on a loaded machine a fast build can finish its work first.
template <typename F>
bool WaitUntil(F done,
               std::chrono::nanoseconds limit = std::chrono::minutes(1)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::yield();
  }
  return true;
}

// --- Child processes
// -----------------------------------------------------------

// Waits for child `pid` and returns its wait status. With err_fd >= 0 (the
// read end of a pipe the child's stderr went to, its write end closed here)
// appends what the child wrote to *err, and closes err_fd. With
// timeout_ms >= 0, a child still running after that long is killed with
// SIGKILL, and its status says so.
int WaitForChild(pid_t pid, int err_fd = -1, std::string* err = nullptr,
                 int timeout_ms = -1);

// Forks; the child runs f() and _exits with what f returns (0 if it returns
// nothing, unless it exits itself); returns the child's wait status (see
// WaitForChild for err and timeout_ms). The child runs nothing but f: in the
// child of a multithreaded process f should not allocate (under ASan,
// malloc may wait for ever on a lock a vanished thread held), nor start
// threads under TSan.
template <typename F>
int RunInChild(F f, std::string* err = nullptr, int timeout_ms = -1) {
  int fds[2] = {-1, -1};
  if (err != nullptr && pipe(fds) != 0) abort();
  const pid_t pid = fork();
  if (pid < 0) abort();
  if (pid == 0) {
    if (err != nullptr) {
      close(fds[0]);
      dup2(fds[1], STDERR_FILENO);
      close(fds[1]);
    }
    if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
      f();
      _exit(0);
    } else {
      _exit(static_cast<int>(f()));
    }
  }
  if (err != nullptr) close(fds[1]);
  return WaitForChild(pid, fds[0], err, timeout_ms);
}

// A wait status in words, for failure messages: "exit 3", "signal 6
// (Aborted)".
std::string DescribeWaitStatus(int status);

}  // namespace testing_util
}  // namespace stackalloc

#endif  // TESTING_TEST_HELPERS_H_
