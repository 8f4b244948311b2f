// stackalloc / stackfree: goroutine-style stacks without contention.
//
// The entry point of the library, after Go commit c9152a85 ("runtime:
// eliminate contention during stack allocation"). FixedStack (4 KiB) stacks
// come from the calling M's own bounded cache, so the common case takes no
// lock and touches only the M's own cache lines; the cache exchanges whole
// batches with a lock-free global pool, and carves new stacks from chunks
// with the M's own FixAlloc. Other sizes go to the general-purpose
// allocator, as in the seed.
//
// Both functions may only run on the scheduler stack (g == m->g0): a call
// from a G's own stack dies with "stackalloc not on scheduler stack" (or
// "stackfree not on scheduler stack"). A thread that never switched to a G
// is always on its g0. While the M is in malloc or GC (m->mallocing,
// m->gcing), only FixedStack requests are allowed; any other size dies with
// "stackalloc: in malloc, size=4096 want <n>".
//
// Thread-safe: any thread may call them; a stack may be freed on another
// thread than the one that allocated it.

#ifndef STACKALLOC_H_
#define STACKALLOC_H_

#include <cstddef>

#include "base/stack_sizes.h"

namespace stackalloc {

// Returns a stack of n bytes (n > 0), aligned to kFixedStack when
// n == kFixedStack, or nullptr if the OS refused memory (then no statistic
// changes). The contents are unspecified.
void* stackalloc(size_t n);

// Frees v, which stackalloc(n) returned, with the same n.
// REQUIRES: v != nullptr (checked in debug builds).
void stackfree(void* v, size_t n);

// Sets how many free stacks each M's cache may hold: an even number in
// [2, kStackCacheMax] (default 32). Half a cache moves to or from the global
// pool at a time. Each M adopts the new limit at its next exchange with the
// pool. Returns false, changing nothing, for any other value.
bool SetStackCacheLimit(int limit);

// Returns the pages of every stack chunk whose stacks are all free in the
// global pool to the OS (they stay mapped and are reused before any new
// chunk is mapped). The caches of idle Ms (of exited threads) are emptied
// into the pool first; those of Ms with a thread are not touched. Returns
// the bytes released; stacks_sys falls and stacks_released rises by exactly
// that much. Thread-safe; a call while another runs returns 0 at once.
size_t ScavengeStacks();

// The scavenging policy: when a cache hands a batch to the global pool and
// the pool then holds more than `bytes` of free stacks (and at least twice as
// much as after the previous scavenge, so a fragmented pool is not scanned
// over and over), that M runs ScavengeStacks(). 0, the default, turns the
// policy off.
void SetScavengeThreshold(size_t bytes);

}  // namespace stackalloc

#endif  // STACKALLOC_H_
