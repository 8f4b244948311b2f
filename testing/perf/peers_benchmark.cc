// stackalloc beside its peers, in one table: a 4 KiB stack alloc + free pair,
// and a window of three live stacks per thread (allocate 3, free them LIFO),
// at 1 to 16 threads, for
//
//   ours          stackalloc / stackfree
//   bare          a bare thread-local free list, out of line (the limit)
//   old           the seed's design: one FixAlloc behind a global lock
//   glibc         malloc / free of a process on glibc's malloc
//   boost_pooled  Boost.Context pooled_fixedsize_stack, one per thread
//   tcmalloc      malloc / free of a process on tcmalloc (gperftools,
//                 tcmalloc_minimal)
//   jemalloc      malloc / free of a process on jemalloc
//   mimalloc      malloc / free of a process on mimalloc
//
//   bazel run -c opt //testing/perf:peers_benchmark [-- --benchmark_* flags]
//
// Why several processes: Debian's jemalloc, tcmalloc and mimalloc each
// define malloc and free, and tcmalloc and mimalloc even define
// __libc_malloc and __libc_free. Linked into one binary, whichever comes
// first on the link line silently becomes the process's malloc (and serves
// "glibc"), so glibc, Google Benchmark, the threads' own allocations and the
// other two replacements would all run on it (LD_DEBUG=bindings shows the
// executable's malloc and __libc_malloc bound to, say, libjemalloc.so.2 and
// libtcmalloc_minimal.so.4). dlopen(RTLD_LOCAL | RTLD_DEEPBIND) would keep
// their symbols apart, but all three are built with initial-exec TLS
// (STATIC_TLS): dlopen of libjemalloc.so.2 fails outright ("cannot allocate
// memory in static TLS block"), and the others would run as a second malloc
// beside the real one, which is not how they are deployed. So one source,
// peers_process.cc, is built into one binary per malloc
// (peers_<malloc>_benchmark, linked with cc_binary's `malloc`), where that
// allocator is the process's malloc from the first allocation on; ours and
// the peers that do not replace malloc run in the glibc one.
// This driver runs those binaries one after another (never concurrently),
// passing its flags through, collects their cells and prints ONE table.
// Each binary notes which library serves its malloc under the table.
//
// Repetitions are rounds: --benchmark_repetitions=N (default 3) runs every
// binary once per round, N rounds, and each cell is the median of its N
// runs. Spreading every contender's runs over the whole session keeps a
// change in the machine's load (on a shared 2-core box, it changes by the
// minute) from landing on some contenders and not on others. Unless given,
// --benchmark_min_time is 0.2 s per run, so the default session takes
// about two minutes. --benchmark_out=FILE merges the binaries' Google
// Benchmark JSON into FILE (testing/perf/benchmark_processes.h).

#include <string>
#include <vector>

#include "testing/perf/benchmark_processes.h"
#include "testing/perf/comparison_reporter.h"

namespace stackalloc {
namespace peers {
namespace {

// The per-malloc binaries, separated by commas, from BUILD; in the order
// their contenders appear, the first with the reference ("ours").
constexpr char kBinaries[] = PEERS_BINARIES;

int Main(int argc, char** argv) {
  const auto runfiles = baseline::OpenRunfiles("peers_benchmark", argv[0]);
  baseline::DriverFlags flags;
  if (runfiles == nullptr ||
      !baseline::ReadDriverFlags("peers_benchmark", argc, argv, &flags)) {
    return 1;
  }

  baseline::ComparisonReporter reporter("ours");
  reporter.set_row_per_contender(true);
  baseline::JsonMerger json;
  bool ok = true;
  for (int round = 1; round <= flags.rounds; ++round) {
    for (const std::string& name : baseline::Split(kBinaries)) {
      std::string path = runfiles->Rlocation("stackalloc/testing/perf/" + name);
      std::string title = name + ", round " + std::to_string(round) + " of " +
                          std::to_string(flags.rounds);
      ok = baseline::RunChild(title, path, {}, flags, reporter, &json) && ok;
    }
  }
  return baseline::FinishDriver(flags, reporter, json, ok);
}

}  // namespace
}  // namespace peers
}  // namespace stackalloc

int main(int argc, char** argv) { return stackalloc::peers::Main(argc, argv); }
