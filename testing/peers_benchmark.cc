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
//   bazel run -c opt //testing:peers_benchmark [-- --benchmark_* flags]
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
// about two minutes.

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "testing/comparison_reporter.h"
#include "tools/cpp/runfiles/runfiles.h"

extern char** environ;

namespace stackalloc {
namespace peers {
namespace {

using ::bazel::tools::cpp::runfiles::Runfiles;

// The per-malloc binaries, separated by commas, from BUILD; in the order
// their contenders appear, the first with the reference ("ours").
constexpr char kBinaries[] = PEERS_BINARIES;

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> words;
  std::istringstream in(s);
  for (std::string w; std::getline(in, w, ',');) words.push_back(w);
  return words;
}

// Runs `path` with `args` and --comparison_cells_out, adds its cells to
// `reporter`. Returns false, with a note on the table, if it failed.
// `name` titles its console output.
bool RunOne(const std::string& name, const std::string& path,
            const std::vector<std::string>& args,
            baseline::ComparisonReporter& reporter) {
  const char* tmpdir = getenv("TEST_TMPDIR");
  if (tmpdir == nullptr) tmpdir = getenv("TMPDIR");
  std::string cells =
      std::string(tmpdir != nullptr ? tmpdir : "/tmp") + "/peers_cells.XXXXXX";
  int fd = mkstemp(cells.data());
  if (fd < 0) {
    perror("mkstemp");
    return false;
  }
  close(fd);

  std::vector<std::string> argv_strings = {path};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  argv_strings.push_back("--comparison_cells_out=" + cells);
  std::vector<char*> child_argv;
  for (std::string& s : argv_strings) child_argv.push_back(s.data());
  child_argv.push_back(nullptr);

  std::cout << "\n==== " << name << "\n" << std::flush;
  pid_t pid;
  int status = 0;
  int err = posix_spawn(&pid, path.c_str(), nullptr, nullptr, child_argv.data(),
                        environ);
  bool ok = err == 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0;
  if (ok) {
    std::ifstream in(cells);
    ok = reporter.ReadCells(in);
  }
  unlink(cells.c_str());
  if (!ok) reporter.AddNote(name + " failed; its cells are missing");
  return ok;
}

int Main(int argc, char** argv) {
  std::string error;
  std::unique_ptr<Runfiles> runfiles(Runfiles::Create(argv[0], &error));
  if (runfiles == nullptr) {
    std::cerr << "peers_benchmark: cannot find runfiles: " << error << "\n";
    return 1;
  }
  constexpr char kRepetitions[] = "--benchmark_repetitions=";
  constexpr char kMinTime[] = "--benchmark_min_time=";
  int rounds = 3;
  bool min_time_given = false;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind(kRepetitions, 0) == 0) {
      rounds = atoi(arg.c_str() + strlen(kRepetitions));
      continue;
    }
    if (arg.rfind(kMinTime, 0) == 0) min_time_given = true;
    args.push_back(arg);
  }
  if (rounds < 1) {
    std::cerr << "peers_benchmark: --benchmark_repetitions must be >= 1\n";
    return 1;
  }
  if (!min_time_given) args.push_back(std::string(kMinTime) + "0.2");

  baseline::ComparisonReporter reporter("ours");
  reporter.set_row_per_contender(true);
  bool ok = true;
  for (int round = 1; round <= rounds; ++round) {
    for (const std::string& name : Split(kBinaries)) {
      std::string path = runfiles->Rlocation("stackalloc/testing/" + name);
      std::string title = name + ", round " + std::to_string(round) + " of " +
                          std::to_string(rounds);
      ok = RunOne(title, path, args, reporter) && ok;
    }
  }
  reporter.PrintTables(std::cout);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace peers
}  // namespace stackalloc

int main(int argc, char** argv) { return stackalloc::peers::Main(argc, argv); }
