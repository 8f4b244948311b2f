#include "alloc/chunk_map.h"

#include "alloc/sys_alloc.h"
#include "base/check.h"

namespace stackalloc {

ChunkMap::Leaf* ChunkMap::LeafFor(uintptr_t key, int64_t* meta_sys) {
  std::atomic<Leaf*>& slot = root_[key >> kLeafBits];
  Leaf* leaf = slot.load(std::memory_order_acquire);
  if (leaf != nullptr) return leaf;
  // SysAlloc memory is zero: every entry starts as nullptr.
  auto* fresh = static_cast<Leaf*>(SysAlloc(sizeof(Leaf)));
  if (fresh == nullptr) return nullptr;
  if (slot.compare_exchange_strong(leaf, fresh, std::memory_order_acq_rel)) {
    *meta_sys += static_cast<int64_t>(sizeof(Leaf));
    return fresh;
  }
  // Another thread installed one first. Should the OS not take ours back,
  // it stays mapped, untouched, and counted.
  if (!SysFree(fresh, sizeof(Leaf))) {
    *meta_sys += static_cast<int64_t>(sizeof(Leaf));
  }
  return leaf;
}

bool ChunkMap::Set(const ChunkRecord* rec, int64_t* meta_sys) {
  STACKALLOC_CHECK(rec->base % kChunkGranule == 0 && rec->bytes != 0);
  const uintptr_t first = rec->base >> kGranuleShift;
  const uintptr_t last = (rec->base + rec->bytes - 1) >> kGranuleShift;
  STACKALLOC_CHECK(last >> (kRootBits + kLeafBits) == 0);
  // Map every leaf first, so that a failure leaves nothing half-set.
  for (uintptr_t key = first; key <= last; ++key) {
    if (LeafFor(key, meta_sys) == nullptr) return false;
  }
  for (uintptr_t key = first; key <= last; ++key) {
    Leaf* leaf = root_[key >> kLeafBits].load(std::memory_order_relaxed);
    leaf->entry[key & (kLeafSize - 1)].store(rec, std::memory_order_release);
  }
  return true;
}

void ChunkMap::Clear(const ChunkRecord* rec) {
  const uintptr_t first = rec->base >> kGranuleShift;
  const uintptr_t last = (rec->base + rec->bytes - 1) >> kGranuleShift;
  for (uintptr_t key = first; key <= last; ++key) {
    Leaf* leaf = root_[key >> kLeafBits].load(std::memory_order_acquire);
    STACKALLOC_CHECK(leaf != nullptr);
    const ChunkRecord* expected = rec;
    // Only our own entries: a neighbour may share no granule with us, but a
    // failed Set() may have left none.
    leaf->entry[key & (kLeafSize - 1)].compare_exchange_strong(
        expected, nullptr, std::memory_order_release);
  }
}

const ChunkRecord* ChunkMap::NextEntry(uintptr_t from,
                                       uintptr_t* granule) const {
  constexpr uintptr_t kKeys = uintptr_t{1} << (kRootBits + kLeafBits);
  uintptr_t key = from >> kGranuleShift;
  while (key < kKeys) {
    const Leaf* leaf = root_[key >> kLeafBits].load(std::memory_order_acquire);
    const uintptr_t leaf_end = ((key >> kLeafBits) + 1) << kLeafBits;
    if (leaf != nullptr) {
      for (; key < leaf_end; ++key) {
        const ChunkRecord* rec =
            leaf->entry[key & (kLeafSize - 1)].load(std::memory_order_acquire);
        if (rec != nullptr) {
          *granule = key << kGranuleShift;
          return rec;
        }
      }
    }
    key = leaf_end;
  }
  return nullptr;
}

}  // namespace stackalloc
