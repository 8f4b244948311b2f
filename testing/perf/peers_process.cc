// One process of the peers benchmark (//testing/perf:peers_benchmark): this
// source is built once per allocator, as peers_<malloc>_benchmark, each binary
// linked with that allocator as the process's malloc (cc_binary's `malloc`;
// see BUILD, and peers_benchmark.cc for why each needs a process of its
// own). The driver runs them all and merges their tables.
//
// In every binary the contender named PEERS_MALLOC (glibc, tcmalloc,
// jemalloc or mimalloc) is the process's own malloc / free. The glibc binary
// also runs the contenders that leave malloc to glibc: ours, bare, old and
// boost_pooled.
//
//   bazel run -c opt //testing/perf:peers_jemalloc_benchmark   # one process
//   alone
//
// Which shared object serves malloc is checked, not assumed: the table
// notes it for each process, and a process where malloc or free is not
// PEERS_MALLOC_LIBRARY's (a --custom_malloc, a sanitizer's interceptors, a
// library that came first on the link line) reports its malloc contender as
// not run rather than time another allocator under that name.

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/base/config.h"
#include "base/stack_sizes.h"
#include "boost/context/pooled_fixedsize_stack.hpp"
#include "boost/context/stack_context.hpp"
#include "testing/perf/comparison_reporter.h"
#include "testing/perf/contenders.h"
#include "testing/perf/pair_workloads.h"

namespace stackalloc {
namespace peers {
namespace {

// The contender this binary is named after, and the file name prefix of the
// shared object that then serves malloc and free; both from BUILD.
constexpr char kMalloc[] = PEERS_MALLOC;
constexpr char kMallocLibrary[] = PEERS_MALLOC_LIBRARY;

// Whichever malloc this process runs on.
struct Malloc {
  void* Alloc() { return malloc(kFixedStack); }
  void Free(void* v) { free(v); }
};

// pooled_fixedsize_stack wraps a boost::pool and takes no lock, so it is safe
// only when one thread uses it: each benchmark thread has its own (the
// contender is constructed per thread), allocating and freeing on that
// thread. Its chunks come from malloc (glibc's here), and only while the
// pool grows.
//
// Header-only, it would be inlined into the benchmark loop; it is called out
// of line instead, like every other contender here (ours and bare are calls
// into another translation unit, malloc a call through the PLT), so that
// the table compares allocators, not call boundaries.
struct BoostPooled {
  boost::context::pooled_fixedsize_stack pool{kFixedStack};
  ABSL_ATTRIBUTE_NOINLINE boost::context::stack_context Alloc() {
    return pool.allocate();
  }
  ABSL_ATTRIBUTE_NOINLINE void Free(boost::context::stack_context s) {
    pool.deallocate(s);
  }
};

// The file name of the shared object that defines `symbol` for this process
// (the executable's own name if it defines it), or "" if none does.
std::string Provider(const char* symbol) {
  void* address = dlsym(RTLD_DEFAULT, symbol);
  Dl_info info;
  if (address == nullptr || dladdr(address, &info) == 0 ||
      info.dli_fname == nullptr) {
    return "";
  }
  const char* slash = strrchr(info.dli_fname, '/');
  return slash != nullptr ? slash + 1 : info.dli_fname;
}

bool ServedByMallocLibrary(const char* symbol) {
  return Provider(symbol).rfind(kMallocLibrary, 0) == 0;
}

int Main(int argc, char** argv) {
  const char* slash = strrchr(argv[0], '/');
  const std::string binary = slash != nullptr ? slash + 1 : argv[0];
  const bool on_glibc = strcmp(kMalloc, "glibc") == 0;
  std::vector<std::string> notes = {binary + ": malloc is " +
                                    Provider("malloc")};
  if (on_glibc) {
    baseline::RegisterPairAndWindow<baseline::Ours>("ours");
    baseline::RegisterPairAndWindow<baseline::Bare>("bare");
    baseline::RegisterPairAndWindow<baseline::Old>("old");
  }
  if (ServedByMallocLibrary("malloc") && ServedByMallocLibrary("free")) {
    baseline::RegisterPairAndWindow<Malloc>(kMalloc);
  } else {
    std::string why = "malloc is " + Provider("malloc") + "'s and free " +
                      Provider("free") + "'s here, not " + kMallocLibrary +
                      "'s";
    baseline::RegisterUnavailable(kMalloc, why);
    notes.push_back(binary + ": " + kMalloc + " did not run: " + why);
  }
  if (on_glibc) baseline::RegisterPairAndWindow<BoostPooled>("boost_pooled");

  baseline::ComparisonReporter reporter("ours");
  reporter.set_row_per_contender(true);
  reporter.SetCaption("pair",
                      "op = one 4 KiB alloc + free pair; one op per "
                      "iteration on each thread");
  reporter.SetCaption("window3",
                      "op = one 4 KiB alloc + free pair; each iteration "
                      "allocates 3, then frees them LIFO (= 3 ops)");
  for (std::string& note : notes) reporter.AddNote(std::move(note));
  return baseline::RunComparison(argc, argv, reporter);
}

}  // namespace
}  // namespace peers
}  // namespace stackalloc

#ifdef ABSL_HAVE_ADDRESS_SANITIZER
// Under ASan the sanitizer's malloc serves the process, and LeakSanitizer
// reports the object tcmalloc registers at startup and never frees.
extern "C" const char* __lsan_default_suppressions();
extern "C" const char* __lsan_default_suppressions() {
  return "leak:MallocExtension::Register\n";
}
#endif

int main(int argc, char** argv) { return stackalloc::peers::Main(argc, argv); }
