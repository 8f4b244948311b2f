// Fault injection and inside views of the entry point, for tests only
// (testonly target //:stackalloc_test_peer; defined in stackalloc.cc).
//
// Thread-safe; a source installed here applies to chunks and records taken
// from then on.

#ifndef STACKALLOC_TEST_PEER_H_
#define STACKALLOC_TEST_PEER_H_

#include <cstdint>

#include "alloc/fix_alloc.h"

namespace stackalloc {
namespace internal {

class StackallocTestPeer {
 public:
  // Where new stack chunks come from; nullptr restores the default (aligned
  // SysAlloc). The source must return FixAlloc::kChunk-aligned memory.
  static void SetChunkSource(FixAlloc::ChunkSource source);
  // Where the global pool's batch records come from; nullptr: SysAlloc.
  static void SetNodeSource(FixAlloc::ChunkSource source);
  // Free stacks in the global pool and chunks released, straight from it.
  static int64_t PoolStacks();
  static int64_t PoolReleasedChunks();
};

}  // namespace internal
}  // namespace stackalloc

#endif  // STACKALLOC_TEST_PEER_H_
