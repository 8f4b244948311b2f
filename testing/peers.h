// The workloads of the peers benchmark (//testing:peers_benchmark), shared by
// its per-allocator binaries.
//
// A peer is a class with `Handle Alloc()` returning a 4 KiB stack (or
// block) and `void Free(Handle)`. Each benchmark thread constructs its own
// peer, so a peer with state (a pool) is used by one thread only. Two
// workloads, both at 1, 2, 4, 8 and 16 threads:
//
//   pair/<peer>     Alloc then Free, one op per iteration;
//   window3/<peer>  Alloc three, then Free them in reverse (LIFO, as nested
//                   calls would), three ops per iteration.
//
// An op is one Alloc + Free pair in both; ns/op is wall time over the ops of
// all threads together.

#ifndef TESTING_PEERS_H_
#define TESTING_PEERS_H_

#include <string>

#include "benchmark/benchmark.h"
#include "testing/comparison_reporter.h"

namespace stackalloc {
namespace peers {

inline constexpr int kWindow = 3;

template <typename Peer>
void PairWorkload(benchmark::State& state) {
  Peer peer;
  for (auto _ : state) {
    auto s = peer.Alloc();
    benchmark::DoNotOptimize(s);
    peer.Free(s);
  }
}

template <typename Peer>
void WindowWorkload(benchmark::State& state) {
  static_assert(kWindow == 3, "the loop body spells out the window");
  Peer peer;
  for (auto _ : state) {
    auto a = peer.Alloc();
    benchmark::DoNotOptimize(a);
    auto b = peer.Alloc();
    benchmark::DoNotOptimize(b);
    auto c = peer.Alloc();
    benchmark::DoNotOptimize(c);
    peer.Free(c);
    peer.Free(b);
    peer.Free(a);
  }
  state.counters[baseline::kOpsPerIteration] =
      benchmark::Counter(kWindow, benchmark::Counter::kAvgThreads);
}

namespace internal {
void Register(const std::string& name, void (*pair)(benchmark::State&),
              void (*window)(benchmark::State&));
}  // namespace internal

// Registers both workloads for Peer as "pair/<name>" and "window3/<name>".
template <typename Peer>
void RegisterPeer(const std::string& name) {
  internal::Register(name, &PairWorkload<Peer>, &WindowWorkload<Peer>);
}

// Registers both workloads for `name` as failing with `why`, so that the
// table shows the peer as missing rather than silently dropping it.
void RegisterUnavailable(const std::string& name, const std::string& why);

// The file name of the shared object that defines `symbol` for this process
// (the executable's own name if it defines it), or "" if none does.
std::string Provider(const char* symbol);

// True if `symbol` resolves to glibc's definition.
bool FromGlibc(const char* symbol);

// main() of a peers binary: notes which library serves malloc in this
// process, runs the registered benchmarks and reports them (see
// baseline::RunComparison).
int RunPeers(int argc, char** argv, const std::string& binary);

}  // namespace peers
}  // namespace stackalloc

#endif  // TESTING_PEERS_H_
