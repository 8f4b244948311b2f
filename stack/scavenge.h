// Returning free stack memory to the OS, and when to (private to //stack;
// Go's scavenger, for stacks): ScavengeStacks() and the policy
// SetScavengeThreshold() sets (stackalloc.h). docs/design.md, "Releasing
// memory", describes a pass.
//
// Thread-safe: passes over one order run one at a time (another is
// skipped); m is the calling thread's M, whose statistics book the result.

#ifndef STACK_SCAVENGE_H_
#define STACK_SCAVENGE_H_

#include <cstddef>

#include "sched/m.h"

namespace stackalloc {
namespace internal {

// Orders at and above this one return the pages of each free stack when
// scavenged, not only those of wholly free chunks: 64 KiB and up.
inline constexpr int kReleaseStackOrder = 4;

// Empties idle Ms' caches into the pools, then scavenges every order's pool.
// Returns the bytes released.
size_t Scavenge(M* m);

// Runs Scavenge() if the policy says so: the pools hold more than the
// threshold of free stacks with pages, and at least twice what the last
// pass left. The entry point asks after a cache released stacks.
void MaybeScavenge(M* m);

}  // namespace internal
}  // namespace stackalloc

#endif  // STACK_SCAVENGE_H_
