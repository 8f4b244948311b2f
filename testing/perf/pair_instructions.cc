// Runs a fixed number of stack alloc+free pairs for callgrind to count, on
// one thread, after a warm-up, so instructions per pair can be compared
// exactly even on a noisy machine:
//
//   bazel build -c opt //testing/perf:pair_instructions
//   valgrind --tool=callgrind --toggle-collect='*RunPairs*'
//     bazel-bin/testing/perf/pair_instructions ours 65536
//
// The contender is ours (stackalloc(n) / stackfree(v, n)), wipe (the same
// with SetStackWipe(true)), class (the same with n resolved once to a
// StackClass), bare (a thread-local free list per order) or old (the seed's
// old design); the size, in bytes, one of an
// order's (default 4096), is read from the command line, so the compiler
// folds nothing: each call finds its cache from a size it learns at run
// time, as BoostStackAllocator's and the fiber runtime's do.
//
// Instructions per pair = the collected total / kPairs (printed).

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/base/attributes.h"
#include "base/stack_sizes.h"
#include "stackalloc.h"
#include "testing/baselines/bare_free_list.h"
#include "testing/baselines/seed_designs.h"

namespace stackalloc {
namespace baseline {
namespace {

constexpr long kPairs = 1000000;

struct Ours {
  size_t n;
  void* Alloc() const { return stackalloc(n); }
  void Free(void* v) const { stackfree(v, n); }
};

struct Class {
  StackClass c;
  void* Alloc() const { return stackalloc(c); }
  void Free(void* v) const { stackfree(v, c); }
};

struct Bare {
  int order;
  void* Alloc() const { return BareAllocOrder(order); }
  void Free(void* v) const { BareFreeOrder(v, order); }
};

struct Old {
  size_t n;
  void* Alloc() const { return OldStackalloc(n); }
  void Free(void* v) const { OldStackfree(v, n); }
};

template <typename Contender>
ABSL_ATTRIBUTE_NOINLINE void RunPairs(const Contender& c, long n) {
  for (long i = 0; i < n; ++i) {
    void* p = c.Alloc();
    asm volatile("" : : "r"(p) : "memory");  // Keep p, like DoNotOptimize.
    c.Free(p);
  }
}

// One pair outside the collected function binds the M and fills caches.
template <typename Contender>
void Run(const Contender& c) {
  stackfree(stackalloc(kFixedStack), kFixedStack);  // Old, too, wants an M.
  c.Free(c.Alloc());
  RunPairs(c, kPairs);
}

}  // namespace
}  // namespace baseline
}  // namespace stackalloc

int main(int argc, char** argv) {
  using namespace stackalloc::baseline;  // NOLINT(build/namespaces)
  const char* which = argc > 1 ? argv[1] : "ours";
  const size_t n = argc > 2 ? strtoull(argv[2], nullptr, 10) : 4096;
  const int order = stackalloc::StackOrder(n);
  if (order < 0 || stackalloc::OrderStackSize(order) != n) {
    fprintf(stderr, "%s: the size must be an order's (4096 ... 1048576)\n",
            argv[0]);
    return 2;
  }
  if (strcmp(which, "ours") == 0) {
    Run(Ours{n});
  } else if (strcmp(which, "wipe") == 0) {
    stackalloc::SetStackWipe(true);  // Every call on the slow path.
    Run(Ours{n});
  } else if (strcmp(which, "class") == 0) {
    Run(Class{stackalloc::StackClass(n)});
  } else if (strcmp(which, "bare") == 0) {
    Run(Bare{order});
  } else if (strcmp(which, "old") == 0) {
    Run(Old{n});
  } else {
    fprintf(stderr, "usage: %s ours|wipe|class|bare|old [bytes]\n", argv[0]);
    return 2;
  }
  printf("%s %zu: %ld pairs; instructions per pair = collected Ir / %ld\n",
         which, n, kPairs, kPairs);
  return 0;
}
