#include "stack/test_peer.h"

#include "alloc/chunk_map.h"
#include "alloc/stack_pool.h"
#include "stack/heap.h"
#include "stack/parameters.h"
#include "stack/usage.h"

namespace stackalloc {
namespace internal {

void StackallocTestPeer::SetChunkSource(Source source) {
  internal::SetChunkSource(source);
}
void StackallocTestPeer::SetNodeSource(Source source) {
  internal::SetNodeSource(source);
}
void StackallocTestPeer::SetRecordSource(Source source) {
  internal::SetRecordSource(source);
}
int64_t StackallocTestPeer::PoolStacks(int order) {
  return PoolOf(order).stacks() + PoolOf(order).stranded();
}
int64_t StackallocTestPeer::PoolStranded(int order) {
  return PoolOf(order).stranded();
}
int64_t StackallocTestPeer::PoolReleasedChunks(int order) {
  return PoolOf(order).released_chunks();
}
int64_t StackallocTestPeer::PoolReleasedStacks(int order) {
  return PoolOf(order).released_stacks();
}
const ChunkRecord* StackallocTestPeer::ChunkOf(const void* p) {
  return TheChunkMap().Lookup(reinterpret_cast<uintptr_t>(p));
}
size_t StackallocTestPeer::ArenaReserved() { return internal::ArenaReserved(); }
void StackallocTestPeer::SetResidencySource(ResidencySource source) {
  internal::SetResidencySource(source);
}
int StackallocTestPeer::ChunkStacks(int order) {
  return LayoutOf(order, GuardsEnabled()).nslots;
}
size_t StackallocTestPeer::ChunkBytes(int order) {
  return LayoutOf(order, GuardsEnabled()).bytes();
}

}  // namespace internal
}  // namespace stackalloc
