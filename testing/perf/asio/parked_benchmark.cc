// Many parked sessions: Boost.Asio coroutines parked on timers, as a
// server's sessions wait for their clients, on ours (a guard page below
// every stack), Boost's fixedsize_stack and protected_fixedsize_stack, at
// 1,000 to 200,000 sessions; then woken in waves. One table per figure,
// each peer's ratio to ours:
//   creation (ns per session: spawned and run to its wait), resident
//   memory and mappings with every session parked, wake-up (ns per session
//   woken, p50 and p99 latency from its wave's start).
//
//   bazel run -c opt //testing/perf/asio:parked_benchmark [-- flags]
//
// Flags: --sessions=1000,10000,30000,100000,200000, --stacks=ours,fixedsize,
// protected, --waves=10, --stack_kib=128 (Asio's default), and the drivers'
// (testing/perf/benchmark_processes.h): --benchmark_repetitions=N rounds
// (default 3), each cell the median; --benchmark_out=FILE merges the
// processes' Google Benchmark JSON, for charts.
//
// Each (allocator, count) runs in a process of its own (parked_process.cc):
// every run starts from an empty address space, and protected_fixedsize_stack
// meets vm.max_map_count near 32,700 sessions, which the notes under the
// tables report (where it stopped, and why).

#include <string>
#include <vector>

#include "testing/perf/benchmark_processes.h"
#include "testing/perf/comparison_reporter.h"

namespace stackalloc {
namespace baseline {
namespace {

int Main(int argc, char** argv) {
  const auto runfiles = OpenRunfiles("parked_benchmark", argv[0]);
  if (runfiles == nullptr) return 1;
  std::string sessions = TakeFlag(argc, argv, "--sessions=");
  std::string stacks = TakeFlag(argc, argv, "--stacks=");
  const std::string waves = TakeFlag(argc, argv, "--waves=");
  const std::string kib = TakeFlag(argc, argv, "--stack_kib=");
  if (sessions.empty()) sessions = "1000,10000,30000,100000,200000";
  if (stacks.empty()) stacks = "ours,fixedsize,protected";
  DriverFlags flags;
  if (!ReadDriverFlags("parked_benchmark", argc, argv, &flags)) return 1;
  if (!waves.empty()) flags.child_args.push_back("--waves=" + waves);
  if (!kib.empty()) flags.child_args.push_back("--stack_kib=" + kib);
  const std::string path =
      runfiles->Rlocation("stackalloc/testing/perf/asio/parked_process");

  ComparisonReporter reporter("ours");
  reporter.set_row_per_contender(true);
  reporter.SetColumns("parked", "sessions", "sessions");
  reporter.SetCaption("parked",
                      "op = one session spawned and run to its wait on a "
                      "timer (creation), one thread");
  reporter.AddCounterTable("parked", "rss_mib",
                           "RSS with every session parked (MiB)");
  reporter.AddCounterTable("parked", "maps",
                           "mappings with every session parked");
  reporter.AddCounterTable("parked", "wake_ns",
                           "wake-up: ns per session woken and ended (a "
                           "wave's time / its sessions; median wave)");
  reporter.AddCounterTable("parked", "wake_p50_ms",
                           "wake-up latency p50 (ms from its wave's start)");
  reporter.AddCounterTable("parked", "wake_p99_ms",
                           "wake-up latency p99 (ms from its wave's start)");
  reporter.AddNote(
      "ours: a guard page below every stack; fixedsize: malloc, no guard; "
      "protected: mmap + mprotect (a guard) + munmap per stack; " +
      std::string(kib.empty() ? "128" : kib) + " KiB stacks, " +
      (waves.empty() ? "10" : waves) + " waves; " +
      std::to_string(flags.rounds) + " rounds, each cell the median");
  JsonMerger json;
  bool ok = true;
  for (int round = 1; round <= flags.rounds; ++round) {
    for (const std::string& n : Split(sessions)) {
      const std::vector<std::string> order = Split(stacks);
      for (size_t k = 0; k < order.size(); ++k) {
        // Each round starts with the next allocator, as server_benchmark.
        const std::string& stack = order[(k + round - 1) % order.size()];
        const std::string title = stack + ", " + n + " sessions, round " +
                                  std::to_string(round) + " of " +
                                  std::to_string(flags.rounds);
        // A run that stops short of its sessions (protected at the
        // mappings' wall) is no failure: its cell is empty, a note says
        // where and why. A process that dies is one.
        ok = RunChild(title, path, {"--stack=" + stack, "--sessions=" + n},
                      flags, reporter, &json) &&
             ok;
      }
    }
  }
  return FinishDriver(flags, reporter, json, ok);
}

}  // namespace
}  // namespace baseline
}  // namespace stackalloc

int main(int argc, char** argv) {
  return stackalloc::baseline::Main(argc, argv);
}
