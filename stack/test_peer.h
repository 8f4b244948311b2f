// Fault injection and inside views of the entry point, for tests only
// (testonly target //stack:test_peer).
//
// Thread-safe; a source installed here applies to chunks and records taken
// from then on.

#ifndef STACK_TEST_PEER_H_
#define STACK_TEST_PEER_H_

#include <cstddef>
#include <cstdint>

#include "alloc/chunk.h"

namespace stackalloc {
namespace internal {

class StackallocTestPeer {
 public:
  // n bytes of zeroed memory, or nullptr.
  using Source = void* (*)(size_t n);

  // Where new stack chunks come from; nullptr restores the default (the
  // arena). The source must return kChunkGranule-aligned memory.
  static void SetChunkSource(Source source);
  // Where the global pools' batch records come from; nullptr: SysAlloc.
  static void SetNodeSource(Source source);
  // Where chunk records come from; nullptr: SysAlloc.
  static void SetRecordSource(Source source);
  // Free stacks in an order's global pool (stranded ones included), its
  // stranded stacks, and its released chunks, straight from it.
  static int64_t PoolStacks(int order = 0);
  static int64_t PoolStranded(int order = 0);
  static int64_t PoolReleasedChunks(int order = 0);
  // Stacks in an order's pool whose pages were returned one at a time.
  static int64_t PoolReleasedStacks(int order = 0);
  // The record of the chunk holding p, or nullptr.
  static const ChunkRecord* ChunkOf(const void* p);
  // Address space the arena has reserved.
  static size_t ArenaReserved();
  // Where the census reads which pages are resident (mincore by default):
  // `n` bytes at v, one byte per page into vec; false if refused. nullptr
  // restores the default.
  using ResidencySource = bool (*)(const void* v, size_t n, unsigned char* vec);
  static void SetResidencySource(ResidencySource source);
  // How a chunk of `order` made now is laid out: stacks in it, and bytes.
  static int ChunkStacks(int order);
  static size_t ChunkBytes(int order);
};

}  // namespace internal
}  // namespace stackalloc

#endif  // STACK_TEST_PEER_H_
