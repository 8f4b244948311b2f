// Fiber stacks from stackalloc beside Boost.Context's own allocators, in one
// table of ns per fiber, each peer's ratio to ours:
//
//   context        create, resume to its end and destroy a
//                  boost::context::fiber, at 4, 16, 64, 128 and 1024 KiB:
//                  ours (guards on), ours_noguards, fixedsize, pooled,
//                  protected;
//   work_stealing  Boost.Fiber spawn + join on work_stealing at 1, 2 and 4
//                  threads, 128 KiB: ours, fixedsize, protected.
//
//   bazel run -c opt //testing/perf:fiber_benchmark [-- --benchmark_* flags]
//
// Each line of that list needs processes of its own (testing/perf/
// fiber_process.cc says why), so this driver runs fiber_process five times a
// round: context with guards, context without (SetStackGuards(false) applies
// to the chunks a process makes from then on), and work_stealing at each
// thread count. --benchmark_repetitions=N (default 3) rounds, each cell the
// median of its rounds; --benchmark_out=FILE merges the processes' Google
// Benchmark JSON (testing/perf/benchmark_processes.h).

#include <string>
#include <vector>

#include "testing/perf/benchmark_processes.h"
#include "testing/perf/comparison_reporter.h"

namespace stackalloc {
namespace baseline {
namespace {

struct Process {
  const char* title;
  std::vector<std::string> args;
};

int Main(int argc, char** argv) {
  const auto runfiles = OpenRunfiles("fiber_benchmark", argv[0]);
  DriverFlags flags;
  if (runfiles == nullptr ||
      !ReadDriverFlags("fiber_benchmark", argc, argv, &flags)) {
    return 1;
  }
  const std::vector<Process> processes = {
      {"context, guards on", {"--fiber_mode=context"}},
      {"context, guards off", {"--fiber_mode=context", "--stack_guards=off"}},
      {"work_stealing, 1 thread",
       {"--fiber_mode=work_stealing", "--fiber_threads=1"}},
      {"work_stealing, 2 threads",
       {"--fiber_mode=work_stealing", "--fiber_threads=2"}},
      {"work_stealing, 4 threads",
       {"--fiber_mode=work_stealing", "--fiber_threads=4"}},
  };
  const std::string path =
      runfiles->Rlocation("stackalloc/testing/perf/fiber_process");

  ComparisonReporter reporter("ours");
  reporter.set_row_per_contender(true);
  JsonMerger json;
  bool ok = true;
  for (int round = 1; round <= flags.rounds; ++round) {
    for (const Process& p : processes) {
      const std::string title = std::string(p.title) + ", round " +
                                std::to_string(round) + " of " +
                                std::to_string(flags.rounds);
      ok = RunChild(title, path, p.args, flags, reporter, &json) && ok;
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
