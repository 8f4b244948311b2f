// The peers benchmark's mimalloc process: linking mimalloc makes it this
// process's malloc, so it runs apart from the other peers (see
// peers_benchmark.cc).
//
//   bazel run -c opt //testing:peers_mimalloc_benchmark   # this part alone

#include "base/stack_sizes.h"
#include "mimalloc.h"
#include "testing/peers.h"

namespace stackalloc {
namespace peers {
namespace {

struct Mimalloc {
  void* Alloc() { return mi_malloc(kFixedStack); }
  void Free(void* v) { mi_free(v); }
};

}  // namespace
}  // namespace peers
}  // namespace stackalloc

int main(int argc, char** argv) {
  using namespace stackalloc::peers;  // NOLINT(build/namespaces)
  RegisterPeer<Mimalloc>("mimalloc");
  return RunPeers(argc, argv, "peers_mimalloc_benchmark");
}
