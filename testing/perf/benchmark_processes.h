// Drivers that run benchmark binaries as child processes and merge what
// they report into one table (ComparisonReporter cells) and, on request, one
// Google Benchmark JSON file.
//
// Why children: some contenders cannot share a process (each malloc
// replacement is the process's malloc; stackalloc's guard setting applies to
// the chunks a process makes; Boost.Fiber's work_stealing can be set up once
// per process). A driver runs every child once per round, never two at a
// time, and every cell of the table is the median of its rounds, so a change
// in the machine's load is spread over all contenders.
//
// The driver's flags (ParseDriverFlags):
//   --benchmark_repetitions=N  rounds (default 3);
//   --benchmark_out=FILE       the children's Google Benchmark JSON, merged
//                              into FILE (--benchmark_out_format, if given,
//                              must be json): the runs of every child and
//                              round, under the first child's "context";
//   anything else              passed to every child, with
//                              --benchmark_min_time=0.2 unless given.
//
// Not thread-safe; for a driver's main().

#ifndef TESTING_PERF_BENCHMARK_PROCESSES_H_
#define TESTING_PERF_BENCHMARK_PROCESSES_H_

#include <memory>
#include <string>
#include <vector>

#include "testing/perf/comparison_reporter.h"
#include "tools/cpp/runfiles/runfiles.h"

namespace stackalloc {
namespace baseline {

struct DriverFlags {
  int rounds = 3;
  std::string json_out;                 // Empty: no JSON.
  std::vector<std::string> child_args;  // For every child.
};

// The non-empty items of a comma-separated list ("a,,b" is {"a", "b"}), as
// drivers' flags and their binaries' lists give them.
std::vector<std::string> Split(const std::string& s);

// Reads the driver's argv (see the top of this file). Returns false, with
// *error saying why, for a bad value.
bool ParseDriverFlags(int argc, char** argv, DriverFlags* flags,
                      std::string* error);

// What every driver's main() starts with: its runfiles, where its children
// are (Rlocation("stackalloc/<package>/<binary>")), and its flags. Each
// returns null / false after printing "<driver>: <why>" to stderr.
std::unique_ptr<bazel::tools::cpp::runfiles::Runfiles> OpenRunfiles(
    const char* driver, const char* argv0);
bool ReadDriverFlags(const char* driver, int argc, char** argv,
                     DriverFlags* flags);

// Merges Google Benchmark JSON documents (JSONReporter's layout: an object
// with "context", then "benchmarks", an array of run objects): the first
// document's context, then every document's runs in the order added.
class JsonMerger {
 public:
  // Adds one document's runs. Returns false, adding nothing, if it has no
  // "benchmarks" array.
  bool Add(const std::string& document);
  // The merged document, or "" if none was added.
  std::string Merged() const;

 private:
  std::string head_;  // The first document up to its "benchmarks" array.
  std::vector<std::string> runs_;  // Each document's run objects.
};

// Runs `path` with flags.child_args, then `extra_args`, then
// --comparison_cells_out=<temporary file> (and, when flags.json_out is set,
// --benchmark_out=<another>), after printing "==== <title>". Adds its cells
// to `reporter` and its JSON to `json` (if not null). Returns false, with a
// note on the table, if the child failed or wrote nothing readable.
bool RunChild(const std::string& title, const std::string& path,
              const std::vector<std::string>& extra_args,
              const DriverFlags& flags, ComparisonReporter& reporter,
              JsonMerger* json);

// Writes json's merged document to flags.json_out, if that is set. Returns
// false, saying why on stderr, if it could not.
bool WriteJson(const DriverFlags& flags, const JsonMerger& json);

// What every driver's main() ends with: prints reporter's tables to stdout
// and writes the JSON. Returns main's exit code: 0 if `children_ok` (every
// RunChild succeeded) and the JSON, if asked for, was written; else 1.
int FinishDriver(const DriverFlags& flags, const ComparisonReporter& reporter,
                 const JsonMerger& json, bool children_ok);

}  // namespace baseline
}  // namespace stackalloc

#endif  // TESTING_PERF_BENCHMARK_PROCESSES_H_
