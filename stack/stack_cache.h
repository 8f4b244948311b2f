// The per-M half of the allocator (private to //:stackalloc): refilling and
// flushing an M's caches against the global pools (Go 1.1's
// stackcacherefill / stackcacherelease), and the ownership checks on every
// stack that changes hands.
//
// Each function runs on the thread bound to m (or on a thread that owns an
// idle m, for EmptyCaches) and updates only m's statistics.

#ifndef STACK_STACK_CACHE_H_
#define STACK_STACK_CACHE_H_

#include <cstddef>

#include "alloc/chunk.h"
#include "base/check.h"
#include "sched/m.h"

namespace stackalloc {
namespace internal {

// The state of a stack in an M's cache, and of one handed out. The default
// build does not tell them apart (its fast paths never touch the records);
// debug and checked builds do, and check every call.
inline constexpr bool kCheckEveryCall = STACKALLOC_DEBUG_CHECKS != 0;
inline constexpr SlotState kInCache =
    kCheckEveryCall ? SlotState::kCached : SlotState::kTaken;
inline constexpr SlotState kHandedOut =
    kCheckEveryCall ? SlotState::kLive : SlotState::kTaken;

// Go 1.1's stackcacherefill: fills m's empty cache of `order`: one batch
// from the pool, else stranded stacks, else half a cache carved by m's
// FixAlloc. Returns false, with no stack statistic changed, if not even one
// stack could be had.
bool StackCacheRefill(M* m, int order);

// Go 1.1's stackcacherelease: makes room in m's full cache of `order` (and
// adopts a new limit): all but the top half of its limit, the stacks least
// recently freed, go to the pool.
void StackCacheRelease(M* m, int order);

// Empties every cache of m into the pools.
void EmptyCaches(M* m);

// Checked builds: a stack leaves m's cache for its caller (kCached ->
// kLive), or comes back from one (kLive -> kCached), with n the caller's size.
void CheckHandOut(void* v);
void CheckTakeBack(void* v, size_t n);

// Dies with "stackfree: ..." for v freed right after being freed (or nil).
[[noreturn]] ABSL_ATTRIBUTE_COLD void DieFreedAgain(void* v);

// Dies with "stackfree: <size>-byte stack 0x... <what>[ <n>]".
[[noreturn]] ABSL_ATTRIBUTE_COLD void DieBadFree(const char* what,
                                                 const void* v, size_t n,
                                                 size_t size);

}  // namespace internal
}  // namespace stackalloc

#endif  // STACK_STACK_CACHE_H_
