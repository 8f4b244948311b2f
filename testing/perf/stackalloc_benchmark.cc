// A stackalloc + stackfree pair on every thread, at 1 to 16 threads, for
// every stack order: ours beside the seed's old design (one FixAlloc behind
// a global lock for 4 KiB, malloc for the other sizes, as in the seed) and a
// bare thread-local free list called out of line (the physical limit). Then
// the cost of carving a new chunk, with guard pages and without, and of a
// stack used once with wiping off and on (SetStackWipe).
//
//   bazel run -c opt //testing/perf:stackalloc_benchmark
//
// Prints Google Benchmark's report, then a table per group of ns/op (wall
// time over the pairs of all threads together) with each contender's ratio
// to ours; in the carve tables, ns per chunk carved (ours = with guards);
// in the wipe tables, ns per stack used once, with wiping off (ours) and
// on (ours_wipe), one column per order.

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "benchmark/benchmark.h"
#include "sched/m.h"
#include "stack/test_peer.h"
#include "stackalloc.h"
#include "testing/perf/comparison_reporter.h"
#include "testing/perf/contenders.h"
#include "testing/perf/pair_workloads.h"

namespace stackalloc {
namespace baseline {
namespace {

using ::stackalloc::internal::StackallocTestPeer;

// "pair" for 4 KiB (the seed's table), "pair_<n>KiB" for the others.
std::string PairGroup(size_t n) {
  return n == kFixedStack ? "pair" : "pair_" + std::to_string(n >> 10) + "KiB";
}

template <size_t N>
void RegisterOrder() {
  const std::string group = PairGroup(N) + "/";
  internal::Register(group + "ours", &PairWorkload<OursOf<N>>);
  internal::Register(group + "ours_class", &PairWorkload<OursClassOf<N>>);
  internal::Register(group + "old", &PairWorkload<OldOf<N>>);
  internal::Register(group + "bare", &PairWorkload<BareOf<N>>);
}

template <size_t... Ns>
void RegisterOrders(std::index_sequence<Ns...>) {
  (RegisterOrder<kStackMin << Ns>(), ...);
}

// One iteration carves one new chunk of the order: its stacks are taken and
// kept, so every refill carves (the benchmark frees them at the end).
void Carve(benchmark::State& state, int order, bool guards) {
  SetStackGuards(guards);
  const size_t size = OrderStackSize(order);
  const int per_chunk = StackallocTestPeer::ChunkStacks(order);
  std::vector<void*> kept;
  // Drain what the cache and pool hold, so the timed loop only carves.
  for (int i = 0; i < 4 * kStackCacheMax; ++i) kept.push_back(stackalloc(size));
  for (auto _ : state) {
    for (int i = 0; i < per_chunk; ++i) {
      void* p = stackalloc(size);
      benchmark::DoNotOptimize(p);
      kept.push_back(p);
    }
  }
  for (void* p : kept) stackfree(p, size);  // After the timed loop.
  state.counters["stacks_per_chunk"] = per_chunk;
  SetStackGuards(true);
}

void RegisterCarve(int order) {
  const std::string group =
      "carve_" + std::to_string(OrderStackSize(order) >> 10) + "KiB/";
  for (auto [name, guards] : {std::pair{"ours", true}, {"no_guards", false}}) {
    benchmark::RegisterBenchmark((group + name).c_str(), &Carve, order, guards)
        ->Iterations(1000)
        ->UseRealTime()
        ->Unit(benchmark::kNanosecond);
  }
}

// One user of a stack per iteration, on one thread: the stack allocated,
// written (a byte into its top page, as a fiber's first frame would, or
// into every page, as one that went to the bottom would), and freed; with
// wiping off (ours) or on (ours_wipe, SetStackWipe). A column per order.
void WipePair(benchmark::State& state, bool wipe, bool every_page) {
  const size_t size = static_cast<size_t>(state.range(0)) << 10;
  const size_t pages = every_page ? size / kPageSize : 1;
  const bool was = SetStackWipe(wipe);
  for (auto _ : state) {
    auto* v = static_cast<volatile char*>(stackalloc(size));
    for (size_t p = 0; p < pages; ++p) v[size - 1 - p * kPageSize] = 1;
    stackfree(const_cast<char*>(v), size);
  }
  SetStackWipe(was);
}

void RegisterWipe() {
  for (auto [group, every_page] :
       {std::pair{"wipe_top", false}, {"wipe_all", true}}) {
    for (auto [name, wipe] : {std::pair{"ours", false}, {"ours_wipe", true}}) {
      auto* b = benchmark::RegisterBenchmark(
          (std::string(group) + "/" + name).c_str(), &WipePair, wipe,
          every_page);
      b->ArgName("kib")->UseRealTime()->Unit(benchmark::kNanosecond);
      for (int k = 0; k < kNumStackOrders; ++k) {
        b->Arg(static_cast<int64_t>(OrderStackSize(k) >> 10));
      }
    }
  }
}

}  // namespace
}  // namespace baseline
}  // namespace stackalloc

int main(int argc, char** argv) {
  using namespace stackalloc::baseline;  // NOLINT(build/namespaces)
  RegisterOrders(std::make_index_sequence<stackalloc::kNumStackOrders>());
  for (int order : {0, 4, 8}) RegisterCarve(order);
  RegisterWipe();
  ComparisonReporter reporter("ours");
  for (const char* group : {"wipe_top", "wipe_all"}) {
    reporter.SetColumns(group, "kib", "stack KiB");
  }
  reporter.SetCaption("wipe_top",
                      "op = alloc, write the top page, free; one thread");
  reporter.SetCaption("wipe_all",
                      "op = alloc, write every page, free; one thread");
  reporter.SetCaption("pair",
                      "op = one 4 KiB alloc + free pair on each thread");
  reporter.AddNote(
      "ours: stackalloc(n) / stackfree(v, n); ours_class: the same size "
      "resolved once per thread to a StackClass, from a value known only at "
      "run time");
  reporter.AddNote(
      "wipe: ours_wipe is ours with SetStackWipe(true): every call on the "
      "slow path, a 4 KiB stack's page zeroed, a larger one's resident "
      "pages found with mincore() and zeroed");
  reporter.AddNote(
      "carve: ns per chunk carved (stacks_per_chunk stacks, each slot's "
      "guard installed with MADV_GUARD_INSTALL); no_guards: the seed's "
      "layout");
  return RunComparison(argc, argv, reporter);
}
