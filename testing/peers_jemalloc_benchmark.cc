// The peers benchmark's jemalloc process: linking jemalloc makes it this
// process's malloc, so it runs apart from the other peers (see
// peers_benchmark.cc).
//
//   bazel run -c opt //testing:peers_jemalloc_benchmark   # this part alone

#include "base/stack_sizes.h"
#include "jemalloc/jemalloc.h"
#include "testing/peers.h"

namespace stackalloc {
namespace peers {
namespace {

struct Jemalloc {
  void* Alloc() { return mallocx(kFixedStack, 0); }
  void Free(void* v) { dallocx(v, 0); }
};

}  // namespace
}  // namespace peers
}  // namespace stackalloc

int main(int argc, char** argv) {
  using namespace stackalloc::peers;  // NOLINT(build/namespaces)
  RegisterPeer<Jemalloc>("jemalloc");
  return RunPeers(argc, argv, "peers_jemalloc_benchmark");
}
