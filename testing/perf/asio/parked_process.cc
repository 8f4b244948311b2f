// One process of the parked-sessions benchmark (//testing/perf/asio:
// parked_benchmark runs one per allocator and session count): N coroutines
// of Boost.Asio's spawn park on timers, as a server's sessions wait for
// their clients, then wake in waves and end.
//
//   parked_process --stack=ours|fixedsize|protected --sessions=N
//                  [--waves=10] [--stack_kib=128] [Google Benchmark flags]
//
// One thread runs the io_context. Creation: spawn N coroutines (each parks
// on its wave's timer, session i in wave i % waves) and run them to their
// wait; the time per session is the benchmark's ns/op. Then the process's
// RSS and mappings (/proc/self), and the waves: each wave's timer is
// cancelled, which wakes its sessions (operation_aborted) in the order they
// parked, and each records when it resumed, then ends (its stack is freed).
// Counters: rss_mib, maps, maps_added, wake_ns (a wave's time per session
// woken, the median of the waves), wake_p50_ms and wake_p99_ms (from its
// wave's cancel() to a session's resumption).
//
// protected_fixedsize_stack costs two mappings per stack (the mapping and
// its mprotect'ed guard), so about 32,700 parked sessions exhaust Linux's
// vm.max_map_count (65,530): mmap then fails (std::bad_alloc), or mprotect
// does and Boost, built with NDEBUG, hands out the stack without its guard,
// or, the process being at the limit, malloc fails inside Asio (the kernel
// refuses brk too).
//
// Every 1,024 sessions (for every allocator alike, outside the timing) the
// process counts its mappings, and keeps 16 in reserve to come back from the
// wall (see Reserve); a run that stops short of N reports where and
// why as an error, and the driver says so under the table. Any other stop
// (and a stackalloc stack left in use) makes the process exit 1.

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "boost/asio/detached.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/spawn.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/context/fixedsize_stack.hpp"
#include "boost/context/protected_fixedsize_stack.hpp"
#include "boost_stack_allocator.h"
#include "stats/mstats.h"
#include "testing/perf/comparison_reporter.h"
#include "testing/process_info.h"

namespace stackalloc {
namespace baseline {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

int waves = 10;
// A run that stopped short for another reason than protected stacks'
// mappings (or left stackalloc stacks in use): the process exits 1.
bool failed = false;
size_t stack_size = 128 << 10;
constexpr int kCheckEvery = 1024;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// The p-th percentile (0-100) of sorted values.
double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto i =
      static_cast<size_t>(std::lround(p / 100 * (sorted.size() - 1)));
  return sorted[std::min(i, sorted.size() - 1)];
}

// Runs the ready handlers. Past vm.max_map_count the kernel refuses brk as
// well as mmap, so malloc fails anywhere: Asio's allocation of a wait throws
// out of poll(). Returns false, saying so in *stopped (unless it says
// something already), if it did.
bool Poll(asio::io_context& ioc, std::string* stopped) {
  try {
    ioc.poll();
    return true;
  } catch (const std::bad_alloc&) {
    if (stopped->empty()) *stopped = "malloc refused (std::bad_alloc) in Asio";
    return false;
  }
}

// Mappings kept in reserve: one page each, every other one readable so that
// none merges with its neighbour. A process at vm.max_map_count cannot grow
// its heap (the kernel refuses brk as well as mmap), so the sessions spawned
// since the last check could not even park (Asio allocates each wait), let
// alone wake and give their stacks back; released once the wall is reached
// and measured, these let them. They move protected's wall by half their
// number of sessions.
class Reserve {
 public:
  static constexpr int kPages = 16;
  Reserve() {
    const size_t page = sysconf(_SC_PAGESIZE);
    base_ = mmap(nullptr, kPages * page, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base_ == MAP_FAILED) {
      base_ = nullptr;
      return;
    }
    for (int i = 1; i < kPages; i += 2) {
      mprotect(static_cast<char*>(base_) + i * page, page, PROT_READ);
    }
  }
  ~Reserve() { Release(); }
  void Release() {
    if (base_ != nullptr) munmap(base_, kPages * sysconf(_SC_PAGESIZE));
    base_ = nullptr;
  }

 private:
  void* base_ = nullptr;
};

template <typename StackAllocator>
void Parked(benchmark::State& state, bool guarded_by_mappings) {
  Reserve reserve;
  const int n = static_cast<int>(state.range(0));
  StackAllocator salloc(stack_size);
  asio::io_context ioc(1);
  std::vector<asio::steady_timer> timers;
  for (int w = 0; w < waves; ++w) {
    timers.emplace_back(ioc, asio::steady_timer::time_point::max());
  }
  std::vector<Clock::time_point> woke(n);
  int parked = 0;
  int created = 0;  // Spawned.
  int reached = 0;  // Spawned, and with a guard if guarded_by_mappings.
  std::string stopped;
  // Set at the mappings' wall, where malloc may fail: no allocation then.
  stopped.reserve(256);
  double rss_mib = 0;
  int maps = 0, maps_added = 0;
  for (auto _ : state) {
    const int maps0 = testing_util::MapsLines();
    int maps_checked = maps0;
    Clock::duration outside{};
    const auto t0 = Clock::now();
    for (int i = 0; i < n && stopped.empty(); ++i) {
      try {
        asio::spawn(
            ioc, std::allocator_arg, salloc,
            [&parked, &woke, i,
             timer = &timers[i % waves]](asio::yield_context yield) {
              ++parked;
              boost::system::error_code ec;
              timer->async_wait(yield[ec]);  // Until its wave.
              woke[i] = Clock::now();
            },
            asio::detached);
      } catch (const std::bad_alloc&) {
        stopped = "spawn threw std::bad_alloc (mmap or malloc refused)";
        break;
      }
      ++created;
      if (created % kCheckEvery == 0) {
        if (!Poll(ioc, &stopped)) break;  // They park.
        const auto pause = Clock::now();
        const int now = testing_util::MapsLines();
        // Two mappings a stack while mprotect works; none once the new
        // stacks merge into the unguarded one before them.
        if (guarded_by_mappings && now - maps_checked < kCheckEvery) {
          stopped = "mprotect refused: stacks without guards";
        }
        maps_checked = now;
        outside += Clock::now() - pause;
      }
    }
    Poll(ioc, &stopped);
    state.SetIterationTime(
        std::chrono::duration<double>(Clock::now() - t0 - outside).count());
    rss_mib = testing_util::RssKiB() / 1024.0;
    maps = testing_util::MapsLines();
    maps_added = maps - maps0;
    reserve.Release();  // Measured: now let every session park and wake.
    Poll(ioc, &stopped);
    // Where protected stacks stopped having guards: two mappings each.
    reached = guarded_by_mappings && !stopped.empty()
                  ? std::min(created, maps_added / 2)
                  : created;
  }
  if (parked != created && stopped.empty()) {
    stopped = std::to_string(parked) + " of " + std::to_string(created) +
              " sessions parked";
  }

  // The waves: each wakes its sessions; they end, and their stacks go back.
  std::vector<double> latency_ms;
  std::vector<double> wave_ns;
  for (int w = 0; w < waves; ++w) {
    const auto start = Clock::now();
    timers[w].cancel();
    Poll(ioc, &stopped);
    int woken = 0;
    for (int i = w; i < n; i += waves) {
      if (woke[i] >= start) {
        latency_ms.push_back(Ms(woke[i] - start));
        ++woken;
      }
    }
    if (woken > 0) {
      wave_ns.push_back(
          std::chrono::duration<double, std::nano>(Clock::now() - start)
              .count() /
          woken);
    }
  }
  // Anything left. A session whose wait could not be set up (no memory)
  // stays suspended for good, and goes with the process.
  Poll(ioc, &stopped);
  std::sort(latency_ms.begin(), latency_ms.end());
  std::sort(wave_ns.begin(), wave_ns.end());
  if (static_cast<int>(latency_ms.size()) != parked && stopped.empty()) {
    stopped = std::to_string(latency_ms.size()) + " of " +
              std::to_string(parked) + " sessions woke";
  }
  const MemStats st = ReadMemStats();
  if (stopped.empty() && (st.stacks_inuse != 0 || st.stacks_unguarded != 0)) {
    stopped = "stackalloc: " + std::to_string(st.stacks_inuse) +
              " bytes still in use, " + std::to_string(st.stacks_unguarded) +
              " stacks unguarded";
  }

  state.counters[kOpsPerIteration] = created > 0 ? created : 1;
  state.counters["rss_mib"] = rss_mib;
  state.counters["maps"] = maps;
  state.counters["maps_added"] = maps_added;
  state.counters["wake_ns"] = wave_ns.empty() ? 0 : Percentile(wave_ns, 50);
  state.counters["wake_p50_ms"] = Percentile(latency_ms, 50);
  state.counters["wake_p99_ms"] = Percentile(latency_ms, 99);
  state.counters["sessions_reached"] = reached;
  if (!stopped.empty()) {
    const bool mapping_wall =
        guarded_by_mappings && (stopped.rfind("spawn threw", 0) == 0 ||
                                stopped.rfind("mprotect refused", 0) == 0 ||
                                stopped.rfind("malloc refused", 0) == 0);
    if (!mapping_wall) failed = true;
    char why[256];
    snprintf(why, sizeof why,
             "stopped at %d of %d sessions: %s (RSS %.1f MiB, %d mappings; "
             "%d spawned)",
             reached, n, stopped.c_str(), rss_mib, maps, created);
    state.SkipWithError(why);
  }
}

// Adds a note for every run that stopped short, before the cells are
// written (Google Benchmark keeps the error message, the table does not).
class Reporter : public ComparisonReporter {
 public:
  using ComparisonReporter::ComparisonReporter;
  void ReportRuns(const std::vector<Run>& runs) override {
    ComparisonReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) {
        AddNote(run.run_name.function_name + " " + run.run_name.args + ": " +
                run.error_message);
      }
    }
  }
};

int Main(int argc, char** argv) {
  const std::string stack = TakeFlag(argc, argv, "--stack=");
  const int sessions = atoi(TakeFlag(argc, argv, "--sessions=").c_str());
  const std::string waves_flag = TakeFlag(argc, argv, "--waves=");
  const std::string kib = TakeFlag(argc, argv, "--stack_kib=");
  if (!waves_flag.empty()) waves = atoi(waves_flag.c_str());
  if (!kib.empty()) stack_size = strtoul(kib.c_str(), nullptr, 10) << 10;
  if (sessions < 1 || waves < 1 || stack_size < 4096) {
    fprintf(stderr,
            "usage: parked_process --stack=ours|fixedsize|protected "
            "--sessions=N [--waves=10] [--stack_kib=128]\n");
    return 2;
  }
  benchmark::internal::Benchmark* b = nullptr;
  if (stack == "ours") {
    b = benchmark::RegisterBenchmark("parked/ours", [](benchmark::State& s) {
      Parked<BoostStackAllocator>(s, false);
    });
  } else if (stack == "fixedsize") {
    b = benchmark::RegisterBenchmark(
        "parked/fixedsize", [](benchmark::State& s) {
          Parked<boost::context::fixedsize_stack>(s, false);
        });
  } else if (stack == "protected") {
    b = benchmark::RegisterBenchmark(
        "parked/protected", [](benchmark::State& s) {
          Parked<boost::context::protected_fixedsize_stack>(s, true);
        });
  } else {
    fprintf(stderr, "--stack is ours, fixedsize or protected\n");
    return 2;
  }
  b->ArgName("sessions")
      ->Arg(sessions)
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  Reporter reporter("ours");
  reporter.SetColumns("parked", "sessions", "sessions");
  const int rc = RunComparison(argc, argv, reporter);
  return rc != 0 || failed ? 1 : 0;
}

}  // namespace
}  // namespace baseline
}  // namespace stackalloc

int main(int argc, char** argv) {
  return stackalloc::baseline::Main(argc, argv);
}
