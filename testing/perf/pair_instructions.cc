// Runs a fixed number of stack alloc+free pairs for callgrind to count, on
// one thread, after a warm-up, so instructions per pair can be compared
// exactly even on a noisy machine:
//
//   bazel build -c opt //testing/perf:pair_instructions
//   valgrind --tool=callgrind --toggle-collect='*RunPairs*'
//     bazel-bin/testing/perf/pair_instructions ours      # or: ours64k, bare,
//     old
//
// ours64k is a pair of another order than kFixedStack (64 KiB), which finds
// its cache by the size's high bit instead of the one comparison.
//
// Instructions per pair = the collected total / kPairs (printed).

#include <cstdio>
#include <cstring>

#include "absl/base/attributes.h"
#include "testing/perf/contenders.h"

namespace stackalloc {
namespace baseline {
namespace {

constexpr long kPairs = 1000000;

template <typename Contender>
ABSL_ATTRIBUTE_NOINLINE void RunPairs(long n) {
  Contender c;
  for (long i = 0; i < n; ++i) {
    void* p = c.Alloc();
    asm volatile("" : : "r"(p) : "memory");  // Keep p, like DoNotOptimize.
    c.Free(p);
  }
}

// One pair outside the collected function: binds the M, fills caches.
template <typename Contender>
void WarmUp() {
  Contender c;
  c.Free(c.Alloc());
}

}  // namespace
}  // namespace baseline
}  // namespace stackalloc

int main(int argc, char** argv) {
  using namespace stackalloc::baseline;  // NOLINT(build/namespaces)
  const char* which = argc > 1 ? argv[1] : "ours";
  void (*run)(long) = nullptr;
  void (*warm_up)() = &WarmUp<Ours>;  // Old, too, wants a bound M.
  if (strcmp(which, "ours") == 0) {
    run = &RunPairs<Ours>;
  } else if (strcmp(which, "ours64k") == 0) {
    run = &RunPairs<OursOf<size_t{64} << 10>>;
    warm_up = &WarmUp<OursOf<size_t{64} << 10>>;
  } else if (strcmp(which, "bare") == 0) {
    run = &RunPairs<Bare>;
    warm_up = &WarmUp<Bare>;
  } else if (strcmp(which, "old") == 0) {
    run = &RunPairs<Old>;
  } else {
    fprintf(stderr, "usage: %s ours|ours64k|bare|old\n", argv[0]);
    return 2;
  }
  warm_up();
  run(kPairs);
  printf("%s: %ld pairs; instructions per pair = collected Ir / %ld\n", which,
         kPairs, kPairs);
  return 0;
}
