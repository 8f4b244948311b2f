// An M's caches against the global pools (private to //stack; Go 1.1's
// stackcacherefill / stackcacherelease): refilling an empty cache, and
// releasing the older half of a full one, each stack checked against its
// chunk record as it leaves the M.
//
// Each function runs on the thread bound to m (or on the thread that
// borrowed the idle m, for EmptyCaches) and updates only m's statistics.

#ifndef STACK_STACK_CACHE_H_
#define STACK_STACK_CACHE_H_

#include "sched/m.h"

namespace stackalloc {
namespace internal {

// Fills m's empty cache of `order` (and adopts the order's current limit):
// one batch from the pool, else stranded stacks, else half a cache carved.
// Returns false, with no stack statistic changed, if not even one stack
// could be had.
bool StackCacheRefill(M* m, int order);

// Makes room in m's full cache of `order` (and adopts the order's current
// limit): all but the top half of its limit, the stacks least recently
// freed, go to the pool.
void StackCacheRelease(M* m, int order);

// Releases every stack of every cache of m to the pools.
void EmptyCaches(M* m);

}  // namespace internal
}  // namespace stackalloc

#endif  // STACK_STACK_CACHE_H_
