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

// Empties m's caches and idle Ms' into the pools, retries the unmapping of
// freed large stacks, then scavenges every order's pool. Returns the bytes
// released.
size_t Scavenge(M* m);

// Scavenges the pools if the policy says so: they hold more than the
// threshold of free stacks with pages, and at least twice what the last
// pass left. The entry point asks after a cache released stacks; m's own
// caches stay as they are.
void MaybeScavenge(M* m);

}  // namespace internal
}  // namespace stackalloc

#endif  // STACK_SCAVENGE_H_
