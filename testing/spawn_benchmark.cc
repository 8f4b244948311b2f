// Go's BenchmarkCreateGoroutines and BenchmarkCreateGoroutinesParallel
// (runtime/proc_test.go), ported to the fiber runtime, beside Go's own.
//
//   bazel run -c opt //testing:spawn_benchmark
//   bazel run -c opt //testing:spawn_report   # runs Go 1.19's in the same go
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
// (as //testing:spawn_report does), --ours_out=FILE appends our results in
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

// Best ns/op per "BenchmarkX[-procs]" name.
using Cells = std::map<std::string, double>;

std::string GoName(const std::string& function, int procs) {
  std::string name = "Benchmark" + function;
  if (procs != 1) name += "-" + std::to_string(procs);
  return name;
}

class Reporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred || run.run_type != Run::RT_Iteration) continue;
      int procs = atoi(run.run_name.args.c_str() + strlen("procs:"));
      double ns = run.GetAdjustedRealTime() *
                  benchmark::GetTimeUnitMultiplier(benchmark::kNanosecond) /
                  benchmark::GetTimeUnitMultiplier(run.time_unit);
      std::string name = GoName(run.run_name.function_name, procs);
      auto it = cells_.find(name);
      if (it == cells_.end() || ns < it->second) cells_[name] = ns;
    }
  }
  const Cells& cells() const { return cells_; }

 private:
  Cells cells_;
};

// Best ns/op of each line of `go test -bench` output.
Cells ReadGoOutput(const std::string& path) {
  Cells best;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name, iterations, ns, unit;
    if (!(fields >> name >> iterations >> ns >> unit) || unit != "ns/op") {
      continue;
    }
    double v = atof(ns.c_str());
    auto it = best.find(name);
    if (it == best.end() || v < it->second) best[name] = v;
  }
  return best;
}

std::string Num(double v, const char* format) {
  if (v < 0) return "-";
  char buf[32];
  snprintf(buf, sizeof buf, format, v);
  return buf;
}

double Get(const Cells& cells, const std::string& name) {
  auto it = cells.find(name);
  return it == cells.end() ? -1 : it->second;
}

void PrintTable(const Cells& ours, const Cells& go) {
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
        "(no Go results: give --go_output, or run //testing:spawn_report "
        "with golang-go installed)\n");
  }
}

}  // namespace
}  // namespace baseline
}  // namespace stackalloc

int main(int argc, char** argv) {
  using namespace stackalloc::baseline;  // NOLINT(build/namespaces)
  std::string go_output, ours_out, ours_output;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    bool ours = false;
    for (auto [flag, value] : {std::pair{"--go_output=", &go_output},
                               std::pair{"--ours_out=", &ours_out},
                               std::pair{"--ours_output=", &ours_output}}) {
      if (strncmp(argv[i], flag, strlen(flag)) == 0) {
        *value = argv[i] + strlen(flag);
        ours = true;
      }
    }
    if (!ours) argv[kept++] = argv[i];
  }
  argc = kept;
  // Both benchmarks at each procs before the next procs: one runtime each.
  for (int procs : kProcs) {
    for (auto [name, fn] :
         {std::pair{"CreateGoroutines", &CreateGoroutines},
          std::pair{"CreateGoroutinesParallel", &CreateGoroutinesParallel}}) {
      benchmark::RegisterBenchmark(name, fn)
          ->ArgName("procs")
          ->Arg(procs)
          ->UseRealTime()
          ->Unit(benchmark::kNanosecond);
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  Reporter reporter;
  // With --ours_output only the table is wanted.
  if (ours_output.empty()) benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  if (running_procs != 0) stackalloc::proc::Stop();
  Cells cells = reporter.cells();
  if (!ours_out.empty()) {
    FILE* f = fopen(ours_out.c_str(), "a");
    if (f == nullptr) return 1;
    for (const auto& [name, ns] : cells)
      fprintf(f, "%s 1 %.2f ns/op\n", name.c_str(), ns);
    fclose(f);
  }
  if (!ours_output.empty()) {
    for (const auto& [name, ns] : ReadGoOutput(ours_output)) {
      auto it = cells.find(name);
      if (it == cells.end() || ns < it->second) cells[name] = ns;
    }
  }
  PrintTable(cells, go_output.empty() ? Cells{} : ReadGoOutput(go_output));
  return 0;
}
