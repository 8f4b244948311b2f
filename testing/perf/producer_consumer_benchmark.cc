// Producer/consumer memory: stacks allocated on 2 producer Ms and freed on 2
// consumer Ms, for the seed's design (c9152a85: unbounded per-M free lists)
// and ours (bounded per-M caches over the global pool), in one run.
//
//   bazel run -c opt //testing/perf:producer_consumer_benchmark
//
// For each number of stacks passed it prints ns per stack, the peak of live
// stack bytes, and the peak of stacks_sys (sampled every 200 us by a
// separate thread), and their ratio. The seed's stacks_sys grows with the
// number of operations; ours stays under a constant.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>

#include "alloc/fix_alloc.h"
#include "proc/proc.h"
#include "sched/m.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/baselines/seed_designs.h"
#include "testing/perf/producer_consumer.h"

namespace stackalloc {
namespace {

constexpr int kProducers = 2;
constexpr int kConsumers = 2;
constexpr size_t kQueue = 64;

struct Row {
  double ns_per_op;
  uint64_t peak_live;
  uint64_t peak_sys;
};

template <typename ReadSys>
Row Measure(const proc::StackSource& d, int64_t ops, ReadSys read_sys) {
  std::atomic<bool> done{false};
  uint64_t peak_sys = read_sys();
  std::thread sampler([&] {
    while (!done.load(std::memory_order_relaxed)) {
      peak_sys = std::max(peak_sys, read_sys());
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  baseline::PassResult r =
      baseline::PassStacks(d, kProducers, kConsumers, kQueue, ops);
  done = true;
  sampler.join();
  peak_sys = std::max(peak_sys, read_sys());
  if (!r.ok) {
    fprintf(stderr, "a stack was refused or corrupted\n");
    exit(1);
  }
  return {r.seconds * 1e9 / static_cast<double>(ops), r.peak_live, peak_sys};
}

void Print(const char* design, int64_t ops, const Row& row) {
  printf(
      "%-6s %9lld %10.1f %14.0f %14.0f %10.1fx\n", design,
      static_cast<long long>(ops), row.ns_per_op, row.peak_live / 1024.0,
      row.peak_sys / 1024.0,
      static_cast<double>(row.peak_sys) / static_cast<double>(row.peak_live));
}

}  // namespace
}  // namespace stackalloc

int main() {
  using namespace stackalloc;  // NOLINT(build/namespaces)
  constexpr int kMs = kProducers + kConsumers;
  // Besides live stacks: per M a full cache, half a cache in flight and a
  // partly carved chunk (the bound that
  // testing/func/bounds/producer_consumer_test checks).
  const uint64_t per_m =
      kStackCacheDefaultLimit * 3 / 2 * kFixedStack + FixAlloc::kChunk;
  printf(
      "%d producers -> queue of %zu -> %d consumers; one op = one %zu-byte "
      "stack passed\n",
      kProducers, kQueue, kConsumers, kFixedStack);
  printf(
      "ours is bounded by peak live + %d Ms x %llu KiB = peak live + %llu "
      "KiB\n\n",
      kMs, static_cast<unsigned long long>(per_m / 1024),
      static_cast<unsigned long long>(kMs * per_m / 1024));
  printf("%-6s %9s %10s %14s %14s %11s\n", "design", "ops", "ns/op",
         "peak live KiB", "peak sys KiB", "sys/live");
  for (int64_t ops : {10000, 50000, 250000}) {
    // The seed's statistics only grow, so its peak is since the start.
    Print("seed", ops,
          Measure({&baseline::SeedStackalloc, &baseline::SeedStackfree}, ops,
                  [] { return baseline::ReadSeedMemStats().stacks_sys; }));
    Print("ours", ops, Measure(proc::kDefaultStackSource, ops, [] {
            return ReadMemStats().stacks_sys;
          }));
  }
  return 0;
}
