// The allocator's tunables (private to //stack; tcmalloc's parameters):
// each M's cache limit per order, whether new chunks get guard pages,
// whether stacks are wiped, and the scavenging threshold. Process-wide,
// read on slow paths only; the public setters are in stackalloc.h.
//
// Thread-safe: relaxed atomics (the wipe setting's are seq_cst). A change
// reaches each M at its next slow path that reads it.

#ifndef STACK_PARAMETERS_H_
#define STACK_PARAMETERS_H_

#include <cstddef>

namespace stackalloc {
namespace internal {

// The cache limit of an order, which Ms adopt at their next exchange with
// the pool (default: DefaultStackCacheLimit, sched/mcache.h).
int CacheLimit(int order);
void SetCacheLimit(int order, int limit);

// Whether chunks made from now on, and large stacks, get guard pages
// (default: true). Returns the previous setting.
bool GuardsEnabled();
bool SetGuardsEnabled(bool on);

// Whether stacks are wiped as they are handed out (default: false; see
// SetStackWipe in stackalloc.h). Returns the previous setting. seq_cst.
bool WipeEnabled();
bool SetWipeEnabled(bool on);

// Pooled bytes above which a release runs the scavenger (0: never).
size_t ScavengeThreshold();
void SetScavengeThreshold(size_t bytes);

}  // namespace internal
}  // namespace stackalloc

#endif  // STACK_PARAMETERS_H_
