// What the per-allocator binaries of the peers benchmark
// (//testing:peers_benchmark) share: the workloads of
// testing/pair_workloads.h, and which library serves malloc.

#ifndef TESTING_PEERS_H_
#define TESTING_PEERS_H_

#include <string>

#include "testing/pair_workloads.h"

namespace stackalloc {
namespace peers {

// Registers both workloads for Peer as "pair/<name>" and "window3/<name>".
template <typename Peer>
void RegisterPeer(const std::string& name) {
  baseline::RegisterPairAndWindow<Peer>(name);
}

// Registers both workloads for `name` as failing with `why`, so that the
// table shows the peer as missing rather than silently dropping it.
void RegisterUnavailable(const std::string& name, const std::string& why);

// The file name of the shared object that defines `symbol` for this process
// (the executable's own name if it defines it), or "" if none does.
std::string Provider(const char* symbol);

// True if `symbol` resolves to glibc's definition.
bool FromGlibc(const char* symbol);

// main() of a peers binary: notes which library serves malloc in this
// process, runs the registered benchmarks and reports them (see
// baseline::RunComparison).
int RunPeers(int argc, char** argv, const std::string& binary);

}  // namespace peers
}  // namespace stackalloc

#endif  // TESTING_PEERS_H_
