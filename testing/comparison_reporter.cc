#include "testing/comparison_reporter.h"

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace stackalloc {
namespace baseline {

void ComparisonReporter::ReportRuns(const std::vector<Run>& runs) {
  ConsoleReporter::ReportRuns(runs);
  for (const Run& run : runs) {
    if (run.error_occurred || run.run_type != Run::RT_Iteration) continue;
    const std::string& name = run.run_name.function_name;
    size_t slash = name.find('/');
    if (slash == std::string::npos) continue;
    std::string group = name.substr(0, slash);
    std::string contender = name.substr(slash + 1);
    auto [it, inserted] = groups_.try_emplace(group);
    if (inserted) group_order_.push_back(group);
    Group& g = it->second;
    if (std::find(g.contenders.begin(), g.contenders.end(), contender) ==
        g.contenders.end()) {
      g.contenders.push_back(contender);
    }
    double ns = run.GetAdjustedRealTime() *
                benchmark::GetTimeUnitMultiplier(benchmark::kNanosecond) /
                benchmark::GetTimeUnitMultiplier(run.time_unit);
    // Google Benchmark already divides the wall time of a threaded run by
    // the iterations of all its threads together.
    g.ns_per_op[static_cast<int>(run.threads)][contender] = ns;
  }
}

double ComparisonReporter::NsPerOp(const std::string& group,
                                   const std::string& contender,
                                   int threads) const {
  auto g = groups_.find(group);
  if (g == groups_.end()) return -1;
  auto row = g->second.ns_per_op.find(threads);
  if (row == g->second.ns_per_op.end()) return -1;
  auto cell = row->second.find(contender);
  return cell == row->second.end() ? -1 : cell->second;
}

void ComparisonReporter::PrintTables(std::ostream& out) const {
  char buf[64];
  for (const std::string& name : group_order_) {
    const Group& g = groups_.at(name);
    out << "\n" << name << ": ns/op (wall time / operations of all threads)";
    out << ", and ratio to " << reference_ << "\n";
    out << "threads";
    for (const auto& c : g.contenders) {
      snprintf(buf, sizeof(buf), " %12s", c.c_str());
      out << buf;
    }
    for (const auto& c : g.contenders) {
      if (c == reference_) continue;
      std::string col = c + "/" + reference_;
      snprintf(buf, sizeof(buf), " %14s", col.c_str());
      out << buf;
    }
    out << "\n";
    for (const auto& [threads, cells] : g.ns_per_op) {
      snprintf(buf, sizeof(buf), "%7d", threads);
      out << buf;
      for (const auto& c : g.contenders) {
        auto it = cells.find(c);
        if (it == cells.end()) {
          snprintf(buf, sizeof(buf), " %12s", "-");
        } else {
          snprintf(buf, sizeof(buf), " %12.2f", it->second);
        }
        out << buf;
      }
      auto ref = cells.find(reference_);
      for (const auto& c : g.contenders) {
        if (c == reference_) continue;
        auto it = cells.find(c);
        if (it == cells.end() || ref == cells.end() || ref->second <= 0) {
          snprintf(buf, sizeof(buf), " %14s", "-");
        } else {
          snprintf(buf, sizeof(buf), " %13.2fx", it->second / ref->second);
        }
        out << buf;
      }
      out << "\n";
    }
  }
}

int RunComparison(int argc, char** argv, const std::string& reference) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  ComparisonReporter reporter(reference);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  reporter.PrintTables(std::cout);
  return 0;
}

}  // namespace baseline
}  // namespace stackalloc
