#include "testing/perf/benchmark_processes.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace stackalloc {
namespace baseline {
namespace {

// A run, and a document of runs, as Google Benchmark's JSONReporter writes
// them.
std::string RunJson(const std::string& name, const std::string& real_time) {
  return "    {\n      \"name\": \"" + name +
         "\",\n      \"real_time\": " + real_time + "\n    }";
}

std::string Document(const std::string& executable,
                     const std::vector<std::string>& runs) {
  std::string d = "{\n  \"context\": {\n    \"executable\": \"" + executable +
                  "\"\n  },\n  \"benchmarks\": [\n";
  for (size_t i = 0; i < runs.size(); ++i) {
    d += runs[i] + (i + 1 < runs.size() ? ",\n" : "\n");
  }
  return d + "  ]\n}\n";
}

TEST(SplitTest, KeepsTheNonEmptyItemsInOrder) {
  EXPECT_EQ(Split("ours,fixedsize,,protected,"),
            (std::vector<std::string>{"ours", "fixedsize", "protected"}));
  EXPECT_TRUE(Split("").empty());
}

TEST(JsonMergerTest, KeepsTheFirstContextAndEveryRunInOrder) {
  const std::string ours = RunJson("pair/ours", "1.5");
  const std::string old = RunJson("pair/old", "9.0");
  const std::string glibc = RunJson("pair/glibc", "30.0");
  // What the reporter writes, literally, so that Document cannot drift.
  ASSERT_EQ(Document("second", {glibc}), R"({
  "context": {
    "executable": "second"
  },
  "benchmarks": [
    {
      "name": "pair/glibc",
      "real_time": 30.0
    }
  ]
}
)");
  JsonMerger merger;
  EXPECT_EQ(merger.Merged(), "");
  ASSERT_TRUE(merger.Add(Document("first", {ours, old})));
  ASSERT_TRUE(merger.Add(Document("second", {glibc})));
  // A child that ran nothing adds nothing, and breaks nothing.
  ASSERT_TRUE(
      merger.Add("{\n  \"context\": {},\n  \"benchmarks\": [\n  ]\n}\n"));
  EXPECT_EQ(merger.Merged(), Document("first", {ours, old, glibc}));
}

TEST(JsonMergerTest, RefusesWhatIsNotBenchmarkJson) {
  JsonMerger merger;
  EXPECT_FALSE(merger.Add(""));
  EXPECT_FALSE(merger.Add("cell\tpair\tours\t1\t2.0\n"));
  EXPECT_FALSE(merger.Add("{\"benchmarks\" \"x\"}"));
  EXPECT_EQ(merger.Merged(), "");
}

std::vector<std::string> Parse(std::vector<std::string> args, DriverFlags* f,
                               std::string* error) {
  std::vector<char*> argv = {const_cast<char*>("driver")};
  for (std::string& a : args) argv.push_back(a.data());
  EXPECT_TRUE(
      ParseDriverFlags(static_cast<int>(argv.size()), argv.data(), f, error))
      << *error;
  return f->child_args;
}

TEST(DriverFlagsTest, TakesRoundsAndJsonAndPassesTheRestOn) {
  DriverFlags f;
  std::string error;
  EXPECT_EQ(Parse({"--benchmark_repetitions=5", "--benchmark_out=/tmp/x.json",
                   "--benchmark_out_format=json", "--benchmark_filter=pair"},
                  &f, &error),
            (std::vector<std::string>{"--benchmark_filter=pair",
                                      "--benchmark_min_time=0.2"}));
  EXPECT_EQ(f.rounds, 5);
  EXPECT_EQ(f.json_out, "/tmp/x.json");

  DriverFlags g;
  EXPECT_EQ(Parse({"--benchmark_min_time=1"}, &g, &error),
            (std::vector<std::string>{"--benchmark_min_time=1"}));
  EXPECT_EQ(g.rounds, 3);
  EXPECT_EQ(g.json_out, "");
}

TEST(DriverFlagsTest, RefusesNoRoundsAndOtherFormats) {
  for (const char* bad :
       {"--benchmark_repetitions=0", "--benchmark_out_format=csv"}) {
    DriverFlags f;
    std::string error;
    char* argv[] = {const_cast<char*>("driver"), const_cast<char*>(bad)};
    EXPECT_FALSE(ParseDriverFlags(2, argv, &f, &error)) << bad;
    EXPECT_NE(error, "") << bad;
  }
}

}  // namespace
}  // namespace baseline
}  // namespace stackalloc
