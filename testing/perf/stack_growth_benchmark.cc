// The seed's BenchmarkStackGrowth, old stack pool beside new, in one binary.
//
//   bazel run -c opt //testing/perf:stack_growth_benchmark
//   bazel run -c opt //testing/perf:stack_growth_report   # with Go 1.19 beside
//
// For procs = 1, 2, 4, 8, 16 it starts the fiber runtime with `procs` Ms and
// the old pool (the seed's one FixAlloc behind a global lock) or the new one
// (stackalloc, per M), and runs testing/perf/stack_growth.h's workload. ns/op
// is wall time / N, one op being one StackGrowthRecursive(10) call; segs/op is
// the stack segments allocated per op.
//
// After Google Benchmark's report it prints the seed's table:
//   benchmark  old ns/op  new ns/op  delta  go ns/op ...
// With --go_output=FILE (the output of `go test -bench=StackGrowth ...`)
// the go column is filled in. With repetitions, each cell is the best run:
// noise on a shared machine only ever adds time.

#include <time.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
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
#include "testing/perf/stack_growth.h"

namespace stackalloc {
namespace baseline {
namespace {

constexpr int kProcs[] = {1, 2, 4, 8, 16};

// The runtime is kept across a benchmark's runs (Ms are never freed, so a
// runtime per run would leave a trail of them) and restarted when the next
// benchmark wants other procs or another pool.
struct RunningRuntime {
  bool running = false;
  int procs = 0;
  bool old_pool = false;
  bool segment_cache = false;
} current;

void EnsureRuntime(int procs, bool old_pool, bool segment_cache) {
  if (current.running && current.procs == procs &&
      current.old_pool == old_pool && current.segment_cache == segment_cache) {
    return;
  }
  if (current.running) proc::Stop();
  proc::Options o;
  o.gomaxprocs = procs;
  o.stack_source = old_pool ? kOldStackSource : proc::kDefaultStackSource;
  o.segment_cache = segment_cache;
  proc::Start(o);
  current = {true, procs, old_pool, segment_cache};
}

// CPU time of the whole process (all Ms), in ns.
double ProcessCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return 1e9 * static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec);
}

void StackGrowth(benchmark::State& state, bool old_pool, bool segment_cache) {
  int procs = static_cast<int>(state.range(0));
  EnsureRuntime(procs, old_pool, segment_cache);
  uint64_t segments0 = proc::ReadProcStats().segments;
  double cpu0 = ProcessCpuNs();
  while (state.KeepRunningBatch(state.max_iterations)) {
    RunStackGrowth(procs, state.max_iterations);
  }
  double cpu = ProcessCpuNs() - cpu0;
  // Segments per call actually made (N rounded down to whole turns).
  int64_t calls = state.max_iterations / kCallsPerSched * kCallsPerSched;
  double segments =
      static_cast<double>(proc::ReadProcStats().segments - segments0);
  state.counters["segs/op"] =
      calls == 0 ? 0.0 : segments / static_cast<double>(calls);
  // The machine is shared: CPU time per op is what the work itself cost,
  // whoever else ran.
  state.counters["cpu_ns/op"] = cpu / static_cast<double>(state.iterations());
}

// old and new compare the pools (the seed's comparison), so every segment
// goes through g0 and the pool; cached is the runtime as it ships, whose Gs
// re-enter segments they used before without either (Options).
void StackGrowthOld(benchmark::State& state) {
  StackGrowth(state, true, false);
}
void StackGrowthNew(benchmark::State& state) {
  StackGrowth(state, false, false);
}
void StackGrowthCached(benchmark::State& state) {
  StackGrowth(state, false, true);
}

// The same calls on a thread's own stack, outside the runtime: no segments,
// so this is the frame work alone (one thread).
void StackGrowthFrames(benchmark::State& state) {
  if (current.running) proc::Stop();
  current.running = false;
  double cpu0 = ProcessCpuNs();
  for (auto _ : state) StackGrowthRecursive(kStackGrowthDepth);
  state.counters["segs/op"] = 0.0;
  state.counters["cpu_ns/op"] =
      (ProcessCpuNs() - cpu0) / static_cast<double>(state.iterations());
}

struct Cell {
  double ns = -1;      // Wall time / N.
  double cpu_ns = -1;  // Process CPU time / N.
  double segs = -1;
};

// The best run of a pool at `procs`: least ns/op, with its segs/op, and the
// least CPU time per op of any run.
Cell Best(const ComparisonReporter& r, const std::string& pool, int procs) {
  Cell c;
  for (const auto& run : r.Repetitions("StackGrowth", pool, procs)) {
    if (c.ns < 0 || run.ns_per_op < c.ns) {
      c.ns = run.ns_per_op;
      auto it = run.counters.find("segs/op");
      if (it != run.counters.end()) c.segs = it->second;
    }
    auto cpu = run.counters.find("cpu_ns/op");
    if (cpu != run.counters.end() && (c.cpu_ns < 0 || cpu->second < c.cpu_ns)) {
      c.cpu_ns = cpu->second;
    }
  }
  return c;
}

// The best cells of every pool and procs: from this process's runs, or
// merged from the files earlier rounds wrote (stack_growth_report runs our
// rounds between Go's, so both see the same load).
class Cells {
 public:
  void Take(const ComparisonReporter& r) {
    for (const char* pool : {"old", "new", "cached", "frames"}) {
      for (int procs : kProcs) Add(pool, procs, Best(r, pool, procs));
    }
  }

  // Keeps the best (lowest) wall and CPU time of each cell.
  void Add(const std::string& pool, int procs, const Cell& run) {
    if (run.ns < 0) return;
    Cell& c = cells_[pool][procs];
    if (c.ns < 0 || run.ns < c.ns) {
      c.ns = run.ns;
      c.segs = run.segs;
    }
    if (run.cpu_ns >= 0 && (c.cpu_ns < 0 || run.cpu_ns < c.cpu_ns)) {
      c.cpu_ns = run.cpu_ns;
    }
  }

  // One line per cell, "pool procs ns cpu_ns segs".
  void Write(FILE* f) const {
    for (const auto& [pool, by_procs] : cells_) {
      for (const auto& [procs, c] : by_procs) {
        fprintf(f, "%s %d %.3f %.3f %.3f\n", pool.c_str(), procs, c.ns,
                c.cpu_ns, c.segs);
      }
    }
  }

  void Read(const std::string& path) {
    std::ifstream in(path);
    std::string pool;
    int procs;
    Cell c;
    while (in >> pool >> procs >> c.ns >> c.cpu_ns >> c.segs) {
      Add(pool, procs, c);
    }
  }

  Cell Get(const std::string& pool, int procs) const {
    auto p = cells_.find(pool);
    if (p == cells_.end()) return {};
    auto c = p->second.find(procs);
    return c == p->second.end() ? Cell{} : c->second;
  }

 private:
  std::map<std::string, std::map<int, Cell>> cells_;
};

std::string Delta(double old_ns, double new_ns) {
  char buf[32];
  snprintf(buf, sizeof buf, "%+.2f%%", 100 * (new_ns - old_ns) / old_ns);
  return buf;
}

void PrintTable(const Cells& r, const GoCells& go) {
  printf(
      "\nBenchmarkStackGrowth: ns/op = wall time / stackGrowthRecursive(10) "
      "calls; best of the repetitions\n"
      "old, new: the seed's pools, every segment through g0 and the pool; "
      "cached: the runtime's default,\nsegments re-entered from the G's "
      "cache\n");
  printf("%-24s %9s %9s %9s %9s %9s %8s %7s %9s %7s %8s %8s %8s\n", "benchmark",
         "old ns/op", "new ns/op", "delta", "cached", "go ns/op", "old/new",
         "new/go", "cached/go", "segs/op", "old cpu", "new cpu", "cach cpu");
  for (int procs : kProcs) {
    std::string name = "BenchmarkStackGrowth";
    if (procs != 1) name += "-" + std::to_string(procs);
    Cell o = r.Get("old", procs);
    Cell n = r.Get("new", procs);
    Cell c = r.Get("cached", procs);
    const double gns = Get(go, name);
    bool on = o.ns > 0 && n.ns >= 0;
    printf("%-24s %9s %9s %9s %9s %9s %8s %7s %9s %7s %8s %8s %8s\n",
           name.c_str(), Num(o.ns, "%.1f").c_str(), Num(n.ns, "%.1f").c_str(),
           on ? Delta(o.ns, n.ns).c_str() : "-", Num(c.ns, "%.1f").c_str(),
           Num(gns, "%.1f").c_str(),
           on ? Num(o.ns / n.ns, "%.2fx").c_str() : "-",
           gns > 0 && n.ns >= 0 ? Num(n.ns / gns, "%.2fx").c_str() : "-",
           gns > 0 && c.ns >= 0 ? Num(c.ns / gns, "%.2fx").c_str() : "-",
           Num(n.segs, "%.2f").c_str(), Num(o.cpu_ns, "%.0f").c_str(),
           Num(n.cpu_ns, "%.0f").c_str(), Num(c.cpu_ns, "%.0f").c_str());
  }
  printf("(ratios of ns/op; cpu: process CPU time / N, all Ms together)\n");
  Cell f = r.Get("frames", 1);
  Cell n1 = r.Get("new", 1);
  Cell c1 = r.Get("cached", 1);
  if (f.cpu_ns > 0 && n1.cpu_ns > 0 && c1.cpu_ns > 0) {
    printf(
        "\nCPU time per op at 1 proc: %.2f ns on a thread's own stack (the "
        "frame work alone);\nsegments add %.2f ns (%.1f%%) through g0 and "
        "the new pool, %.2f ns (%.1f%%) from the G's cache\n(measured at "
        "different moments, so as noisy as the machine: judge with "
        "//testing/perf:stack_growth_instructions)\n",
        f.cpu_ns, n1.cpu_ns - f.cpu_ns, 100 * (n1.cpu_ns - f.cpu_ns) / f.cpu_ns,
        c1.cpu_ns - f.cpu_ns, 100 * (c1.cpu_ns - f.cpu_ns) / f.cpu_ns);
  }
  if (go.empty()) {
    printf(
        "(no Go results: give --go_output, or run "
        "//testing/perf:stack_growth_report with golang-go installed)\n");
  }
}

}  // namespace
}  // namespace baseline
}  // namespace stackalloc

int main(int argc, char** argv) {
  using namespace stackalloc::baseline;  // NOLINT(build/namespaces)
  std::string go_output = TakeFlag(argc, argv, "--go_output=");
  // --ours_out=FILE appends this run's cells to FILE; --ours_output=FILE
  // runs nothing and prints the table of FILE's cells (the report's rounds).
  std::string ours_out = TakeFlag(argc, argv, "--ours_out=");
  std::string ours_output = TakeFlag(argc, argv, "--ours_output=");
  // Old, new and cached side by side for each procs, so all see the same
  // noise; the frame work alone right after them at 1 proc.
  auto add = [](const char* name, void (*fn)(benchmark::State&), int procs) {
    benchmark::RegisterBenchmark(name, fn)
        ->ArgName("procs")
        ->Arg(procs)
        ->UseRealTime()
        ->Unit(benchmark::kNanosecond);
  };
  for (int procs : kProcs) {
    add("StackGrowth/old", &StackGrowthOld, procs);
    add("StackGrowth/new", &StackGrowthNew, procs);
    add("StackGrowth/cached", &StackGrowthCached, procs);
    if (procs == 1) add("StackGrowth/frames", &StackGrowthFrames, 1);
  }
  Cells cells;
  if (ours_output.empty()) {
    // Console output as usual; the runs parsed for the table.
    ComparisonReporter reporter("new");
    reporter.set_threads_arg("procs");
    if (!RunBenchmarks(argc, argv, reporter)) return 1;
    if (current.running) stackalloc::proc::Stop();
    cells.Take(reporter);
  } else {
    cells.Read(ours_output);
  }
  if (!ours_out.empty()) {
    FILE* f = fopen(ours_out.c_str(), "a");
    if (f == nullptr) return 1;
    cells.Write(f);
    fclose(f);
  }
  PrintTable(cells, go_output.empty() ? GoCells{} : ReadGoBench(go_output));
  return 0;
}
