// A real server under a real client: //examples/asio:http_server (Boost.Beast
// over Boost.Asio, one coroutine per connection) with its coroutines' stacks
// from ours (a guard page below each), Boost's fixedsize_stack (malloc, no
// guard) and protected_fixedsize_stack (mmap + mprotect per stack), loaded by
// Debian's wrk over loopback: requests per second, p50 and p99 latency, the
// server's resident memory and mappings, and where any of them stops.
//
//   bazel run -c opt //testing/perf/asio:server_benchmark [-- flags]
//
// Each round starts one server per allocator in turn (each round starting
// with the next allocator) and loads it with wrk at each connection count,
// lowest first; the server keeps running between
// loads (its RSS and mappings are the largest it reached during the load),
// then gets SIGTERM and must stop cleanly (ours: no stack left in use, none
// without a guard). Every cell is the median of its rounds, so a change in
// the machine's load is spread over the three. Flags, besides Google
// Benchmark's (--benchmark_out=FILE --benchmark_out_format=json for charts):
//   --connections=100,1000,10000  wrk -c, one load each
//   --duration_s=10               wrk -d, each load
//   --rounds=3
//   --stacks=ours,fixedsize,protected
//   --server_threads=2            the server's io_context threads
//   --wrk_threads=2               wrk -t
//   --stack_kib=128               every allocator's stacks (Asio's default)
//
// The open-file limit is raised to its hard limit, which the servers and wrk
// inherit: every connection is a descriptor at both ends. Exits 1 if a load
// could not be measured (see `failures`), after printing the tables.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>  // environ too (_GNU_SOURCE, which g++ defines)

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "testing/perf/benchmark_processes.h"
#include "testing/perf/comparison_reporter.h"
#include "testing/process_info.h"

namespace stackalloc {
namespace baseline {
namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  std::vector<int> connections = {100, 1000, 10000};
  int duration_s = 10;
  int rounds = 3;
  std::vector<std::string> stacks = {"ours", "fixedsize", "protected"};
  int server_threads = 2;
  int wrk_threads = 2;
  int stack_kib = 128;
};

Flags flags;
std::string server_path;
std::string lua_path;
ComparisonReporter* reporter = nullptr;
// Loads that could not be measured (a server that did not start, died or
// did not stop cleanly; wrk failing): the driver then exits 1. wrk's socket
// errors and timeouts are results, not failures.
int failures = 0;

// Runs argv with stdout (and stderr, if err_path is not empty: to that
// file) redirected; returns its pid and the read end of its stdout, or -1.
pid_t Spawn(const std::vector<std::string>& args, int* out_fd,
            const std::string& err_path) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  if (!err_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
  } else {
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  }
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (std::string& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ) !=
      0) {
    pid = -1;
  }
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    return -1;
  }
  *out_fd = fds[0];
  return pid;
}

// Reads one line from fd, waiting at most `timeout`; false if none came.
bool ReadLine(int fd, std::chrono::seconds timeout, std::string* line) {
  line->clear();
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - Clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      return false;
    }
    char c;
    if (read(fd, &c, 1) != 1) return false;
    if (c == '\n') return true;
    *line += c;
  }
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, n);
  return out;
}

std::string Describe(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return std::string("signal ") + strsignal(WTERMSIG(status));
  }
  return "status " + std::to_string(status);
}

// The lines of a file that contain `what`.
int CountLines(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.find(what) != std::string::npos) ++n;
  }
  return n;
}

// One http_server process.
class Server {
 public:
  Server(std::string stack, int round)
      : stack_(std::move(stack)), round_(round) {}
  ~Server() {
    std::string ignored;
    Stop(&ignored);
  }

  const std::string& stack() const { return stack_; }
  int round() const { return round_; }
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  int maps_at_start() const { return maps_at_start_; }
  int files_at_start() const { return files_at_start_; }
  const std::string& err_path() const { return err_path_; }

  // Starts it and waits for its "listening on" line.
  bool Start(std::string* error) {
    const char* tmp = getenv("TMPDIR");
    err_path_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/http_server." +
                std::to_string(getpid()) + "." + stack_ + ".stderr";
    pid_ = Spawn(
        {server_path, "--port=0",
         "--threads=" + std::to_string(flags.server_threads),
         "--stack=" + stack_, "--stack_kib=" + std::to_string(flags.stack_kib)},
        &out_fd_, err_path_);
    if (pid_ < 0) {
      *error = "cannot start " + server_path;
      return false;
    }
    std::string line;
    const std::string prefix = "listening on 127.0.0.1:";
    if (!ReadLine(out_fd_, std::chrono::seconds(30), &line) ||
        line.compare(0, prefix.size(), prefix) != 0) {
      *error = "the server said \"" + line + "\", not \"" + prefix + "...\"";
      return false;
    }
    port_ = atoi(line.c_str() + prefix.size());
    maps_at_start_ = testing_util::MapsLines(pid_);
    files_at_start_ = testing_util::OpenFiles(pid_);
    return true;
  }

  // Whether it still runs; if not, *why says how it ended.
  bool Running(std::string* why) {
    if (pid_ < 0) {
      *why = "not started";
      return false;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      *why = Describe(status);
      pid_ = -1;
      return false;
    }
    return true;
  }

  // SIGTERM, then waits (SIGKILL after a minute). Returns whether it exited
  // 0; *last_line is its last line of output.
  bool Stop(std::string* last_line) {
    if (pid_ < 0) return false;
    kill(pid_, SIGTERM);
    int status = 0;
    const auto deadline = Clock::now() + std::chrono::minutes(1);
    while (waitpid(pid_, &status, WNOHANG) != pid_) {
      if (Clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
    std::string out = ReadAll(out_fd_);
    close(out_fd_);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    *last_line = out.substr(
        out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
    unlink(err_path_.c_str());
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }

 private:
  std::string stack_;
  int round_;
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
  int maps_at_start_ = 0;
  int files_at_start_ = 0;
  std::string err_path_;
};

std::unique_ptr<Server> server;

void StopServer() {
  if (server == nullptr) return;
  std::string last;
  const bool clean = server->Stop(&last);
  const std::string expected =
      "stopped: 0 bytes of stackalloc stacks in use, 0 unguarded";
  if (!clean || last != expected) {
    ++failures;
    reporter->AddNote(server->stack() + ", round " +
                      std::to_string(server->round()) +
                      ": the server did not stop cleanly: \"" + last + "\"");
  }
  server.reset();
}

// What one wrk run reported (wrk_report.lua), and the server meanwhile.
struct Load {
  std::map<std::string, double> wrk;  // duration_us, requests, p50_us, ...
  int64_t peak_rss_kib = 0;
  int peak_maps = 0;
  int peak_files = 0;  // The server's open descriptors: its connections.
};

bool RunWrk(int connections, Load* load, std::string* error) {
  int out_fd = -1;
  const std::string url =
      "http://127.0.0.1:" + std::to_string(server->port()) + "/";
  const pid_t wrk = Spawn(
      {"wrk", "-t" + std::to_string(flags.wrk_threads),
       "-c" + std::to_string(connections),
       "-d" + std::to_string(flags.duration_s) + "s", "-s", lua_path, url},
      &out_fd, "");
  if (wrk < 0) {
    *error = "cannot run wrk (Debian's wrk; bazel/setup.sh installs it)";
    return false;
  }
  // The pipe must not fill while we sample: wrk writes little.
  fcntl(out_fd, F_SETFL, O_NONBLOCK);
  std::string out;
  int status = 0;
  for (;;) {
    const int64_t rss = testing_util::RssKiB(server->pid());
    const int maps = testing_util::MapsLines(server->pid());
    const int files = testing_util::OpenFiles(server->pid());
    if (rss > load->peak_rss_kib) load->peak_rss_kib = rss;
    if (maps > load->peak_maps) load->peak_maps = maps;
    if (files > load->peak_files) load->peak_files = files;
    char buf[4096];
    for (ssize_t n; (n = read(out_fd, buf, sizeof buf)) > 0;)
      out.append(buf, n);
    if (waitpid(wrk, &status, WNOHANG) == wrk) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  fcntl(out_fd, F_SETFL, 0);
  out += ReadAll(out_fd);
  close(out_fd);
  const size_t at = out.find("wrk_result ");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
      at == std::string::npos) {
    *error = "wrk: " + Describe(status) + ": " + out.substr(0, 300);
    return false;
  }
  std::istringstream fields(
      out.substr(at + strlen("wrk_result "), out.find('\n', at) - at));
  for (std::string field; fields >> field;) {
    const size_t eq = field.find('=');
    if (eq != std::string::npos) {
      load->wrk[field.substr(0, eq)] = atof(field.c_str() + eq + 1);
    }
  }
  return true;
}

void LoadServer(benchmark::State& state, const std::string& stack, int round,
                int connections, bool last) {
  const std::string where = stack + " at " + std::to_string(connections) +
                            " connections, round " + std::to_string(round);
  if (server == nullptr || server->stack() != stack ||
      server->round() != round) {
    StopServer();
    server = std::make_unique<Server>(stack, round);
    std::string error;
    if (!server->Start(&error)) {
      ++failures;
      server.reset();
      reporter->AddNote(where + ": " + error);
      state.SkipWithError(error.c_str());
      return;
    }
  }
  const int refused_before = CountLines(server->err_path(), "bad_alloc");
  Load load;
  std::string error;
  bool ok = false;
  for (auto _ : state) {
    ok = RunWrk(connections, &load, &error);
    state.SetIterationTime(ok ? load.wrk["duration_us"] * 1e-6 : 1e-6);
  }
  std::string why;
  if (!server->Running(&why)) {
    ++failures;
    reporter->AddNote(
        where + ": the server died (" + why + "); stderr: " +
        std::to_string(CountLines(server->err_path(), "bad_alloc")) +
        " lines with bad_alloc");
    server.reset();
    state.SkipWithError(("the server died: " + why).c_str());
    return;
  }
  if (!ok || load.wrk["requests"] <= 0) {
    ++failures;
    reporter->AddNote(where + ": " + (ok ? "no request answered" : error));
    state.SkipWithError(ok ? "no request answered" : error.c_str());
    if (last) StopServer();
    return;
  }
  const double seconds = load.wrk["duration_us"] * 1e-6;
  const double errors = load.wrk["connect_errors"] + load.wrk["read_errors"] +
                        load.wrk["write_errors"] + load.wrk["timeouts"] +
                        load.wrk["status_errors"];
  const int refused =
      CountLines(server->err_path(), "bad_alloc") - refused_before;
  state.counters[kOpsPerIteration] = load.wrk["requests"];
  state.counters["requests_per_second"] = load.wrk["requests"] / seconds;
  state.counters["latency_p50_ms"] = load.wrk["p50_us"] / 1000;
  state.counters["latency_p99_ms"] = load.wrk["p99_us"] / 1000;
  state.counters["rss_mib"] = load.peak_rss_kib / 1024.0;
  state.counters["maps"] = load.peak_maps;
  state.counters["maps_added"] = load.peak_maps - server->maps_at_start();
  // Connections open at once, at most (a sample every 200 ms): under 10,000
  // connections not all are open at every moment.
  state.counters["connections_open"] =
      load.peak_files - server->files_at_start();
  state.counters["errors"] = errors;
  state.counters["no_stack"] = refused;
  if (errors > 0 || refused > 0) {
    char note[256];
    snprintf(note, sizeof note,
             "%s: wrk saw %.0f connect, %.0f read, %.0f write errors, %.0f "
             "timeouts, %.0f bad statuses; the server had no stack for %d "
             "connections",
             where.c_str(), load.wrk["connect_errors"], load.wrk["read_errors"],
             load.wrk["write_errors"], load.wrk["timeouts"],
             load.wrk["status_errors"], refused);
    reporter->AddNote(note);
  }
  if (last) StopServer();
}

bool ParseFlags(int& argc, char** argv) {
  auto take = [&](const char* name, auto set) {
    const std::string v = TakeFlag(argc, argv, name);
    if (!v.empty()) set(v);
  };
  take("--connections=", [](const std::string& v) {
    flags.connections.clear();
    for (const std::string& c : Split(v))
      flags.connections.push_back(atoi(c.c_str()));
  });
  take("--duration_s=",
       [](const std::string& v) { flags.duration_s = atoi(v.c_str()); });
  take("--rounds=",
       [](const std::string& v) { flags.rounds = atoi(v.c_str()); });
  take("--stacks=", [](const std::string& v) { flags.stacks = Split(v); });
  take("--server_threads=",
       [](const std::string& v) { flags.server_threads = atoi(v.c_str()); });
  take("--wrk_threads=",
       [](const std::string& v) { flags.wrk_threads = atoi(v.c_str()); });
  take("--stack_kib=",
       [](const std::string& v) { flags.stack_kib = atoi(v.c_str()); });
  for (int c : flags.connections) {
    if (c < flags.wrk_threads) return false;
  }
  return !flags.connections.empty() && !flags.stacks.empty() &&
         flags.duration_s >= 1 && flags.rounds >= 1 &&
         flags.server_threads >= 1 && flags.wrk_threads >= 1 &&
         flags.stack_kib >= 4;
}

int Main(int argc, char** argv) {
  const auto runfiles = OpenRunfiles("server_benchmark", argv[0]);
  if (runfiles == nullptr) return 1;
  server_path = runfiles->Rlocation("stackalloc/examples/asio/http_server");
  lua_path = runfiles->Rlocation("stackalloc/testing/perf/asio/wrk_report.lua");
  if (!ParseFlags(argc, argv)) {
    std::cerr << "server_benchmark: bad flags (see the top of "
                 "testing/perf/asio/server_benchmark.cc)\n";
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  // The servers and wrk, our children, inherit the limit.
  const uint64_t files = testing_util::RaiseOpenFileLimit();
  if (files == 0) {
    perror("server_benchmark: raising RLIMIT_NOFILE");
    return 1;
  }

  ComparisonReporter comparison("ours");
  reporter = &comparison;
  comparison.set_row_per_contender(true);
  comparison.SetColumns("http", "connections", "connections");
  comparison.SetCaption(
      "http",
      "op = one HTTP request answered under wrk's load (the load's "
      "wall time / requests)");
  comparison.AddCounterTable("http", "requests_per_second",
                             "requests per second");
  comparison.AddCounterTable("http", "latency_p50_ms", "p50 latency (ms)");
  comparison.AddCounterTable("http", "latency_p99_ms", "p99 latency (ms)");
  comparison.AddCounterTable("http", "rss_mib",
                             "server RSS, the largest during the load (MiB)");
  comparison.AddCounterTable(
      "http", "maps_added",
      "server mappings added since it started, the most during the load");
  comparison.AddCounterTable(
      "http", "connections_open",
      "connections the server had open at once, the most sampled");
  comparison.AddCounterTable("http", "errors",
                             "wrk's socket errors and timeouts");
  char note[512];
  snprintf(note, sizeof note,
           "wrk -t%d -d%ds over loopback against //examples/asio:http_server "
           "--threads=%d --stack_kib=%d; %d rounds, each cell the median; "
           "open files: %llu (the hard limit) for the servers and wrk",
           flags.wrk_threads, flags.duration_s, flags.server_threads,
           flags.stack_kib, flags.rounds,
           static_cast<unsigned long long>(files));
  comparison.AddNote(note);
  comparison.AddNote(
      "ours: a guard page below every stack; fixedsize: malloc, no guard; "
      "protected: mmap + mprotect (a guard) + munmap per stack");

  for (int round = 1; round <= flags.rounds; ++round) {
    // Each round starts with the next allocator: none always loads a
    // machine fresh, or right after the last round's largest load (whose
    // sockets linger in TIME_WAIT for a minute).
    const size_t n = flags.stacks.size();
    for (size_t k = 0; k < n; ++k) {
      const std::string& stack = flags.stacks[(k + round - 1) % n];
      for (size_t i = 0; i < flags.connections.size(); ++i) {
        const int c = flags.connections[i];
        const bool last = i + 1 == flags.connections.size();
        benchmark::RegisterBenchmark(
            ("http/" + stack).c_str(),
            [stack, round, c, last](benchmark::State& state) {
              LoadServer(state, stack, round, c, last);
            })
            ->ArgName("connections")
            ->Arg(c)
            ->Iterations(1)
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  const int rc = RunComparison(argc, argv, comparison);
  StopServer();
  return rc != 0 || failures > 0 ? 1 : 0;
}

}  // namespace
}  // namespace baseline
}  // namespace stackalloc

int main(int argc, char** argv) {
  return stackalloc::baseline::Main(argc, argv);
}
