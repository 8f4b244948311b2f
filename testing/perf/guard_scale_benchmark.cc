// A million guarded stacks: ours against Boost.Context's
// protected_fixedsize_stack, the guarded stacks C++ fiber users have today.
//
//   bazel run -c opt //testing/perf:guard_scale_benchmark [-- --stacks=N]
//
// Each contender allocates N live 4 KiB stacks (default 1,000,000), touches
// each once (one byte near its top, as a fiber's first frame would), and
// reports the time per stack, the lines it added to /proc/self/maps, and the
// resident memory it added; then frees them all. Boost's allocator maps and
// mprotects a guard for every stack, so every stack costs mappings and
// vm.max_map_count (65,530 by default) stops it long before N: it runs in a
// child process of its own, until mmap refuses (bad_alloc) or mprotect fails
// (an assertion in debug builds; in an NDEBUG build Boost ignores the error
// and hands out a stack without a guard, which we count as where it fails).

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <string>
#include <vector>

#include "boost/context/protected_fixedsize_stack.hpp"
#include "boost/context/stack_context.hpp"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/process_info.h"

namespace stackalloc {
namespace baseline {
namespace {

using testing_util::MapsLines;
using testing_util::RssKiB;

struct Result {
  int64_t stacks = 0;       // Live stacks reached.
  double ns_per_stack = 0;  // Allocation and first touch.
  int64_t maps_added = 0;
  int64_t rss_added_kib = 0;
  char why_stopped[96] = "reached N";
};

using Clock = std::chrono::steady_clock;

void Finish(Result& r, Clock::time_point t0, int maps0, int64_t rss0) {
  r.ns_per_stack =
      std::chrono::duration<double, std::nano>(Clock::now() - t0).count() /
      (r.stacks > 0 ? r.stacks : 1);
  r.maps_added = MapsLines() - maps0;
  r.rss_added_kib = RssKiB() - rss0;
}

Result Ours(int64_t n) {
  Result r;
  std::vector<char*> stacks;
  stacks.reserve(n);
  const int maps0 = MapsLines();
  const int64_t rss0 = RssKiB();
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < n; ++i) {
    auto* p = static_cast<char*>(stackalloc(kFixedStack));
    if (p == nullptr) {
      snprintf(r.why_stopped, sizeof r.why_stopped, "stackalloc: nullptr");
      break;
    }
    p[kFixedStack - 64] = 1;  // The first frame's touch.
    stacks.push_back(p);
  }
  r.stacks = static_cast<int64_t>(stacks.size());
  Finish(r, t0, maps0, rss0);
  const MemStats st = ReadMemStats();
  if (st.stacks_unguarded != 0) {
    snprintf(r.why_stopped, sizeof r.why_stopped, "%llu stacks unguarded",
             static_cast<unsigned long long>(st.stacks_unguarded));
  }
  for (char* p : stacks) stackfree(p, kFixedStack);
  return r;
}

Result Boost(int64_t n) {
  Result r;
  boost::context::protected_fixedsize_stack alloc(kFixedStack);
  std::vector<boost::context::stack_context> stacks;
  stacks.reserve(n);
  const int maps0 = MapsLines();
  const int64_t rss0 = RssKiB();
  const auto t0 = Clock::now();
  int maps_before = maps0;
  for (int64_t i = 0; i < n; ++i) {
    try {
      stacks.push_back(alloc.allocate());
    } catch (const std::bad_alloc&) {
      snprintf(r.why_stopped, sizeof r.why_stopped, "mmap refused");
      break;
    }
    static_cast<char*>(stacks.back().sp)[-64] = 1;
    // Every 4096 stacks, check that the guards still cost mappings: once
    // mprotect fails (NDEBUG hides it), the new stacks have no guard.
    if ((i & 4095) == 4095) {
      const int maps = MapsLines();
      if (maps - maps_before < 4096) {
        snprintf(r.why_stopped, sizeof r.why_stopped,
                 "mprotect failing: stacks without guards");
        stacks.resize(stacks.size());
        break;
      }
      maps_before = maps;
    }
  }
  r.stacks = static_cast<int64_t>(stacks.size());
  Finish(r, t0, maps0, rss0);
  return r;  // The stacks go with the process.
}

// Runs one contender in a child process: each starts from a fresh address
// space, and Boost's mappings and possible abort stay in its own.
Result InChild(Result (*contender)(int64_t), bool guards, int64_t n) {
  int fds[2];
  if (pipe(fds) != 0) abort();
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    SetStackGuards(guards);
    const Result r = contender(n);
    if (write(fds[1], &r, sizeof r) != sizeof r) _exit(2);
    _exit(0);
  }
  close(fds[1]);
  Result r;
  const ssize_t got = read(fds[0], &r, sizeof r);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (got != sizeof r) {
    r = Result{};
    snprintf(r.why_stopped, sizeof r.why_stopped,
             "child died (signal %d) before reporting",
             WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  }
  return r;
}

void Print(const char* name, const Result& r) {
  printf("%-26s %10lld %12.1f %12lld %12.1f   %s\n", name,
         static_cast<long long>(r.stacks), r.ns_per_stack,
         static_cast<long long>(r.maps_added), r.rss_added_kib / 1024.0,
         r.why_stopped);
}

}  // namespace
}  // namespace baseline
}  // namespace stackalloc

int main(int argc, char** argv) {
  using namespace stackalloc::baseline;  // NOLINT(build/namespaces)
  int64_t n = 1000000;
  for (int i = 1; i < argc; ++i) {
    if (strncmp(argv[i], "--stacks=", 9) == 0) {
      n = std::atoll(argv[i] + 9);
    } else {
      fprintf(stderr, "usage: %s [--stacks=N]\n", argv[0]);
      return 2;
    }
  }
  printf("%lld live 4 KiB stacks, each touched once\n",
         static_cast<long long>(n));
  printf("%-26s %10s %12s %12s %12s   %s\n", "allocator", "stacks", "ns/stack",
         "maps added", "RSS MiB", "stopped by");
  Print("ours (guards)", InChild(&Ours, true, n));
  Print("ours (no guards)", InChild(&Ours, false, n));
  Print("boost protected_fixedsize", InChild(&Boost, true, n));
  return 0;
}
