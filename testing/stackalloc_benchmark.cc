// A stackalloc + stackfree pair on every thread, at 1 to 16 threads: ours
// beside the seed's old design (one FixAlloc behind a global lock) and a bare
// thread-local free list called out of line (the physical limit).
//
//   bazel run -c opt //testing:stackalloc_benchmark
//
// Prints Google Benchmark's report, then a table of ns/op (wall time over the
// pairs of all threads together) with each contender's ratio to ours.

#include <cstddef>

#include "benchmark/benchmark.h"
#include "stackalloc.h"
#include "testing/baselines/bare_free_list.h"
#include "testing/baselines/old_stackalloc.h"
#include "testing/comparison_reporter.h"

namespace stackalloc {
namespace {

void Ours(benchmark::State& state) {
  for (auto _ : state) {
    void* p = stackalloc(kFixedStack);
    benchmark::DoNotOptimize(p);
    stackfree(p, kFixedStack);
  }
}

void Old(benchmark::State& state) {
  for (auto _ : state) {
    void* p = baseline::OldStackalloc(kFixedStack);
    benchmark::DoNotOptimize(p);
    baseline::OldStackfree(p, kFixedStack);
  }
}

void Bare(benchmark::State& state) {
  for (auto _ : state) {
    void* p = baseline::BareAlloc();
    benchmark::DoNotOptimize(p);
    baseline::BareFree(p);
  }
}

void Register(const char* name, void (*fn)(benchmark::State&)) {
  auto* b = benchmark::RegisterBenchmark(name, fn);
  for (int t : {1, 2, 4, 8, 16}) b->Threads(t);
  b->UseRealTime()->Unit(benchmark::kNanosecond);
}

}  // namespace
}  // namespace stackalloc

int main(int argc, char** argv) {
  using namespace stackalloc;  // NOLINT(build/namespaces)
  Register("pair/ours", &Ours);
  Register("pair/old", &Old);
  Register("pair/bare", &Bare);
  return baseline::RunComparison(argc, argv, "ours");
}
