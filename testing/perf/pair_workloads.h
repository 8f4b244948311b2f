// The workloads that time contenders (testing/perf/contenders.h, or any class
// with `Handle Alloc()` returning a 4 KiB stack or block and `void
// Free(Handle)`), at 1, 2, 4, 8 and 16 threads, wall time, for
// ComparisonReporter's tables:
//
//   pair/<name>     Alloc then Free, one op per iteration;
//   window3/<name>  Alloc three, then Free them in reverse (LIFO, as nested
//                   calls would), three ops per iteration.
//
// An op is one Alloc + Free pair in both; ns/op is wall time over the ops of
// all threads together. Each benchmark thread constructs its own contender,
// so a contender with state (a pool) is used by one thread only.
//
// Registration is not thread-safe: register from main(), before running.

#ifndef TESTING_PERF_PAIR_WORKLOADS_H_
#define TESTING_PERF_PAIR_WORKLOADS_H_

#include <string>

#include "benchmark/benchmark.h"
#include "testing/perf/comparison_reporter.h"

namespace stackalloc {
namespace baseline {

inline constexpr int kWindow = 3;

template <typename Contender>
void PairWorkload(benchmark::State& state) {
  Contender contender;
  for (auto _ : state) {
    auto s = contender.Alloc();
    benchmark::DoNotOptimize(s);
    contender.Free(s);
  }
}

template <typename Contender>
void WindowWorkload(benchmark::State& state) {
  static_assert(kWindow == 3, "the loop body spells out the window");
  Contender contender;
  for (auto _ : state) {
    auto a = contender.Alloc();
    benchmark::DoNotOptimize(a);
    auto b = contender.Alloc();
    benchmark::DoNotOptimize(b);
    auto c = contender.Alloc();
    benchmark::DoNotOptimize(c);
    contender.Free(c);
    contender.Free(b);
    contender.Free(a);
  }
  state.counters[kOpsPerIteration] =
      benchmark::Counter(kWindow, benchmark::Counter::kAvgThreads);
}

namespace internal {
// Registers fn as `name` at every thread count.
void Register(const std::string& name, void (*fn)(benchmark::State&));
}  // namespace internal

// Registers "pair/<name>".
template <typename Contender>
void RegisterPair(const std::string& name) {
  internal::Register("pair/" + name, &PairWorkload<Contender>);
}

// Registers "pair/<name>", then "window3/<name>".
template <typename Contender>
void RegisterPairAndWindow(const std::string& name) {
  RegisterPair<Contender>(name);
  internal::Register("window3/" + name, &WindowWorkload<Contender>);
}

// Registers "pair/<name>" and "window3/<name>" as failing with `why`, so
// that the table shows the contender as missing rather than silently
// dropping it.
void RegisterUnavailable(const std::string& name, const std::string& why);

}  // namespace baseline
}  // namespace stackalloc

#endif  // TESTING_PERF_PAIR_WORKLOADS_H_
