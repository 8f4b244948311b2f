#include "testing/test_helpers.h"

#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

#include "stack/test_peer.h"
#include "stackalloc.h"

namespace stackalloc {
namespace testing_util {

using internal::StackallocTestPeer;

std::string StackStatsDiff(const MemStats& a, const MemStats& b) {
  std::string d;
  auto field = [&d](const std::string& name, uint64_t x, uint64_t y) {
    if (x == y) return;
    if (!d.empty()) d += ", ";
    d += name + " " + std::to_string(x) + "->" + std::to_string(y);
  };
  field("inuse", a.stacks_inuse, b.stacks_inuse);
  field("sys", a.stacks_sys, b.stacks_sys);
  field("cached", a.stacks_cached, b.stacks_cached);
  field("pooled", a.stacks_pooled, b.stacks_pooled);
  field("released", a.stacks_released, b.stacks_released);
  field("guard", a.stacks_guard, b.stacks_guard);
  field("unguarded", a.stacks_unguarded, b.stacks_unguarded);
  field("large", a.large_stacks_inuse, b.large_stacks_inuse);
  for (int k = 0; k < kNumStackOrders; ++k) {
    const StackOrderStats& x = a.orders[k];
    const StackOrderStats& y = b.orders[k];
    const std::string o = "order " + std::to_string(k) + " ";
    field(o + "size", x.stack_size, y.stack_size);
    field(o + "inuse", x.inuse, y.inuse);
    field(o + "cached", x.cached, y.cached);
    field(o + "pooled", x.pooled, y.pooled);
    field(o + "released", x.released, y.released);
    field(o + "sys", x.sys, y.sys);
  }
  return d;
}

void TouchTopPages(void* stack, size_t size, size_t pages,
                   unsigned char value) {
  // The highest byte of the p-th page from the top, p = 0 .. pages - 1.
  auto* last = static_cast<volatile unsigned char*>(stack) + size - 1;
  for (size_t p = 0; p < pages; ++p) *(last - p * kPageSize) = value;
}

void ReturnPages(void* stack, size_t size) {
  if (madvise(stack, size, MADV_DONTNEED) != 0) abort();
}

int FirstInexactPool() {
  const MemStats st = ReadMemStats();
  for (int k = 0; k < kNumStackOrders; ++k) {
    const uint64_t size = OrderStackSize(k);
    const uint64_t pool = StackallocTestPeer::PoolStacks(k) * size;
    const uint64_t released = StackallocTestPeer::PoolReleasedStacks(k) * size;
    if (st.orders[k].pooled + released != pool) return k;
  }
  return -1;
}

void MarkedStack::Mark() const {
  for (size_t at : {size_t{0}, n / 2 - 32, n - 64}) memset(p + at, pattern, 64);
}

bool MarkedStack::Intact() const {
  for (size_t at : {size_t{0}, n / 2 - 32, n - 64}) {
    for (size_t i = 0; i < 64; ++i) {
      if (p[at + i] != pattern) return false;
    }
  }
  return true;
}

namespace {
volatile bool recurse_forever = true;  // The compiler cannot tell it is.
int Recurse(int depth) {
  volatile char frame[256];
  frame[0] = static_cast<char>(depth);
  if (!recurse_forever) return frame[0];
  return Recurse(depth + 1) + frame[0];  // Not a tail call.
}
}  // namespace

void RecurseUntilOverflow() { Recurse(0); }

std::string OverflowReportPattern(size_t size, bool on_a_g,
                                  const std::string& below) {
  return "fatal error: stack overflow: " + std::to_string(size) +
         "-byte stack \\[0x[0-9a-f]+, 0x[0-9a-f]+\\) on M [0-9]+" +
         (on_a_g ? ", G [0-9]+" : "") + " \\(fault at 0x[0-9a-f]+, " + below +
         " bytes below the stack\\)";
}

void CallWithStackPointer(void* sp, void (*fn)()) {
#if defined(__x86_64__)
  asm volatile(
      "mov %0, %%rsp\n\t"
      "call *%1\n\t"
      :
      : "r"(sp), "r"(fn)
      : "memory");
#elif defined(__aarch64__)
  asm volatile(
      "mov sp, %0\n\t"
      "blr %1\n\t"
      :
      : "r"(sp), "r"(fn)
      : "memory");
#else
  (void)sp;
  (void)fn;
  abort();
#endif
  __builtin_unreachable();
}

void AllocAndFreeEveryOrder(int per_order) {
  std::vector<void*> v;
  for (int k = 0; k < kNumStackOrders; ++k) {
    for (int i = 0; i < per_order; ++i)
      v.push_back(stackalloc(OrderStackSize(k)));
    for (void* p : v) stackfree(p, OrderStackSize(k));
    v.clear();
  }
}

int WaitForChild(pid_t pid, int err_fd, std::string* err, int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline =
      Clock::now() + std::chrono::milliseconds(timeout_ms);
  int status = 0;
  bool reaped = false;
  bool killed = false;
  for (;;) {
    if (!reaped) {
      const bool block = killed || (timeout_ms < 0 && err_fd < 0);
      const pid_t r = waitpid(pid, &status, block ? 0 : WNOHANG);
      reaped = r == pid || (r < 0 && errno != EINTR);
    }
    // Read what the child wrote; once it is gone, until the pipe is empty
    // (a grandchild may hold its write end open).
    bool more = false;
    if (err_fd >= 0) {
      pollfd p{err_fd, POLLIN, 0};
      if (poll(&p, 1, 10) > 0) {
        char buf[512];
        const ssize_t n = read(err_fd, buf, sizeof buf);
        if (n > 0) {
          if (err != nullptr) err->append(buf, static_cast<size_t>(n));
          more = true;
        } else if (n == 0) {
          close(err_fd);
          err_fd = -1;
        }
      }
    } else if (!reaped) {
      usleep(1000);
    }
    if (reaped && !more) break;
    if (!reaped && !killed && timeout_ms >= 0 && Clock::now() > deadline) {
      kill(pid, SIGKILL);
      killed = true;
    }
  }
  if (err_fd >= 0) close(err_fd);
  return status;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return "signal " + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  }
  return "status " + std::to_string(status);
}

}  // namespace testing_util
}  // namespace stackalloc
