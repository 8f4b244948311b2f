// ChunkMap: from any address to the ChunkRecord of the stack chunk that holds
// it (tcmalloc's PageMap, Go's spanOf over its arena index), in two loads.
//
// A two-level radix tree over the 47-bit user address space, one entry per
// kChunkGranule (128 KiB): a root array of leaf pointers, and leaves of
// 2^16 record pointers (512 KiB each, mapped on first use and never freed;
// pages of a leaf that no chunk touches cost no memory).
//
// Lookup() is lock-free, never allocates and is async-signal-safe (the
// overflow handler uses it). Set() and Clear() may run concurrently with
// lookups and with each other for different chunks.

#ifndef ALLOC_CHUNK_MAP_H_
#define ALLOC_CHUNK_MAP_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "alloc/chunk.h"

namespace stackalloc {

class ChunkMap {
 public:
  constexpr ChunkMap() = default;
  ChunkMap(const ChunkMap&) = delete;
  ChunkMap& operator=(const ChunkMap&) = delete;

  // Maps every granule of rec's chunk to rec (rec->base granule-aligned).
  // Returns false, setting no entry, if a leaf could not be mapped; leaves
  // mapped before that stay for later use. Adds the bytes of every leaf it
  // mapped to *meta_sys, whether it succeeds or not.
  bool Set(const ChunkRecord* rec, int64_t* meta_sys);

  // Unmaps rec's chunk.
  void Clear(const ChunkRecord* rec);

  // The record of the chunk that contains a, or nullptr.
  const ChunkRecord* Lookup(uintptr_t a) const {
    const uintptr_t key = a >> kGranuleShift;
    if (key >> (kRootBits + kLeafBits) != 0) return nullptr;
    const Leaf* leaf = root_[key >> kLeafBits].load(std::memory_order_acquire);
    if (leaf == nullptr) return nullptr;
    const ChunkRecord* rec =
        leaf->entry[key & (kLeafSize - 1)].load(std::memory_order_acquire);
    return rec != nullptr && rec->Contains(a) ? rec : nullptr;
  }
  ChunkRecord* Lookup(uintptr_t a) {
    return const_cast<ChunkRecord*>(
        static_cast<const ChunkMap*>(this)->Lookup(a));
  }

  // For a walk over every chunk in address order (the stack census): the
  // record of the first granule at or after the one holding `from` that
  // has an entry, with that granule's address in *granule; nullptr if no
  // granule after it has one. A walk skips a record's other granules itself
  // (from = the chunk's end rounded up to a granule). A chunk set or cleared
  // during the walk may be seen or not; a record seen may be rewritten
  // meanwhile (a large stack's: read its layout with ChunkRecord::ReadLayout).
  // Visits only leaves that exist: the walk costs one load per root entry and
  // per granule of every leaf. Lock-free, never allocates, async-signal-safe.
  const ChunkRecord* NextEntry(uintptr_t from, uintptr_t* granule) const;

 private:
  static constexpr int kGranuleShift = 17;  // log2(kChunkGranule)
  static constexpr int kAddressBits = 47;
  static constexpr int kLeafBits = 16;
  static constexpr int kRootBits = kAddressBits - kGranuleShift - kLeafBits;
  static constexpr size_t kLeafSize = size_t{1} << kLeafBits;
  static_assert((size_t{1} << kGranuleShift) == kChunkGranule, "granule");

  struct Leaf {
    std::atomic<const ChunkRecord*> entry[kLeafSize];
  };

  Leaf* LeafFor(uintptr_t key, int64_t* meta_sys);

  std::atomic<Leaf*> root_[size_t{1} << kRootBits] = {};
};

}  // namespace stackalloc

#endif  // ALLOC_CHUNK_MAP_H_
