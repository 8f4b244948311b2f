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
// A benchmark whose iteration does k operations says so with the user
// counter kOpsPerIteration = k (flag kAvgThreads); its time per iteration is
// divided by k. With --benchmark_repetitions, a cell is the median of the
// repetitions.
//
// Tables from several processes (say, one binary per malloc replacement) are
// merged with WriteCells() in each and ReadCells() in one; RunComparison()
// does the writing when given --comparison_cells_out=<path>.
//
// A benchmark that prints a table of its own reads the parsed runs back with
// Repetitions(); one whose figures are user counters (requests per second,
// resident memory) asks for a table of each with AddCounterTable(); one whose
// threads are not Google Benchmark's (the Ms of a fiber runtime, say) names the
// argument that counts them with set_threads_arg(). A group whose columns are
// not threads at all (stack sizes, say) names its argument and column heading
// with SetColumns().
//
// Not thread-safe (Google Benchmark reports from one thread).

#ifndef TESTING_PERF_COMPARISON_REPORTER_H_
#define TESTING_PERF_COMPARISON_REPORTER_H_

#include <istream>
#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "benchmark/benchmark.h"

namespace stackalloc {
namespace baseline {

// The user counter through which a benchmark reports operations per
// iteration.
inline constexpr char kOpsPerIteration[] = "ops_per_iteration";

class ComparisonReporter : public benchmark::ConsoleReporter {
 public:
  // `reference` names the contender the ratios are taken against.
  explicit ComparisonReporter(std::string reference)
      : reference_(std::move(reference)) {}

  void ReportRuns(const std::vector<Run>& runs) override;

  // One reported run of a contender at a thread count.
  struct Repetition {
    double ns_per_op;
    // The run's user counters (carried by WriteCells/ReadCells).
    std::map<std::string, double> counters;
  };

  // A line printed under the group's table heading, e.g. what an op is.
  void SetCaption(const std::string& group, std::string caption);

  // Prints one row per contender (ns/op and ratio in each thread count's
  // column) instead of one row per thread count; narrower when there are
  // many contenders.
  void set_row_per_contender(bool on) { row_per_contender_ = on; }

  // Takes a run's thread count from its argument `arg` (the run
  // "StackGrowth/old/procs:4" counts as 4 threads with "procs") instead of
  // Google Benchmark's threads; a run without that argument keeps its own.
  void set_threads_arg(std::string arg) { threads_arg_ = std::move(arg); }

  // The columns of `group`: taken from each run's argument `arg` (the run
  // "context/ours/kib:16" is column 16 with arg "kib") instead of its thread
  // count, and headed `heading` instead of "threads" (carried by
  // WriteCells/ReadCells). Takes precedence over set_threads_arg().
  void SetColumns(const std::string& group, std::string arg,
                  std::string heading);

  // After the group's ns/op table, one of its user counter `counter`: each
  // cell the median of the repetitions that have it ("-" if none does), and
  // every other contender's ratio to the reference, under "<group>:
  // <title>, and ratio to <reference>" (carried by WriteCells/ReadCells).
  // Tables print in the order asked.
  void AddCounterTable(const std::string& group, std::string counter,
                       std::string title);

  // A line printed after the tables (carried by WriteCells/ReadCells);
  // a repeated note is printed once.
  void AddNote(std::string note);

  // Prints one table per group, in the order groups were first reported.
  void PrintTables(std::ostream& out) const;

  // ns/op of one contender at one thread count, or a negative value if it
  // did not run.
  double NsPerOp(const std::string& group, const std::string& contender,
                 int threads) const;

  // Every repetition of one contender at one thread count, in the order
  // reported; empty if it did not run.
  std::vector<Repetition> Repetitions(const std::string& group,
                                      const std::string& contender,
                                      int threads) const;

  // Writes every cell (and note) in a line format that ReadCells() adds to
  // another reporter, keeping the order of first report.
  void WriteCells(std::ostream& out) const;
  // Returns false, having added what it could, on a malformed line.
  bool ReadCells(std::istream& in);

 private:
  struct Group {
    std::vector<std::string> contenders;  // In order of first report.
    // threads -> contender -> each repetition.
    std::map<int, std::map<std::string, std::vector<Repetition>>> runs;
  };
  struct CounterTable {
    std::string counter;
    std::string title;
  };
  struct Columns {
    std::string arg;      // Empty: the thread count (or threads_arg_).
    std::string heading;  // Empty: "threads".
  };
  int ColumnOf(const std::string& group, const Run& run) const;
  const std::string& Heading(const std::string& group) const;
  void AddCell(const std::string& group, const std::string& contender,
               int threads, Repetition repetition);
  // Print the group's ns/op (counter "") or one of its counters.
  void PrintRowPerThreadCount(const std::string& name, const Group& g,
                              const std::string& counter,
                              std::ostream& out) const;
  void PrintRowPerContender(const std::string& name, const Group& g,
                            const std::string& counter,
                            std::ostream& out) const;

  std::string reference_;
  bool row_per_contender_ = false;
  std::string threads_arg_;
  std::vector<std::string> group_order_;
  std::map<std::string, Group> groups_;
  std::map<std::string, std::string> captions_;
  std::map<std::string, Columns> columns_;
  std::map<std::string, std::vector<CounterTable>> counter_tables_;
  std::vector<std::string> notes_;
};

// Removes every "<prefix><value>" (prefix "--my_flag=", say) from argv, so
// that Google Benchmark does not reject it, and returns the last value, or
// "" if there was none.
std::string TakeFlag(int& argc, char** argv, const char* prefix);

// Runs every registered benchmark with the flags in argv (Google Benchmark's
// main() without the printing), reporting to `reporter`. Returns false,
// having run nothing, on a flag Google Benchmark does not know.
bool RunBenchmarks(int& argc, char** argv, ComparisonReporter& reporter);

// Runs every registered benchmark with the flags in argv, then prints the
// tables. Returns the process exit code. A main() for comparison binaries.
//
// --comparison_cells_out=<path> (taken out of argv before Google Benchmark
// sees it) writes the cells to <path> for a driver to merge, instead of
// printing the tables.
int RunComparison(int argc, char** argv, ComparisonReporter& reporter);
int RunComparison(int argc, char** argv, const std::string& reference);

}  // namespace baseline
}  // namespace stackalloc

#endif  // TESTING_PERF_COMPARISON_REPORTER_H_
