#include "testing/perf/comparison_reporter.h"

#include <sstream>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "gtest/gtest.h"

namespace stackalloc {
namespace baseline {
namespace {

using BenchmarkRun = benchmark::BenchmarkReporter::Run;

BenchmarkRun MakeRun(const std::string& name, int threads, double total_ns,
                     int64_t iterations) {
  BenchmarkRun run;
  run.run_name.function_name = name;
  run.run_type = BenchmarkRun::RT_Iteration;
  run.threads = threads;
  run.iterations = iterations;
  run.time_unit = benchmark::kNanosecond;
  run.real_accumulated_time = total_ns * 1e-9;  // Seconds.
  run.cpu_accumulated_time = run.real_accumulated_time;
  return run;
}

class ComparisonReporterTest : public ::testing::Test {
 protected:
  ComparisonReporterTest() {
    reporter_.SetOutputStream(&console_);
    reporter_.SetErrorStream(&console_);
  }
  std::ostringstream console_;
  ComparisonReporter reporter_{"ours"};
};

TEST_F(ComparisonReporterTest, DividesByOpsPerIteration) {
  BenchmarkRun window = MakeRun("window3/ours", 2, 600, 100);
  window.counters[kOpsPerIteration] =
      benchmark::Counter(3, benchmark::Counter::kAvgThreads);
  reporter_.ReportRuns({MakeRun("pair/ours", 2, 600, 100), window});
  EXPECT_DOUBLE_EQ(reporter_.NsPerOp("pair", "ours", 2), 6);
  EXPECT_DOUBLE_EQ(reporter_.NsPerOp("window3", "ours", 2), 2);
  EXPECT_LT(reporter_.NsPerOp("pair", "ours", 1), 0);
  EXPECT_LT(reporter_.NsPerOp("pair", "theirs", 2), 0);
}

TEST_F(ComparisonReporterTest, TakesTheMedianOfRepetitions) {
  reporter_.ReportRuns({MakeRun("pair/ours", 1, 100, 100),
                        MakeRun("pair/ours", 1, 900, 100),
                        MakeRun("pair/ours", 1, 300, 100)});
  EXPECT_DOUBLE_EQ(reporter_.NsPerOp("pair", "ours", 1), 3);
}

TEST_F(ComparisonReporterTest, SkipsFailedRuns) {
  BenchmarkRun failed = MakeRun("pair/theirs", 1, 100, 100);
  failed.error_occurred = true;
  reporter_.ReportRuns({failed});
  EXPECT_LT(reporter_.NsPerOp("pair", "theirs", 1), 0);
}

TEST_F(ComparisonReporterTest, MergesCellsOfSeveralReporters) {
  reporter_.SetCaption("pair", "op = one pair");
  reporter_.AddNote("first: malloc is libc.so.6");
  reporter_.ReportRuns({MakeRun("pair/ours", 1, 200, 100),
                        MakeRun("pair/ours", 1, 400, 100),
                        MakeRun("pair/ours", 4, 100, 100)});
  ComparisonReporter other("ours");
  other.SetOutputStream(&console_);
  other.ReportRuns({MakeRun("pair/theirs", 1, 1000, 100)});

  other.AddNote("first: malloc is libc.so.6");  // Printed once.
  ComparisonReporter merged("ours");
  std::stringstream cells;
  reporter_.WriteCells(cells);
  other.WriteCells(cells);
  ASSERT_TRUE(merged.ReadCells(cells));
  EXPECT_DOUBLE_EQ(merged.NsPerOp("pair", "ours", 1), 3);
  EXPECT_DOUBLE_EQ(merged.NsPerOp("pair", "ours", 4), 1);
  EXPECT_DOUBLE_EQ(merged.NsPerOp("pair", "theirs", 1), 10);

  merged.set_row_per_contender(true);
  std::ostringstream table;
  merged.PrintTables(table);
  EXPECT_EQ(table.str(),
            "\npair: ns/op (wall time / operations of all threads), and ratio "
            "to ours\n"
            "  op = one pair\n"
            "threads               1               4\n"
            "ours               3.00            1.00\n"
            "theirs    10.00 (3.33x)               -\n"
            "\n"
            "first: malloc is libc.so.6\n");
}

TEST_F(ComparisonReporterTest, CountsThreadsByAnArgumentWhenTold) {
  reporter_.set_threads_arg("procs");
  BenchmarkRun old = MakeRun("StackGrowth/old", 1, 800, 100);
  old.run_name.args = "procs:4";
  old.counters["segs/op"] = benchmark::Counter(3);
  BenchmarkRun faster = old;
  faster.real_accumulated_time /= 2;
  faster.counters["segs/op"] = benchmark::Counter(2.5);
  BenchmarkRun other = MakeRun("StackGrowth/new", 1, 100, 100);
  other.run_name.args = "depth:10/procs:16";
  reporter_.ReportRuns({old, faster, other, MakeRun("pair/ours", 2, 600, 100)});

  EXPECT_LT(reporter_.NsPerOp("StackGrowth", "old", 1), 0);
  EXPECT_DOUBLE_EQ(reporter_.NsPerOp("StackGrowth", "new", 16), 1);
  EXPECT_DOUBLE_EQ(reporter_.NsPerOp("pair", "ours", 2), 6);  // No procs.
  std::vector<ComparisonReporter::Repetition> runs =
      reporter_.Repetitions("StackGrowth", "old", 4);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_DOUBLE_EQ(runs[0].ns_per_op, 8);
  EXPECT_DOUBLE_EQ(runs[0].counters.at("segs/op"), 3);
  EXPECT_DOUBLE_EQ(runs[1].ns_per_op, 4);
  EXPECT_DOUBLE_EQ(runs[1].counters.at("segs/op"), 2.5);
  EXPECT_TRUE(reporter_.Repetitions("StackGrowth", "old", 16).empty());
  EXPECT_TRUE(reporter_.Repetitions("StackGrowth", "frames", 4).empty());
}

TEST_F(ComparisonReporterTest, TakesAGroupsColumnsFromAnArgumentWithAHeading) {
  reporter_.SetColumns("context", "kib", "stack KiB");
  reporter_.set_row_per_contender(true);
  BenchmarkRun ours4 = MakeRun("context/ours", 1, 400, 100);
  ours4.run_name.args = "kib:4";
  BenchmarkRun ours1024 = MakeRun("context/ours", 1, 800, 100);
  ours1024.run_name.args = "kib:1024";
  BenchmarkRun theirs4 = MakeRun("context/theirs", 1, 1200, 100);
  theirs4.run_name.args = "kib:4";
  // Another group keeps its thread counts, and the heading "threads".
  BenchmarkRun pair = MakeRun("pair/ours", 2, 600, 100);
  pair.run_name.args = "kib:64";
  reporter_.ReportRuns({ours4, ours1024, theirs4, pair});

  EXPECT_DOUBLE_EQ(reporter_.NsPerOp("context", "ours", 4), 4);
  EXPECT_DOUBLE_EQ(reporter_.NsPerOp("context", "ours", 1024), 8);
  EXPECT_DOUBLE_EQ(reporter_.NsPerOp("context", "theirs", 4), 12);
  EXPECT_LT(reporter_.NsPerOp("context", "ours", 1), 0);
  EXPECT_DOUBLE_EQ(reporter_.NsPerOp("pair", "ours", 2), 6);

  // The heading travels with the cells to the process that prints.
  std::stringstream cells;
  reporter_.WriteCells(cells);
  ComparisonReporter merged("ours");
  merged.set_row_per_contender(true);
  ASSERT_TRUE(merged.ReadCells(cells));
  std::ostringstream table;
  merged.PrintTables(table);
  EXPECT_EQ(table.str(),
            "\ncontext: ns/op (wall time / operations of all threads), and "
            "ratio to ours\n"
            "stack KiB               4            1024\n"
            "ours                 4.00            8.00\n"
            "theirs      12.00 (3.00x)               -\n"
            "\npair: ns/op (wall time / operations of all threads), and ratio "
            "to ours\n"
            "threads               2\n"
            "ours               6.00\n");
}

TEST_F(ComparisonReporterTest, WidensCellsThatWouldTouch) {
  reporter_.set_row_per_contender(true);
  reporter_.ReportRuns({MakeRun("context/ours", 1, 4000, 100),
                        MakeRun("context/protected", 1, 1300000, 100)});
  std::ostringstream table;
  reporter_.PrintTables(table);
  EXPECT_EQ(table.str(),
            "\ncontext: ns/op (wall time / operations of all threads), and "
            "ratio to ours\n"
            "threads                     1\n"
            "ours                    40.00\n"
            "protected  13000.00 (325.00x)\n");
}

TEST(TakeFlagTest, RemovesEveryOccurrenceAndReturnsTheLast) {
  char arg0[] = "benchmark", a[] = "--go_output=a", b[] = "--benchmark_x=1",
       c[] = "--go_output=c";
  char* argv[] = {arg0, a, b, c, nullptr};
  int argc = 4;
  EXPECT_EQ(TakeFlag(argc, argv, "--go_output="), "c");
  ASSERT_EQ(argc, 2);
  EXPECT_STREQ(argv[1], "--benchmark_x=1");
  EXPECT_EQ(TakeFlag(argc, argv, "--go_output="), "");
  EXPECT_EQ(argc, 2);
}

// A counter's table: the median of the repetitions that report it, ratios to
// ours, "-" where a cell lacks it; counters and tables survive the cells.
TEST_F(ComparisonReporterTest, PrintsATableOfACounter) {
  reporter_.SetColumns("http", "connections", "connections");
  reporter_.AddCounterTable("http", "rss_mib", "server RSS (MiB)");
  reporter_.set_row_per_contender(true);
  std::vector<BenchmarkRun> runs;
  for (double rss : {10.0, 30.0, 20.0}) {
    BenchmarkRun ours = MakeRun("http/ours", 1, 100, 100);
    ours.run_name.args = "connections:100";
    ours.counters["rss_mib"] = benchmark::Counter(rss);
    runs.push_back(ours);
  }
  BenchmarkRun theirs = MakeRun("http/theirs", 1, 300, 100);
  theirs.run_name.args = "connections:100";
  theirs.counters["rss_mib"] = benchmark::Counter(50);
  BenchmarkRun without = MakeRun("http/theirs", 1, 300, 100);
  without.run_name.args = "connections:1000";
  runs.push_back(theirs);
  runs.push_back(without);
  reporter_.ReportRuns(runs);

  std::stringstream cells;
  reporter_.WriteCells(cells);
  ComparisonReporter merged("ours");
  merged.set_row_per_contender(true);
  ASSERT_TRUE(merged.ReadCells(cells));
  ASSERT_EQ(merged.Repetitions("http", "ours", 100).size(), 3u);
  EXPECT_DOUBLE_EQ(
      merged.Repetitions("http", "ours", 100)[1].counters.at("rss_mib"), 30);
  std::ostringstream table;
  merged.PrintTables(table);
  EXPECT_EQ(table.str(),
            "\nhttp: ns/op (wall time / operations of all threads), and "
            "ratio to ours\n"
            "connections             100            1000\n"
            "ours                   1.00               -\n"
            "theirs         3.00 (3.00x)            3.00\n"
            "\nhttp: server RSS (MiB), and ratio to ours\n"
            "connections             100            1000\n"
            "ours                  20.00               -\n"
            "theirs        50.00 (2.50x)               -\n");
}

TEST_F(ComparisonReporterTest, RejectsMalformedCells) {
  std::istringstream bad("cell\tpair\tours\tfour\t1.0\n");
  EXPECT_FALSE(reporter_.ReadCells(bad));
  std::istringstream bad_counter("cell\tpair\tours\t1\t1.0\trss=\n");
  EXPECT_FALSE(reporter_.ReadCells(bad_counter));
  std::istringstream unknown("row\tpair\n");
  EXPECT_FALSE(reporter_.ReadCells(unknown));
}

TEST_F(ComparisonReporterTest, KeepsTheRowPerThreadCountLayout) {
  reporter_.ReportRuns(
      {MakeRun("pair/ours", 1, 200, 100), MakeRun("pair/old", 1, 1000, 100)});
  std::ostringstream table;
  reporter_.PrintTables(table);
  EXPECT_EQ(table.str(),
            "\npair: ns/op (wall time / operations of all threads), and ratio "
            "to ours\n"
            "threads         ours          old       old/ours\n"
            "      1         2.00        10.00          5.00x\n");
}

}  // namespace
}  // namespace baseline
}  // namespace stackalloc
