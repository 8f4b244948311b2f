#include "testing/perf/benchmark_processes.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>  // environ too (_GNU_SOURCE, which g++ defines)

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

namespace stackalloc {
namespace baseline {
namespace {

bool StartsWith(const std::string& s, const char* prefix) {
  return s.compare(0, strlen(prefix), prefix) == 0;
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// A new empty file under TEST_TMPDIR, TMPDIR or /tmp, or "" on failure.
std::string TempFile(const char* stem) {
  const char* dir = getenv("TEST_TMPDIR");
  if (dir == nullptr) dir = getenv("TMPDIR");
  std::string path =
      std::string(dir != nullptr ? dir : "/tmp") + "/" + stem + ".XXXXXX";
  const int fd = mkstemp(path.data());
  if (fd < 0) {
    perror("mkstemp");
    return "";
  }
  close(fd);
  return path;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

bool ParseDriverFlags(int argc, char** argv, DriverFlags* flags,
                      std::string* error) {
  constexpr char kRepetitions[] = "--benchmark_repetitions=";
  constexpr char kOut[] = "--benchmark_out=";
  constexpr char kOutFormat[] = "--benchmark_out_format=";
  constexpr char kMinTime[] = "--benchmark_min_time=";
  bool min_time_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (StartsWith(arg, kRepetitions)) {
      flags->rounds = atoi(arg.c_str() + strlen(kRepetitions));
      if (flags->rounds < 1) {
        *error = "--benchmark_repetitions must be >= 1";
        return false;
      }
    } else if (StartsWith(arg, kOut)) {
      flags->json_out = arg.substr(strlen(kOut));
    } else if (StartsWith(arg, kOutFormat)) {
      if (arg.substr(strlen(kOutFormat)) != "json") {
        *error = "a driver merges only JSON: --benchmark_out_format=json";
        return false;
      }
    } else {
      if (StartsWith(arg, kMinTime)) min_time_given = true;
      flags->child_args.push_back(arg);
    }
  }
  if (!min_time_given)
    flags->child_args.push_back(std::string(kMinTime) + "0.2");
  return true;
}

std::unique_ptr<bazel::tools::cpp::runfiles::Runfiles> OpenRunfiles(
    const char* driver, const char* argv0) {
  std::string error;
  std::unique_ptr<bazel::tools::cpp::runfiles::Runfiles> runfiles(
      bazel::tools::cpp::runfiles::Runfiles::Create(argv0, &error));
  if (runfiles == nullptr) {
    std::cerr << driver << ": cannot find runfiles: " << error << "\n";
  }
  return runfiles;
}

bool ReadDriverFlags(const char* driver, int argc, char** argv,
                     DriverFlags* flags) {
  std::string error;
  if (ParseDriverFlags(argc, argv, flags, &error)) return true;
  std::cerr << driver << ": " << error << "\n";
  return false;
}

bool JsonMerger::Add(const std::string& document) {
  const size_t key = document.find("\"benchmarks\"");
  if (key == std::string::npos) return false;
  const size_t open = document.find('[', key);
  const size_t close = document.rfind(']');
  if (open == std::string::npos || close == std::string::npos || close < open ||
      Trim(document.substr(key + strlen("\"benchmarks\""),
                           open - key - strlen("\"benchmarks\""))) != ":") {
    return false;
  }
  if (head_.empty()) head_ = document.substr(0, open + 1);
  std::string runs = Trim(document.substr(open + 1, close - open - 1));
  if (!runs.empty()) runs_.push_back(std::move(runs));
  return true;
}

std::string JsonMerger::Merged() const {
  if (head_.empty()) return "";
  std::string out = head_;
  for (size_t i = 0; i < runs_.size(); ++i) {
    out += i == 0 ? "\n    " : ",\n    ";
    out += runs_[i];
  }
  out += "\n  ]\n}\n";
  return out;
}

bool RunChild(const std::string& title, const std::string& path,
              const std::vector<std::string>& extra_args,
              const DriverFlags& flags, ComparisonReporter& reporter,
              JsonMerger* json) {
  const std::string cells = TempFile("cells");
  const std::string json_file =
      flags.json_out.empty() || json == nullptr ? "" : TempFile("json");
  std::vector<std::string> argv_strings = {path};
  argv_strings.insert(argv_strings.end(), flags.child_args.begin(),
                      flags.child_args.end());
  argv_strings.insert(argv_strings.end(), extra_args.begin(), extra_args.end());
  argv_strings.push_back("--comparison_cells_out=" + cells);
  if (!json_file.empty()) {
    argv_strings.push_back("--benchmark_out=" + json_file);
    argv_strings.emplace_back("--benchmark_out_format=json");
  }
  std::vector<char*> child_argv;
  for (std::string& s : argv_strings) child_argv.push_back(s.data());
  child_argv.push_back(nullptr);

  std::cout << "\n==== " << title << "\n" << std::flush;
  bool ok = !cells.empty() &&
            (flags.json_out.empty() || json == nullptr || !json_file.empty());
  if (ok) {
    pid_t pid;
    int status = 0;
    ok = posix_spawn(&pid, path.c_str(), nullptr, nullptr, child_argv.data(),
                     environ) == 0 &&
         waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
         WEXITSTATUS(status) == 0;
  }
  if (ok) {
    std::ifstream in(cells);
    ok = reporter.ReadCells(in);
  }
  if (ok && !json_file.empty()) ok = json->Add(ReadAll(json_file));
  if (!cells.empty()) unlink(cells.c_str());
  if (!json_file.empty()) unlink(json_file.c_str());
  if (!ok) reporter.AddNote(title + " failed; its cells are missing");
  return ok;
}

bool WriteJson(const DriverFlags& flags, const JsonMerger& json) {
  if (flags.json_out.empty()) return true;
  std::ofstream out(flags.json_out);
  out << json.Merged();
  out.close();
  if (!out) {
    std::cerr << "cannot write " << flags.json_out << "\n";
    return false;
  }
  return true;
}

int FinishDriver(const DriverFlags& flags, const ComparisonReporter& reporter,
                 const JsonMerger& json, bool children_ok) {
  reporter.PrintTables(std::cout);
  return WriteJson(flags, json) && children_ok ? 0 : 1;
}

}  // namespace baseline
}  // namespace stackalloc
