// A Google Benchmark reporter that also prints a side-by-side table.
//
// Benchmarks named "<group>/<contender>" (for example "pair/ours",
// "pair/old") are collected by group, contender and thread count. After the
// usual console output, PrintTables() prints for each group one row per
// thread count: every contender's ns/op, then every other contender's ratio
// to the reference contender. ns/op is wall time divided by the operations
// of all threads together (the seed's b.N semantics), which is what Google
// Benchmark reports for a threaded run with UseRealTime().
//
// Not thread-safe (Google Benchmark reports from one thread).

#ifndef TESTING_COMPARISON_REPORTER_H_
#define TESTING_COMPARISON_REPORTER_H_

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"

namespace stackalloc {
namespace baseline {

class ComparisonReporter : public benchmark::ConsoleReporter {
 public:
  // `reference` names the contender the ratios are taken against.
  explicit ComparisonReporter(std::string reference)
      : reference_(std::move(reference)) {}

  void ReportRuns(const std::vector<Run>& runs) override;

  // Prints one table per group, in the order groups were first reported.
  void PrintTables(std::ostream& out) const;

  // ns/op of one contender at one thread count, or a negative value if it
  // did not run.
  double NsPerOp(const std::string& group, const std::string& contender,
                 int threads) const;

 private:
  struct Group {
    std::vector<std::string> contenders;  // In order of first report.
    std::map<int, std::map<std::string, double>> ns_per_op;  // threads -> ..
  };
  std::string reference_;
  std::vector<std::string> group_order_;
  std::map<std::string, Group> groups_;
};

// Runs every registered benchmark with the flags in argv, then prints the
// tables. Returns the process exit code. A main() for comparison binaries.
int RunComparison(int argc, char** argv, const std::string& reference);

}  // namespace baseline
}  // namespace stackalloc

#endif  // TESTING_COMPARISON_REPORTER_H_
