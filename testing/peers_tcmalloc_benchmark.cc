// The peers benchmark's tcmalloc process (gperftools' tcmalloc_minimal):
// linking tcmalloc makes it this process's malloc, so it runs apart from the
// other peers (see peers_benchmark.cc).
//
//   bazel run -c opt //testing:peers_tcmalloc_benchmark   # this part alone

#include "absl/base/config.h"
#include "base/stack_sizes.h"
#include "gperftools/tcmalloc.h"
#include "testing/peers.h"

namespace stackalloc {
namespace peers {
namespace {

struct Tcmalloc {
  void* Alloc() { return tc_malloc(kFixedStack); }
  void Free(void* v) { tc_free(v); }
};

}  // namespace
}  // namespace peers
}  // namespace stackalloc

#ifdef ABSL_HAVE_ADDRESS_SANITIZER
// Under ASan the sanitizer's malloc serves the process, and LeakSanitizer
// reports the object tcmalloc registers at startup and never frees.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:MallocExtension::Register\n";
}
#endif

int main(int argc, char** argv) {
  using namespace stackalloc::peers;  // NOLINT(build/namespaces)
  RegisterPeer<Tcmalloc>("tcmalloc");
  return RunPeers(argc, argv, "peers_tcmalloc_benchmark");
}
