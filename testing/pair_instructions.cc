// Runs a fixed number of stack alloc+free pairs for callgrind to count, on
// one thread, after a warm-up, so instructions per pair can be compared
// exactly even on a noisy machine:
//
//   bazel build -c opt //testing:pair_instructions
//   valgrind --tool=callgrind --toggle-collect='*RunPairs*'
//     bazel-bin/testing/pair_instructions ours      # or: bare, old
//
// Instructions per pair = the collected total / kPairs (printed).

#include <cstdio>
#include <cstring>

#include "absl/base/attributes.h"
#include "stackalloc.h"
#include "testing/baselines/bare_free_list.h"
#include "testing/baselines/old_stackalloc.h"

namespace stackalloc {
namespace {

constexpr long kPairs = 1000000;

template <void* (*Alloc)(), void (*Free)(void*)>
ABSL_ATTRIBUTE_NOINLINE void RunPairs(long n) {
  for (long i = 0; i < n; ++i) {
    void* p = Alloc();
    asm volatile("" : : "r"(p) : "memory");  // Keep p, like DoNotOptimize.
    Free(p);
  }
}

void* OursAlloc() { return stackalloc(kFixedStack); }
void OursFree(void* p) { stackfree(p, kFixedStack); }
void* OldAlloc() { return baseline::OldStackalloc(kFixedStack); }
void OldFree(void* p) { baseline::OldStackfree(p, kFixedStack); }

}  // namespace
}  // namespace stackalloc

int main(int argc, char** argv) {
  using namespace stackalloc;  // NOLINT(build/namespaces)
  const char* which = argc > 1 ? argv[1] : "ours";
  void (*run)(long) = nullptr;
  if (strcmp(which, "ours") == 0) {
    run = &RunPairs<&OursAlloc, &OursFree>;
  } else if (strcmp(which, "bare") == 0) {
    run = &RunPairs<&baseline::BareAlloc, &baseline::BareFree>;
  } else if (strcmp(which, "old") == 0) {
    run = &RunPairs<&OldAlloc, &OldFree>;
  } else {
    fprintf(stderr, "usage: %s ours|bare|old\n", argv[0]);
    return 2;
  }
  // Warm-up outside the collected function: binds the M, fills caches.
  void* p = which[0] == 'b' ? baseline::BareAlloc() : OursAlloc();
  which[0] == 'b' ? baseline::BareFree(p) : OursFree(p);
  run(kPairs);
  printf("%s: %ld pairs; instructions per pair = collected Ir / %ld\n", which,
         kPairs, kPairs);
  return 0;
}
