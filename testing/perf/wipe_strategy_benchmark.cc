// How to wipe a stack between two users (SetStackWipe), measured on plain
// mapped memory so that only the strategies differ:
//
//   none      nothing: the cost of the user's own touches, the baseline;
//   mincore   read which pages are resident (one mincore()), then zero
//             those (memset): the pages stay, and the next user finds them
//             mapped;
//   dontneed  madvise(MADV_DONTNEED) over the whole stack: the kernel frees
//             the resident pages, and the next user faults each page it
//             touches back in, zeroed by the kernel.
//
//   bazel run -c opt //testing/perf:wipe_strategy_benchmark
//
// One iteration is one user (it writes a byte into each of the top `pages`
// pages of a stack, as frames that went that deep would) and then the wipe;
// so a strategy's cost over none's is the wipe and whatever it costs the
// next user. Each case runs alone, and again with a second thread of the
// process busy on the other core (`busy`), as an M of a fiber runtime
// would be: then MADV_DONTNEED must shoot down the other core's TLB.
// Prints Google Benchmark's report, then one table: ns per user and wipe
// (with --benchmark_repetitions, the best repetition), and each strategy's
// cost over none.

#include <sys/mman.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "stackalloc.h"

namespace stackalloc {
namespace baseline {
namespace {

enum Strategy { kNone, kMincore, kDontneed };
const char* const kStrategyNames[] = {"none", "mincore", "dontneed"};

// A thread that keeps the other core busy in this process while a case
// runs, or nothing.
class Busy {
 public:
  explicit Busy(bool on) {
    if (on) {
      thread_ = std::thread([this] {
        while (!stop_.load(std::memory_order_relaxed)) {
        }
      });
    }
  }
  ~Busy() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

void Wipe(Strategy s, char* stack, size_t size, unsigned char* vec) {
  if (s == kMincore) {
    if (mincore(stack, size, vec) != 0) abort();
    const size_t pages = size / kPageSize;
    for (size_t i = 0; i < pages;) {
      if ((vec[i] & 1) == 0) {
        ++i;
        continue;
      }
      size_t j = i;
      while (j < pages && (vec[j] & 1) != 0) ++j;
      memset(stack + i * kPageSize, 0, (j - i) * kPageSize);
      i = j;
    }
  } else if (s == kDontneed) {
    if (madvise(stack, size, MADV_DONTNEED) != 0) abort();
  }
}

void UserAndWipe(benchmark::State& state, Strategy s, size_t size, size_t pages,
                 bool busy) {
  void* mem = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    state.SkipWithError("mmap failed");
    return;
  }
  madvise(mem, size, MADV_NOHUGEPAGE);  // As our stacks are.
  auto* stack = static_cast<char*>(mem);
  std::vector<unsigned char> vec(size / kPageSize);
  Busy other(busy);
  for (auto _ : state) {
    for (size_t d = 0; d < pages; ++d) {
      static_cast<volatile char*>(stack)[size - 1 - d * kPageSize] = 1;
    }
    Wipe(s, stack, size, vec.data());
  }
  // The wipe left nothing of the user's.
  for (size_t d = 0; d < pages; ++d) {
    if (stack[size - 1 - d * kPageSize] != 0 && s != kNone) {
      state.SkipWithError("a byte survived the wipe");
    }
  }
  munmap(mem, size);
}

struct Key {
  size_t size;
  size_t pages;
  bool busy;
  bool operator<(const Key& o) const {
    if (size != o.size) return size < o.size;
    if (pages != o.pages) return pages < o.pages;
    return busy < o.busy;
  }
};
std::map<Key, double> ns[3];
std::map<std::string, std::pair<Key, int>> names;

class TableReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred || run.run_type != Run::RT_Iteration) continue;
      const std::string name = run.benchmark_name();
      for (const auto& [prefix, key] : names) {
        if (name.rfind(prefix + "/", 0) == 0) {
          // With repetitions, the best: noise on a shared machine only
          // ever adds time.
          auto [it, first] =
              ns[key.second].emplace(key.first, run.GetAdjustedRealTime());
          if (!first && run.GetAdjustedRealTime() < it->second) {
            it->second = run.GetAdjustedRealTime();
          }
        }
      }
    }
  }
};

}  // namespace
}  // namespace baseline
}  // namespace stackalloc

int main(int argc, char** argv) {
  using namespace stackalloc::baseline;  // NOLINT(build/namespaces)
  using stackalloc::kPageSize;
  for (size_t kib : {4, 16, 64, 256, 1024}) {
    const size_t size = kib << 10;
    const size_t all = size / kPageSize;
    std::vector<size_t> depths = {1};
    if (all > 1) depths.push_back(all);
    for (size_t pages : depths) {
      for (bool busy : {false, true}) {
        for (int s = 0; s < 3; ++s) {
          const std::string name = std::string(kStrategyNames[s]) + "/" +
                                   std::to_string(kib) +
                                   "KiB/pages:" + std::to_string(pages) +
                                   (busy ? "/busy" : "/alone");
          names[name] = {Key{size, pages, busy}, s};
          benchmark::RegisterBenchmark(name.c_str(), &UserAndWipe,
                                       static_cast<Strategy>(s), size, pages,
                                       busy)
              ->UseRealTime()
              ->Unit(benchmark::kNanosecond);
        }
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  TableReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  printf(
      "\nns per user and wipe (the user writes into its top `pages` pages)\n");
  printf("%8s %6s %5s %10s %10s %10s %14s %14s\n", "stack", "pages", "busy",
         "none", "mincore", "dontneed", "mincore-none", "dontneed-none");
  for (const auto& [key, none] : ns[kNone]) {
    const double mc = ns[kMincore].count(key) ? ns[kMincore][key] : -1;
    const double dn = ns[kDontneed].count(key) ? ns[kDontneed][key] : -1;
    printf("%5zuKiB %6zu %5s %10.0f %10.0f %10.0f %14.0f %14.0f\n",
           key.size >> 10, key.pages, key.busy ? "yes" : "no", none, mc, dn,
           mc - none, dn - none);
  }
  return 0;
}
