// StackPool: the global pool of free stacks that per-M caches exchange whole
// batches with, and the chunks it has given back to the OS.
//
// Go 1.1 moved batches of stacks between per-M caches and a global list under
// a lock; this pool is lock-free. A batch is a metadata node holding up to
// kMaxBatch stack addresses; full nodes sit on one LockFreeStack, empty ones
// on another. Nodes are carved from dedicated, never-unmapped memory, so a
// racing pop may read a node's link at any time (see LockFreeStack), and the
// stacks themselves are never written by the pool: a free stack's pages stay
// as cold as its last user left them, and released chunks stay released.
//
// Scavenge() takes every batch at once, finds the chunks all of whose stacks
// are in the pool, tells the OS their pages are unused (they stay mapped),
// and keeps them on a released list that TakeReleasedChunk() serves before
// anyone maps a new chunk. Stacks must come from chunk_size-aligned chunks
// of chunk_size / stack_size stacks each for that to work.
//
// Thread-safe and lock-free on every path but Scavenge(), which runs one at a
// time (a concurrent call returns at once) and never blocks Put() or Get().

#ifndef ALLOC_STACK_POOL_H_
#define ALLOC_STACK_POOL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "alloc/fix_alloc.h"
#include "alloc/lock_free_stack.h"
#include "alloc/sys_alloc.h"

namespace stackalloc {

class StackPool {
 public:
  // Most stacks one batch holds.
  static constexpr int kMaxBatch = 32;
  // Bytes of node memory taken from the node source at a time.
  static constexpr size_t kNodeChunk = 64 << 10;

  // `node_source` provides node memory (tests inject failure).
  constexpr StackPool(size_t stack_size, size_t chunk_size,
                      FixAlloc::ChunkSource node_source = &SysAlloc)
      : stack_size_(stack_size),
        chunk_size_(chunk_size),
        node_source_(node_source) {}
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // Takes stacks[0, n) as one batch, 0 < n <= min(kMaxBatch, stacks per
  // chunk) (dies otherwise: Scavenge() relies on it). Returns false,
  // taking nothing, if no node memory could be had. Adds the bytes of node
  // memory it obtained to *meta_sys.
  bool Put(void* const* stacks, int n, int64_t* meta_sys);

  // Moves the stacks of one batch into out[0, kMaxBatch) and returns how
  // many; 0 if the pool holds no batch.
  int Get(void** out);

  // A chunk that Scavenge() released (its pages read as zero), or nullptr.
  void* TakeReleasedChunk();

  struct ScavengeResult {
    int64_t chunks_released = 0;  // Chunks whose pages went back to the OS.
    int64_t stacks_examined = 0;  // Free stacks the pass looked at.
    bool ran = false;             // False if another pass was running.
  };
  // Returns the pages of every chunk whose stacks are all in the pool to the
  // OS. Dies with "stackfree: stack freed twice" if it finds a stack twice.
  // While it sorts, the pool looks empty to Get(), which then returns 0 (a
  // caller may carve or map a chunk it would not otherwise have); batches
  // that stay go back before any page is released. `ran` is false if
  // another Scavenge() was running, which then did the work.
  ScavengeResult Scavenge();

  // Free stacks in the pool, and released chunks waiting for reuse. Exact
  // when no call is in flight.
  int64_t stacks() const { return stacks_.load(std::memory_order_relaxed); }
  int64_t released_chunks() const {
    return released_.load(std::memory_order_relaxed);
  }

 private:
  struct alignas(64) Node {
    std::atomic<Node*> next{nullptr};
    int n = 0;
    void* items[kMaxBatch];
  };
  using NodeStack = LockFreeStack<Node, &Node::next>;

  Node* NewNode(int64_t* meta_sys);

  const size_t stack_size_;
  const size_t chunk_size_;
  const FixAlloc::ChunkSource node_source_;
  NodeStack full_;           // Batches of free stacks.
  NodeStack released_list_;  // One released chunk per node.
  NodeStack empty_;          // Spare nodes.
  std::atomic<int64_t> stacks_{0};
  std::atomic<int64_t> released_{0};
  std::atomic<bool> scavenging_{false};
};

}  // namespace stackalloc

#endif  // ALLOC_STACK_POOL_H_
