// Fixed spawning work for callgrind (instructions per G, exactly, on a noisy
// machine):
//
//   bazel build -c opt //testing/perf:spawn_instructions
//   for n in 100000 200000; do valgrind --tool=callgrind
//     --callgrind-out-file=/dev/null bazel-bin/testing/perf/spawn_instructions
//     $n;
//   done
//
// One M runs a chain of n Gs, each spawning the next (Go's
// BenchmarkCreateGoroutines at 1 proc), after a warm-up chain of 1000. The
// difference of two runs' totals divided by the difference of their n is the
// instructions per G: spawn, queue, switch in, run, switch out, reuse.

#include <cstdio>
#include <cstdlib>

#include "proc/proc.h"

namespace {

void ChainStep(long n) {
  if (n == 0) return;
  stackalloc::proc::Go([n] { ChainStep(n - 1); });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: spawn_instructions N\n");
    return 2;
  }
  const long n = atol(argv[1]);
  stackalloc::proc::Options o;
  stackalloc::proc::Start(o);
  stackalloc::proc::Go([] { ChainStep(1000); });
  stackalloc::proc::Wait();
  stackalloc::proc::Go([n] { ChainStep(n); });
  stackalloc::proc::Stop();
  printf("%llu Gs\n", static_cast<unsigned long long>(
                          stackalloc::proc::ReadProcStats().gs_finished));
  return 0;
}
