// Runs a fixed number of boost::context::fibers (create, resume to the end,
// destroy: the fiber benchmark's context op) on one thread, after a warm-up,
// for callgrind to count instructions per fiber exactly, whatever the
// machine's load:
//
//   bazel build -c opt //testing/perf:fiber_instructions
//   valgrind --tool=callgrind --toggle-collect='*RunFibers*'
//     bazel-bin/testing/perf/fiber_instructions ours 64
//   (ours | ours_noguards | fixedsize | pooled | protected, then KiB)
//
// Instructions per fiber = the collected total / kFibers (printed).

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/base/attributes.h"
#include "boost/context/fiber.hpp"
#include "boost/context/fixedsize_stack.hpp"
#include "boost/context/pooled_fixedsize_stack.hpp"
#include "boost/context/protected_fixedsize_stack.hpp"
#include "boost_stack_allocator.h"
#include "stackalloc.h"

namespace stackalloc {
namespace baseline {
namespace {

namespace ctx = boost::context;

constexpr long kFibers = 100000;

ctx::fiber Return(ctx::fiber&& caller) { return std::move(caller); }

template <typename Salloc>
ABSL_ATTRIBUTE_NOINLINE void RunFibers(Salloc& salloc, long n) {
  for (long i = 0; i < n; ++i) {
    ctx::fiber f(std::allocator_arg, salloc, Return);
    f = std::move(f).resume();
  }
}

template <typename Salloc>
int Run(size_t kib) {
  Salloc salloc(kib << 10);
  // Outside the collected function: binds the M, fills the caches and
  // pools, maps what the first fiber maps.
  ctx::fiber f(std::allocator_arg, salloc, Return);
  f = std::move(f).resume();
  RunFibers(salloc, kFibers);
  printf("%ld fibers of %zu KiB: divide the collected instructions by %ld\n",
         kFibers, kib, kFibers);
  return 0;
}

int Main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr,
            "usage: %s ours|ours_noguards|fixedsize|pooled|protected KIB\n",
            argv[0]);
    return 2;
  }
  const size_t kib = strtoul(argv[2], nullptr, 10);
  if (strcmp(argv[1], "ours") == 0) return Run<BoostStackAllocator>(kib);
  if (strcmp(argv[1], "ours_noguards") == 0) {
    SetStackGuards(false);
    return Run<BoostStackAllocator>(kib);
  }
  if (strcmp(argv[1], "fixedsize") == 0) {
    return Run<ctx::fixedsize_stack>(kib);
  }
  if (strcmp(argv[1], "pooled") == 0) {
    return Run<ctx::pooled_fixedsize_stack>(kib);
  }
  if (strcmp(argv[1], "protected") == 0) {
    return Run<ctx::protected_fixedsize_stack>(kib);
  }
  fprintf(stderr, "unknown contender %s\n", argv[1]);
  return 2;
}

}  // namespace
}  // namespace baseline
}  // namespace stackalloc

int main(int argc, char** argv) {
  return stackalloc::baseline::Main(argc, argv);
}
