// Go's BenchmarkCreateGoroutines and BenchmarkCreateGoroutinesParallel
// (runtime/proc_test.go), ported to the fiber runtime, beside Go's own.
//
//   bazel run -c opt //testing/perf:spawn_benchmark
//   bazel run -c opt //testing/perf:spawn_report   # runs Go 1.19's in the same
//   go
//
// For procs = 1, 2, 4, 8, 16 the runtime runs with `procs` Ms (Go's
// -cpu=procs, GOMAXPROCS), and:
//
//   CreateGoroutines          one chain: each G spawns the next and returns
//                             (Go: `go f(n-1)`), N Gs in all;
//   CreateGoroutinesParallel  `procs` spawner Gs (Go's b.RunParallel) spawn
//                             N empty Gs between them, taking work from a
//                             shared counter in grains.
//
// ns/op is wall time / N. One difference from Go, said here and in the
// table's caption: Go's sysmon preempts a spawner every 10 ms and the Gs it
// spawned run meanwhile on other Ps; our Gs are never preempted, so a
// spawner yields (Gosched) after each grain of kGrain spawns instead.
//
// After Google Benchmark's report it prints one row per benchmark and procs
// in Go's naming (BenchmarkCreateGoroutinesParallel-2): ours, Go's and
// ours/go. With --go_output=FILE (the output of `go test -bench=...`) the Go
// column is filled in. With repetitions, each cell is the best run: noise
// on a shared machine only ever adds time. To interleave our runs with Go's
// (as //testing/perf:spawn_report does), --ours_out=FILE appends our results in
// Go's format, and --ours_output=FILE adds such results to the table.

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "proc/proc.h"
#include "testing/perf/comparison_reporter.h"
#include "testing/perf/go_bench.h"

namespace stackalloc {
namespace baseline {
namespace {

constexpr int kProcs[] = {1, 2, 4, 8, 16};
// Spawns between two yields of a parallel spawner (see above).
constexpr int64_t kGrain = 64;

// The runtime is kept across a benchmark's runs and restarted when the next
// one wants other procs.
int running_procs = 0;

void EnsureRuntime(int procs) {
  if (running_procs == procs) return;
  if (running_procs != 0) proc::Stop();
  proc::Options o;
  o.gomaxprocs = procs;
  proc::Start(o);
  running_procs = procs;
}

// Go's f: `if n == 0 { c <- true; return }; go f(n - 1)`. The runtime's
// Wait() stands in for the channel.
void ChainStep(int64_t n) {
  if (n == 0) return;
  proc::Go([n] { ChainStep(n - 1); });
}

void CreateGoroutines(benchmark::State& state) {
  EnsureRuntime(static_cast<int>(state.range(0)));
  while (state.KeepRunningBatch(state.max_iterations)) {
    const int64_t n = state.max_iterations;
    proc::Go([n] { ChainStep(n - 1); });
    proc::Wait();
  }
}

void CreateGoroutinesParallel(benchmark::State& state) {
  const int procs = static_cast<int>(state.range(0));
  EnsureRuntime(procs);
  while (state.KeepRunningBatch(state.max_iterations)) {
    std::atomic<int64_t> left{state.max_iterations};
    for (int p = 0; p < procs; ++p) {
      proc::Go([&left] {
        for (;;) {
          int64_t n = left.fetch_sub(kGrain, std::memory_order_relaxed);
          if (n <= 0) return;
          for (int64_t i = n < kGrain ? n : kGrain; i > 0; --i) {
            proc::Go([] {});
          }
          proc::Gosched();
        }
      });
    }
    proc::Wait();
  }
}

void PrintTable(const GoCells& ours, const GoCells& go) {
  printf(
      "\nSpawning Gs: ns/op = wall time / Gs spawned; best of the "
      "repetitions\n(ours: parallel spawners yield every %lld spawns, where "
      "Go preempts them every 10 ms)\n",
      static_cast<long long>(kGrain));
  printf("%-40s %10s %10s %8s\n", "benchmark", "ours ns/op", "go ns/op",
         "ours/go");
  for (const char* function :
       {"CreateGoroutines", "CreateGoroutinesParallel"}) {
    for (int procs : kProcs) {
      std::string name = GoName(function, procs);
      double o = Get(ours, name);
      double g = Get(go, name);
      printf("%-40s %10s %10s %8s\n", name.c_str(), Num(o, "%.2f").c_str(),
             Num(g, "%.2f").c_str(),
             o >= 0 && g > 0 ? Num(o / g, "%.2fx").c_str() : "-");
    }
  }
  if (go.empty()) {
    printf(
        "(no Go results: give --go_output, or run //testing/perf:spawn_report "
        "with golang-go installed)\n");
  }
}

}  // namespace
}  // namespace baseline
}  // namespace stackalloc

int main(int argc, char** argv) {
  using namespace stackalloc::baseline;  // NOLINT(build/namespaces)
  const std::string go_output = TakeFlag(argc, argv, "--go_output=");
  const std::string ours_out = TakeFlag(argc, argv, "--ours_out=");
  const std::string ours_output = TakeFlag(argc, argv, "--ours_output=");
  // Both benchmarks at each procs before the next procs: one runtime each.
  for (int procs : kProcs) {
    for (auto [name, fn] :
         {std::pair{"CreateGoroutines/ours", &CreateGoroutines},
          std::pair{"CreateGoroutinesParallel/ours",
                    &CreateGoroutinesParallel}}) {
      benchmark::RegisterBenchmark(name, fn)
          ->ArgName("procs")
          ->Arg(procs)
          ->UseRealTime()
          ->Unit(benchmark::kNanosecond);
    }
  }
  GoCells cells;
  if (ours_output.empty()) {
    ComparisonReporter reporter("ours");
    reporter.set_threads_arg("procs");
    if (!RunBenchmarks(argc, argv, reporter)) return 1;
    if (running_procs != 0) stackalloc::proc::Stop();
    for (const char* function :
         {"CreateGoroutines", "CreateGoroutinesParallel"}) {
      for (int procs : kProcs) {
        for (const auto& run : reporter.Repetitions(function, "ours", procs)) {
          AddBest(cells, GoName(function, procs), run.ns_per_op);
        }
      }
    }
  } else {
    cells = ReadGoBench(ours_output);
  }
  if (!ours_out.empty() && !AppendGoBench(ours_out, cells)) return 1;
  PrintTable(cells, go_output.empty() ? GoCells{} : ReadGoBench(go_output));
  return 0;
}
