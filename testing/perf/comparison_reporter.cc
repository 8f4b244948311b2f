#include "testing/perf/comparison_reporter.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>

namespace stackalloc {
namespace baseline {
namespace {

// The median ns/op of the runs (counter ""), or of their counter `counter`;
// -1 if no run has it.
double Median(const std::vector<ComparisonReporter::Repetition>& runs,
              const std::string& counter = "") {
  std::vector<double> v;
  for (const auto& r : runs) {
    if (counter.empty()) {
      v.push_back(r.ns_per_op);
    } else if (auto it = r.counters.find(counter); it != r.counters.end()) {
      v.push_back(it->second);
    }
  }
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

void ComparisonReporter::ReportRuns(const std::vector<Run>& runs) {
  ConsoleReporter::ReportRuns(runs);
  for (const Run& run : runs) {
    if (run.error_occurred || run.run_type != Run::RT_Iteration) continue;
    const std::string& name = run.run_name.function_name;
    size_t slash = name.find('/');
    if (slash == std::string::npos) continue;
    double ns = run.GetAdjustedRealTime() *
                benchmark::GetTimeUnitMultiplier(benchmark::kNanosecond) /
                benchmark::GetTimeUnitMultiplier(run.time_unit);
    auto ops = run.counters.find(kOpsPerIteration);
    if (ops != run.counters.end() && ops->second.value > 0) {
      ns /= ops->second.value;
    }
    Repetition repetition{ns, {}};
    for (const auto& [counter, value] : run.counters) {
      repetition.counters[counter] = value.value;
    }
    // Google Benchmark already divides the wall time of a threaded run by
    // the iterations of all its threads together.
    const std::string group = name.substr(0, slash);
    AddCell(group, name.substr(slash + 1), ColumnOf(group, run),
            std::move(repetition));
  }
}

int ComparisonReporter::ColumnOf(const std::string& group,
                                 const Run& run) const {
  auto columns = columns_.find(group);
  const std::string& column_arg =
      columns != columns_.end() && !columns->second.arg.empty()
          ? columns->second.arg
          : threads_arg_;
  if (!column_arg.empty()) {
    // Arguments read "name:value/name:value".
    std::istringstream args(run.run_name.args);
    const std::string prefix = column_arg + ":";
    for (std::string arg; std::getline(args, arg, '/');) {
      if (arg.compare(0, prefix.size(), prefix) == 0) {
        return atoi(arg.c_str() + prefix.size());
      }
    }
  }
  return static_cast<int>(run.threads);
}

const std::string& ComparisonReporter::Heading(const std::string& group) const {
  static const std::string* const kThreads = new std::string("threads");
  auto columns = columns_.find(group);
  return columns != columns_.end() && !columns->second.heading.empty()
             ? columns->second.heading
             : *kThreads;
}

void ComparisonReporter::AddCell(const std::string& group,
                                 const std::string& contender, int threads,
                                 Repetition repetition) {
  auto [it, inserted] = groups_.try_emplace(group);
  if (inserted) group_order_.push_back(group);
  Group& g = it->second;
  if (std::find(g.contenders.begin(), g.contenders.end(), contender) ==
      g.contenders.end()) {
    g.contenders.push_back(contender);
  }
  g.runs[threads][contender].push_back(std::move(repetition));
}

void ComparisonReporter::SetCaption(const std::string& group,
                                    std::string caption) {
  captions_[group] = std::move(caption);
}

void ComparisonReporter::SetColumns(const std::string& group, std::string arg,
                                    std::string heading) {
  columns_[group] = Columns{std::move(arg), std::move(heading)};
}

void ComparisonReporter::AddCounterTable(const std::string& group,
                                         std::string counter,
                                         std::string title) {
  std::vector<CounterTable>& tables = counter_tables_[group];
  for (const CounterTable& t : tables) {
    if (t.counter == counter) return;
  }
  tables.push_back({std::move(counter), std::move(title)});
}

void ComparisonReporter::AddNote(std::string note) {
  if (std::find(notes_.begin(), notes_.end(), note) == notes_.end()) {
    notes_.push_back(std::move(note));
  }
}

double ComparisonReporter::NsPerOp(const std::string& group,
                                   const std::string& contender,
                                   int threads) const {
  auto g = groups_.find(group);
  if (g == groups_.end()) return -1;
  auto row = g->second.runs.find(threads);
  if (row == g->second.runs.end()) return -1;
  auto cell = row->second.find(contender);
  return cell == row->second.end() ? -1 : Median(cell->second);
}

std::vector<ComparisonReporter::Repetition> ComparisonReporter::Repetitions(
    const std::string& group, const std::string& contender, int threads) const {
  auto g = groups_.find(group);
  if (g == groups_.end()) return {};
  auto row = g->second.runs.find(threads);
  if (row == g->second.runs.end()) return {};
  auto cell = row->second.find(contender);
  return cell == row->second.end() ? std::vector<Repetition>{} : cell->second;
}

void ComparisonReporter::PrintTables(std::ostream& out) const {
  for (const std::string& name : group_order_) {
    const Group& g = groups_.at(name);
    out << "\n" << name << ": ns/op (wall time / operations of all threads)";
    out << ", and ratio to " << reference_ << "\n";
    auto caption = captions_.find(name);
    if (caption != captions_.end()) out << "  " << caption->second << "\n";
    std::vector<CounterTable> tables = {{"", ""}};
    if (auto it = counter_tables_.find(name); it != counter_tables_.end()) {
      tables.insert(tables.end(), it->second.begin(), it->second.end());
    }
    for (const CounterTable& t : tables) {
      if (!t.counter.empty()) {
        out << "\n"
            << name << ": " << t.title << ", and ratio to " << reference_
            << "\n";
      }
      if (row_per_contender_) {
        PrintRowPerContender(name, g, t.counter, out);
      } else {
        PrintRowPerThreadCount(name, g, t.counter, out);
      }
    }
  }
  if (!notes_.empty()) out << "\n";
  for (const std::string& note : notes_) out << note << "\n";
}

void ComparisonReporter::PrintRowPerThreadCount(const std::string& name,
                                                const Group& g,
                                                const std::string& counter,
                                                std::ostream& out) const {
  char buf[64];
  const std::string& heading = Heading(name);
  const int width = std::max(7, static_cast<int>(heading.size()));
  snprintf(buf, sizeof(buf), "%*s", width, heading.c_str());
  out << buf;
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
  for (const auto& [threads, cells] : g.runs) {
    snprintf(buf, sizeof(buf), "%*d", width, threads);
    out << buf;
    for (const auto& c : g.contenders) {
      auto it = cells.find(c);
      const double v = it == cells.end() ? -1 : Median(it->second, counter);
      if (v < 0) {
        snprintf(buf, sizeof(buf), " %12s", "-");
      } else {
        snprintf(buf, sizeof(buf), " %12.2f", v);
      }
      out << buf;
    }
    auto ref = cells.find(reference_);
    double ref_ns = ref == cells.end() ? 0 : Median(ref->second, counter);
    for (const auto& c : g.contenders) {
      if (c == reference_) continue;
      auto it = cells.find(c);
      const double v = it == cells.end() ? -1 : Median(it->second, counter);
      if (v < 0 || ref_ns <= 0) {
        snprintf(buf, sizeof(buf), " %14s", "-");
      } else {
        snprintf(buf, sizeof(buf), " %13.2fx", v / ref_ns);
      }
      out << buf;
    }
    out << "\n";
  }
}

void ComparisonReporter::PrintRowPerContender(const std::string& name,
                                              const Group& g,
                                              const std::string& counter,
                                              std::ostream& out) const {
  const std::string& heading = Heading(name);
  int name_width = static_cast<int>(heading.size());
  for (const auto& c : g.contenders) {
    name_width = std::max(name_width, static_cast<int>(c.size()));
  }
  // Every cell's text first: cells are 16 wide, or wider to keep two
  // spaces between the widest ones (protected stacks take microseconds).
  char buf[64];
  std::vector<std::vector<std::string>> text;
  int cell_width = 16;
  for (const auto& c : g.contenders) {
    text.emplace_back();
    for (const auto& [threads, cells] : g.runs) {
      auto it = cells.find(c);
      auto ref = cells.find(reference_);
      std::string cell = "-";
      const double ns = it == cells.end() ? -1 : Median(it->second, counter);
      if (ns >= 0) {
        snprintf(buf, sizeof(buf), "%.2f", ns);
        cell = buf;
        double ref_ns = ref == cells.end() ? 0 : Median(ref->second, counter);
        if (c != reference_ && ref_ns > 0) {
          snprintf(buf, sizeof(buf), " (%.2fx)", ns / ref_ns);
          cell += buf;
        }
      }
      cell_width = std::max(cell_width, static_cast<int>(cell.size()) + 2);
      text.back().push_back(std::move(cell));
    }
  }
  snprintf(buf, sizeof(buf), "%-*s", name_width, heading.c_str());
  out << buf;
  for (const auto& [threads, cells] : g.runs) {
    snprintf(buf, sizeof(buf), "%*d", cell_width, threads);
    out << buf;
  }
  out << "\n";
  for (size_t i = 0; i < g.contenders.size(); ++i) {
    snprintf(buf, sizeof(buf), "%-*s", name_width, g.contenders[i].c_str());
    out << buf;
    for (const std::string& cell : text[i]) {
      snprintf(buf, sizeof(buf), "%*s", cell_width, cell.c_str());
      out << buf;
    }
    out << "\n";
  }
}

// One record a line, fields separated by tabs:
//   cell <group> <contender> <threads> <ns/op> [<counter>=<value>...]
//                                            (one per repetition)
//   caption <group> <text>
//   columns <group> <heading>
//   counter_table <group> <counter> <title>
//   note <text>
void ComparisonReporter::WriteCells(std::ostream& out) const {
  char ns[32];
  for (const std::string& name : group_order_) {
    const Group& g = groups_.at(name);
    for (const auto& c : g.contenders) {
      for (const auto& [threads, cells] : g.runs) {
        auto it = cells.find(c);
        if (it == cells.end()) continue;
        for (const Repetition& r : it->second) {
          snprintf(ns, sizeof(ns), "%.17g", r.ns_per_op);
          out << "cell\t" << name << "\t" << c << "\t" << threads << "\t" << ns;
          for (const auto& [counter, value] : r.counters) {
            snprintf(ns, sizeof(ns), "%.17g", value);
            out << "\t" << counter << "=" << ns;
          }
          out << "\n";
        }
      }
    }
    auto caption = captions_.find(name);
    if (caption != captions_.end()) {
      out << "caption\t" << name << "\t" << caption->second << "\n";
    }
    auto columns = columns_.find(name);
    if (columns != columns_.end() && !columns->second.heading.empty()) {
      out << "columns\t" << name << "\t" << columns->second.heading << "\n";
    }
    if (auto it = counter_tables_.find(name); it != counter_tables_.end()) {
      for (const CounterTable& t : it->second) {
        out << "counter_table\t" << name << "\t" << t.counter << "\t" << t.title
            << "\n";
      }
    }
  }
  for (const std::string& note : notes_) out << "note\t" << note << "\n";
}

bool ComparisonReporter::ReadCells(std::istream& in) {
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::istringstream fields(line);
    for (std::string s; std::getline(fields, s, '\t');) f.push_back(s);
    if (f.size() >= 5 && f[0] == "cell") {
      char* end_threads;
      char* end_ns;
      long threads = strtol(f[3].c_str(), &end_threads, 10);
      double ns = strtod(f[4].c_str(), &end_ns);
      if (*end_threads != '\0' || *end_ns != '\0') return false;
      Repetition repetition{ns, {}};
      for (size_t i = 5; i < f.size(); ++i) {
        const size_t eq = f[i].rfind('=');
        char* end_value;
        if (eq == std::string::npos || eq == 0) return false;
        const double value = strtod(f[i].c_str() + eq + 1, &end_value);
        if (*end_value != '\0' || end_value == f[i].c_str() + eq + 1) {
          return false;
        }
        repetition.counters[f[i].substr(0, eq)] = value;
      }
      AddCell(f[1], f[2], static_cast<int>(threads), std::move(repetition));
    } else if (f.size() == 3 && f[0] == "caption") {
      SetCaption(f[1], f[2]);
    } else if (f.size() == 3 && f[0] == "columns") {
      SetColumns(f[1], "", f[2]);
    } else if (f.size() == 4 && f[0] == "counter_table") {
      AddCounterTable(f[1], f[2], f[3]);
    } else if (f.size() == 2 && f[0] == "note") {
      AddNote(f[1]);
    } else {
      return false;
    }
  }
  return true;
}

std::string TakeFlag(int& argc, char** argv, const char* prefix) {
  const size_t n = strlen(prefix);
  std::string value;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    if (strncmp(argv[i], prefix, n) == 0) {
      value = argv[i] + n;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  return value;
}

bool RunBenchmarks(int& argc, char** argv, ComparisonReporter& reporter) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return false;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return true;
}

int RunComparison(int argc, char** argv, ComparisonReporter& reporter) {
  std::string cells_out = TakeFlag(argc, argv, "--comparison_cells_out=");
  if (!RunBenchmarks(argc, argv, reporter)) return 1;
  if (cells_out.empty()) {
    reporter.PrintTables(std::cout);
    return 0;
  }
  std::ofstream out(cells_out);
  reporter.WriteCells(out);
  out.close();
  if (!out) {
    std::cerr << "cannot write " << cells_out << "\n";
    return 1;
  }
  return 0;
}

int RunComparison(int argc, char** argv, const std::string& reference) {
  ComparisonReporter reporter(reference);
  return RunComparison(argc, argv, reporter);
}

}  // namespace baseline
}  // namespace stackalloc
