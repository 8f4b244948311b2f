// The peers benchmark's first process: ours, and every peer that leaves the
// process's malloc to glibc (see peers_benchmark.cc for why the peers that
// replace malloc run in processes of their own).
//
//   bazel run -c opt //testing:peers_ours_benchmark   # this part alone

#include <cstddef>

#include "absl/base/attributes.h"
#include "base/stack_sizes.h"
#include "boost/context/pooled_fixedsize_stack.hpp"
#include "boost/context/stack_context.hpp"
#include "testing/contenders.h"
#include "testing/peers.h"

// glibc's own allocator under names no malloc replacement is supposed to
// take (some do; main() checks).
extern "C" void* __libc_malloc(size_t size);
extern "C" void __libc_free(void* p);

namespace stackalloc {
namespace peers {
namespace {

using baseline::Bare;
using baseline::Old;
using baseline::Ours;

struct Glibc {
  void* Alloc() { return __libc_malloc(kFixedStack); }
  void Free(void* v) { __libc_free(v); }
};

// pooled_fixedsize_stack wraps a boost::pool and takes no lock, so it is safe
// only when one thread uses it: each benchmark thread has its own (the peer
// is constructed per thread), allocating and freeing on that thread. Its
// chunks come from malloc (glibc's here), and only while the pool grows.
//
// Header-only, it would be inlined into the benchmark loop; it is called out
// of line instead, like every other contender here (ours and bare are calls
// into another translation unit, the malloc replacements calls through the
// PLT), so that the table compares allocators, not call boundaries.
struct BoostPooled {
  boost::context::pooled_fixedsize_stack pool{kFixedStack};
  ABSL_ATTRIBUTE_NOINLINE boost::context::stack_context Alloc() {
    return pool.allocate();
  }
  ABSL_ATTRIBUTE_NOINLINE void Free(boost::context::stack_context s) {
    pool.deallocate(s);
  }
};

}  // namespace
}  // namespace peers
}  // namespace stackalloc

int main(int argc, char** argv) {
  using namespace stackalloc::peers;  // NOLINT(build/namespaces)
  RegisterPeer<Ours>("ours");
  RegisterPeer<Bare>("bare");
  RegisterPeer<Old>("old");
  if (FromGlibc("__libc_malloc") && FromGlibc("__libc_free")) {
    RegisterPeer<Glibc>("glibc");
  } else {
    RegisterUnavailable("glibc", "__libc_malloc is " +
                                     Provider("__libc_malloc") +
                                     "'s here, not glibc's");
  }
  RegisterPeer<BoostPooled>("boost_pooled");
  return RunPeers(argc, argv, "peers_ours_benchmark");
}
