// A stackalloc + stackfree pair on every thread, at 1 to 16 threads: ours
// beside the seed's old design (one FixAlloc behind a global lock) and a bare
// thread-local free list called out of line (the physical limit).
//
//   bazel run -c opt //testing:stackalloc_benchmark
//
// Prints Google Benchmark's report, then a table of ns/op (wall time over the
// pairs of all threads together) with each contender's ratio to ours.

#include "testing/comparison_reporter.h"
#include "testing/contenders.h"
#include "testing/pair_workloads.h"

int main(int argc, char** argv) {
  using namespace stackalloc::baseline;  // NOLINT(build/namespaces)
  RegisterPair<Ours>("ours");
  RegisterPair<Old>("old");
  RegisterPair<Bare>("bare");
  return RunComparison(argc, argv, "ours");
}
