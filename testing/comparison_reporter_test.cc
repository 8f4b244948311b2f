#include "testing/comparison_reporter.h"

#include <sstream>
#include <string>
#include <vector>

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

TEST_F(ComparisonReporterTest, RejectsMalformedCells) {
  std::istringstream bad("cell\tpair\tours\tfour\t1.0\n");
  EXPECT_FALSE(reporter_.ReadCells(bad));
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
