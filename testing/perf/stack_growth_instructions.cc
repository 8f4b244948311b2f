// Fixed BenchmarkStackGrowth work for callgrind, so the cost of segments can
// be counted exactly on a noisy machine:
//
//   bazel build -c opt //testing/perf:stack_growth_instructions
//   for n in 20000 40000; do valgrind --tool=callgrind
//     --callgrind-out-file=/dev/null
//     bazel-bin/testing/perf/stack_growth_instructions MODE $n; done
//
// MODE: frames (the calls on the thread's own stack, no runtime), g0 (on a
// G, every segment through g0 and the stack pool: segment_cache off), or
// direct (the runtime's default: segments reused from the G's cache).
// Each run does a warm-up of 1000 calls, then n StackGrowthRecursive(10)
// calls; the difference of two runs' totals ("Collected") divided by the
// difference of their n is the instructions per call, start-up excluded.

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "proc/proc.h"
#include "testing/perf/stack_growth.h"

namespace stackalloc {
namespace baseline {
namespace {

void Calls(long n) {
  for (long i = 0; i < n; ++i) StackGrowthRecursive(kStackGrowthDepth);
}

int Run(const char* mode, long n) {
  if (strcmp(mode, "frames") == 0) {
    Calls(1000 + n);
  } else if (strcmp(mode, "g0") == 0 || strcmp(mode, "direct") == 0) {
    proc::Options o;
    o.segment_cache = strcmp(mode, "direct") == 0;
    proc::Start(o);
    proc::Go([n] { Calls(1000 + n); });
    proc::Stop();
    proc::ProcStats st = proc::ReadProcStats();
    printf("segments %llu, reused %llu\n",
           static_cast<unsigned long long>(st.segments),
           static_cast<unsigned long long>(st.segments_reused));
  } else {
    fprintf(stderr, "usage: stack_growth_instructions frames|g0|direct N\n");
    return 2;
  }
  printf("%s: %ld calls\n", mode, n);
  return 0;
}

}  // namespace
}  // namespace baseline
}  // namespace stackalloc

int main(int argc, char** argv) {
  if (argc != 3) return stackalloc::baseline::Run("", 0);
  return stackalloc::baseline::Run(argv[1], atol(argv[2]));
}
