// The heap of stack chunks (private to //stack; Go's mheap, for stacks): the
// ChunkMap from any address to its chunk's record, one StackPool per order,
// the arena new chunks are cut from, and the making of chunks: recorded,
// mapped, their guard pages installed.
//
// Thread-safe and lock-free; a function that takes an M runs on the thread
// bound to it and books what it obtains on that M's statistics.

#ifndef STACK_HEAP_H_
#define STACK_HEAP_H_

#include <cstddef>
#include <cstdint>

#include "alloc/chunk.h"
#include "alloc/chunk_map.h"
#include "alloc/guard.h"
#include "alloc/stack_pool.h"
#include "sched/m.h"

namespace stackalloc {
namespace internal {

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

// A chunk of `order` laid out with guard pages or without, for m's carver,
// every slot uncarved: one the scavenger released (its pages read as zero,
// its guards kept), else a new one cut from the arena, recorded, mapped and
// guarded (Go's mheap.allocManual). Books its stack bytes in m's sys (and
// out of released, for a released one). nullptr if the OS refused: then no
// statistic changed but stacks_meta_sys (records and map leaves obtained
// before the refusal stay for later use).
ChunkRecord* TakeChunk(M* m, int order, bool guards);

// The slot flags (alloc/chunk.h) that say how a slot's guard went.
uint8_t GuardFlags(GuardMethod how);

// A record from m's FixAlloc of records, its layout open for writing
// (ChunkRecord::EndRewrite closes it), or nullptr. Counts the metadata it
// maps in m's meta_sys. FreeRecord gives one back to m's FixAlloc.
ChunkRecord* NewRecord(M* m);
void FreeRecord(M* m, ChunkRecord* rec);

// Bytes of address space the arena has reserved.
size_t ArenaReserved();

// Where the heap's memory comes from, for fault injection in tests:
// `n` bytes of zeroed memory, or nullptr. Each applies to memory taken from
// then on; nullptr restores the default (the arena for chunks, which must
// be kChunkGranule-aligned; SysAlloc for pool nodes and records).
using MemorySource = void* (*)(size_t n);
void SetChunkSource(MemorySource source);
void SetNodeSource(MemorySource source);
void SetRecordSource(MemorySource source);

}  // namespace internal
}  // namespace stackalloc

#endif  // STACK_HEAP_H_
