// The stack heap: the process-wide half of the allocator (private to
// //:stackalloc). It owns the ChunkMap, one StackPool per order, the arena
// new chunks are cut from, the guard-page policy, the stacks above the
// largest order, and scavenging. The per-M half (caches, refill, flush) is in
// stack_cache.h; the public entry points in stackalloc.h.
//
// Everything here is thread-safe and lock-free; functions that take an M run
// on that M's thread and update only its statistics.

#ifndef STACK_HEAP_H_
#define STACK_HEAP_H_

#include <cstddef>
#include <cstdint>

#include "alloc/chunk.h"
#include "alloc/chunk_map.h"
#include "alloc/fix_alloc.h"
#include "alloc/stack_pool.h"
#include "sched/m.h"

namespace stackalloc {
namespace internal {

// Orders at and above this one return the pages of each free stack when
// scavenged, not only those of wholly free chunks: 64 KiB and up.
inline constexpr int kReleaseStackOrder = 4;

// Every stack chunk and large stack we have mapped.
ChunkMap& TheChunkMap();

// The global pool of `order`'s free stacks.
StackPool& PoolOf(int order);

// How chunks of an order are cut: `nslots` slots of `slot_size` bytes, each a
// `guard`-byte guard page then one stack. Slots per chunk: as many as fill
// 128 KiB (at least 2, at most 32), so a chunk holds at least one batch of
// its order; without guards, order 0 is the seed's 32 stacks per 128 KiB.
struct ChunkLayout {
  size_t stack_size;
  size_t guard;
  size_t slot_size;
  int nslots;
  size_t bytes() const { return slot_size * static_cast<size_t>(nslots); }
};
ChunkLayout LayoutOf(int order, bool guards);

// Whether chunks made from now on have guard pages (default: yes).
bool GuardsEnabled();

// Sets up (or, after the guard setting changed and its chunk is spent,
// resets) m's FixAlloc of `order` to carve slots of the current layout.
// Returns the layout it carves.
ChunkLayout PrepareStackalloc(M* m, int order);

// A stack above the largest order, in a mapping of its own with its guard
// page, or nullptr if the OS refused (then nothing changed).
void* LargeStackalloc(M* m, size_t n);
// Frees a stack from LargeStackalloc(n); dies if v is not one, or was
// allocated with another size.
void LargeStackfree(M* m, void* v, size_t n);

// Empties idle Ms' caches into the pools, then scavenges every order's pool.
// Returns the bytes released.
size_t Scavenge(M* m);
// Runs Scavenge() if the scavenging policy says so (SetScavengeThreshold).
void MaybeScavenge(M* m);

// The cache limit of an order that Ms adopt at their next exchange.
int CacheLimit(int order);

}  // namespace internal
}  // namespace stackalloc

#endif  // STACK_HEAP_H_
