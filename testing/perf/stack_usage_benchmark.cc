// The census (ReadStackUsage) of many live stacks: 1,000,000 stacks of 4 KiB
// and 10,000 of 1 MiB, each touched down to a known depth (every page from
// its top down, as frames would), beside the naive census (one mincore()
// per stack, and no slot states read).
//
//   bazel run -c opt //testing/perf:stack_usage_benchmark
//
// Each case allocates its stacks and touches every one to its depth
// (untimed), then times whole censuses. Counters: syscalls and chunks per
// census. A census that is not exact (every stack of the case at exactly its
// depth and handed out, every other stack of the order free and untouched,
// nothing unread) fails its case with SkipWithError; so does a case for
// which the machine has not the memory (MemAvailable). Prints Google
// Benchmark's report, then one table of ms per census (wall
// and CPU time: on a shared machine the wall time includes preemption).

#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "benchmark/benchmark.h"
#include "stackalloc.h"
#include "stats/mstats.h"

namespace stackalloc {
namespace baseline {
namespace {

struct Case {
  int order;
  uint64_t stacks;
  size_t depth;  // Pages touched below the top of each stack.
};

// The stacks of the case being run, kept between its contenders.
struct Held {
  Case c{-1, 0, 0};
  std::vector<void*> stacks;
};
Held held;

void Release() {
  if (held.c.order < 0) return;
  const size_t size = OrderStackSize(held.c.order);
  for (void* p : held.stacks) stackfree(p, size);
  held.stacks.clear();
  held.c = Case{-1, 0, 0};
  ScavengeStacks();  // Every chunk free: its pages go back.
}

// Bytes the kernel says it could still give (/proc/meminfo), or 0.
uint64_t MemAvailable() {
  FILE* f = fopen("/proc/meminfo", "r");
  if (f == nullptr) return 0;
  char line[256];
  uint64_t kib = 0;
  while (fgets(line, sizeof(line), f) != nullptr) {
    if (sscanf(line, "MemAvailable: %lu kB", &kib) == 1) break;
  }
  fclose(f);
  return kib << 10;
}

// Makes the case's stacks live, each touched to its depth; an error message
// if the memory is not there (nullptr if all went well).
const char* Hold(const Case& c) {
  if (held.c.order == c.order && held.c.stacks == c.stacks &&
      held.c.depth == c.depth) {
    return nullptr;
  }
  Release();
  // The touched pages, and 2 GiB to spare for the machine's other users.
  if (c.stacks * c.depth * kPageSize + (uint64_t{2} << 30) > MemAvailable()) {
    return "not enough memory available for the touched pages";
  }
  const size_t size = OrderStackSize(c.order);
  held.stacks.reserve(c.stacks);
  for (uint64_t i = 0; i < c.stacks; ++i) {
    auto* p = static_cast<volatile char*>(stackalloc(size));
    if (p == nullptr) return "stackalloc refused";
    for (size_t d = 0; d < c.depth; ++d) p[size - 1 - d * kPageSize] = 1;
    held.stacks.push_back(const_cast<char*>(p));
  }
  held.c = c;
  return nullptr;
}

// Whether the census counted the case exactly. The process holds nothing
// else: the case's stacks, and the free stacks the caches and pools kept
// beside them (carved from released chunks: never touched).
bool Exact(const StackUsage& u, const Case& c) {
  const StackOrderUsage& o = u.orders[c.order];
  const size_t pages = OrderStackSize(c.order) / kPageSize;
  const uint64_t n = c.stacks;
  if (o.handed_out != n || o.unread != 0 || o.stacks < n) return false;
  if (ReadMemStats().orders[c.order].inuse != n * o.stack_size) return false;
  for (size_t d = 0; d <= pages; ++d) {
    uint64_t want = 0;
    if (d == 0) want = o.stacks - (c.depth == 0 ? 0 : n);
    if (d == c.depth && d != 0) want = n;
    if (o.depth[d] != want) return false;
  }
  return o.near_overflow == (c.depth == pages ? n : 0);
}

struct Row {
  std::string name;
  double ms = 0;
  double cpu_ms = 0;
  double syscalls = 0;
  double chunks = 0;
  const char* exact = "-";
};
std::vector<Row> rows;

void Census(benchmark::State& state, Case c, std::string name) {
  if (const char* error = Hold(c)) {
    state.SkipWithError(error);
    return;
  }
  StackUsage u;
  for (auto _ : state) {
    u = ReadStackUsage();
    benchmark::DoNotOptimize(u);
  }
  const bool exact = Exact(u, c);
  state.counters["syscalls"] = static_cast<double>(u.system_calls);
  state.counters["chunks"] = static_cast<double>(u.chunks);
  state.counters["exact"] = exact ? 1 : 0;
  rows.push_back(Row{std::move(name), 0, 0, static_cast<double>(u.system_calls),
                     static_cast<double>(u.chunks), exact ? "yes" : "NO"});
  if (!exact) state.SkipWithError("the census was not exact");
}

// The naive census: one mincore() per stack, for its lowest resident page.
void PerStack(benchmark::State& state, Case c, std::string name) {
  if (const char* error = Hold(c)) {
    state.SkipWithError(error);
    return;
  }
  const size_t size = OrderStackSize(c.order);
  const size_t pages = size / kPageSize;
  std::vector<unsigned char> vec(pages);
  uint64_t at_depth = 0;
  for (auto _ : state) {
    at_depth = 0;
    for (void* p : held.stacks) {
      if (mincore(p, size, vec.data()) != 0) {
        state.SkipWithError("mincore failed");
        return;
      }
      size_t lowest = 0;
      while (lowest < pages && (vec[lowest] & 1) == 0) ++lowest;
      if (pages - lowest == c.depth) ++at_depth;
    }
  }
  const bool exact = at_depth == c.stacks;
  state.counters["syscalls"] = static_cast<double>(c.stacks);
  state.counters["exact"] = exact ? 1 : 0;
  rows.push_back(Row{std::move(name), 0, 0, static_cast<double>(c.stacks), 0,
                     exact ? "yes" : "NO"});
  if (!exact) state.SkipWithError("the per-stack census was not exact");
}

class TableReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      for (Row& r : rows) {
        // The run's name goes on with "/iterations:N/real_time".
        if (run.benchmark_name().rfind(r.name + "/", 0) == 0 && r.ms == 0 &&
            !run.error_occurred) {
          r.ms = run.GetAdjustedRealTime();  // The unit is ms.
          r.cpu_ms = run.GetAdjustedCPUTime();
        }
      }
    }
  }
};

void Register(const char* what,
              void (*fn)(benchmark::State&, Case, std::string), Case c,
              int iterations) {
  const std::string name = std::string(what) + "/" +
                           std::to_string(OrderStackSize(c.order) >> 10) +
                           "KiB/stacks:" + std::to_string(c.stacks) +
                           "/depth:" + std::to_string(c.depth);
  benchmark::RegisterBenchmark(name.c_str(), fn, c, name)
      ->Iterations(iterations)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

}  // namespace
}  // namespace baseline
}  // namespace stackalloc

int main(int argc, char** argv) {
  using namespace stackalloc::baseline;  // NOLINT(build/namespaces)
  using stackalloc::kNumStackOrders;
  const int k1m = kNumStackOrders - 1;
  // 4 KiB: untouched, and touched to the page next to the guard (its one
  // page: near_overflow).
  for (size_t depth : {0, 1}) {
    Register("census", &Census, Case{0, 1000000, depth}, 20);
    Register("per_stack", &PerStack, Case{0, 1000000, depth}, 3);
  }
  // 1 MiB: untouched, one page, a quarter, and one page short of the guard
  // (10 GiB touched).
  for (size_t depth : {0, 1, 64, 255}) {
    Register("census", &Census, Case{k1m, 10000, depth}, 20);
    Register("per_stack", &PerStack, Case{k1m, 10000, depth}, 5);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  TableReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  Release();
  printf("\n%-42s %9s %9s %9s %8s %6s\n", "census of live stacks", "wall ms",
         "cpu ms", "syscalls", "chunks", "exact");
  for (const Row& r : rows) {
    printf("%-42s %9.2f %9.2f %9.0f %8.0f %6s\n", r.name.c_str(), r.ms,
           r.cpu_ms, r.syscalls, r.chunks, r.exact);
  }
  printf(
      "census: ReadStackUsage(), the whole process; per_stack: one mincore() "
      "per stack, depths only (no slot states, no other stacks)\n");
  return 0;
}
