#include "testing/benchmark_processes.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace stackalloc {
namespace baseline {
namespace {

// Two documents as Google Benchmark's JSONReporter writes them.
constexpr char kFirst[] = R"({
  "context": {
    "executable": "first"
  },
  "benchmarks": [
    {
      "name": "pair/ours",
      "real_time": 1.5
    },
    {
      "name": "pair/old",
      "real_time": 9.0
    }
  ]
}
)";
constexpr char kSecond[] = R"({
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
)";

TEST(JsonMergerTest, KeepsTheFirstContextAndEveryRunInOrder) {
  JsonMerger merger;
  EXPECT_EQ(merger.Merged(), "");
  ASSERT_TRUE(merger.Add(kFirst));
  ASSERT_TRUE(merger.Add(kSecond));
  // A child that ran nothing adds nothing, and breaks nothing.
  ASSERT_TRUE(
      merger.Add("{\n  \"context\": {},\n  \"benchmarks\": [\n  ]\n}\n"));
  EXPECT_EQ(merger.Merged(), R"({
  "context": {
    "executable": "first"
  },
  "benchmarks": [
    {
      "name": "pair/ours",
      "real_time": 1.5
    },
    {
      "name": "pair/old",
      "real_time": 9.0
    },
    {
      "name": "pair/glibc",
      "real_time": 30.0
    }
  ]
}
)");
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
