// StackPool: the global pool of free stacks of one order, which the per-M
// caches exchange whole batches with, and the chunks of that order whose
// pages went back to the OS.
//
// Go 1.1 moved batches of stacks between per-M caches and a global list under
// a lock (stackcacherefill / stackcacherelease); this pool is lock-free. A
// batch is a metadata node holding up to kMaxBatch stack addresses; full
// nodes sit on one LockFreeStack, empty ones on another. Nodes are carved
// from dedicated, never-unmapped memory, so a racing pop may read a node's
// link at any time (see LockFreeStack), and the stacks themselves are never
// written by the pool: a free stack's pages stay as cold as its last user left
// them, and released pages stay released.
//
// Slot states (ChunkRecord) are the caller's to keep, but for what
// Scavenge() does: a stack is kPooled or kReleased while it is in a batch,
// kStranded while the pool holds it without a batch (Strand()).
//
// Scavenge() takes the batches one at a time and, with the ChunkMap, holds
// aside the stacks of chunks all of whose slots are free: it returns their
// pages to the OS (they stay mapped, guards and all) and keeps their records on
// a released list that TakeReleasedChunk() serves before anyone maps a new
// chunk. For the large orders it also returns the pages of each free stack one
// at a time.
//
// Thread-safe and lock-free on every path but Scavenge(), which runs one at a
// time (a concurrent call returns at once) and never blocks the others.

#ifndef ALLOC_STACK_POOL_H_
#define ALLOC_STACK_POOL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "alloc/chunk.h"
#include "alloc/chunk_map.h"
#include "alloc/lock_free_stack.h"
#include "alloc/sys_alloc.h"

namespace stackalloc {

class StackPool {
 public:
  // Most stacks one batch holds.
  static constexpr int kMaxBatch = 32;
  // Bytes of node memory taken from the node source at a time.
  static constexpr size_t kNodeChunk = 64 << 10;

  // Node memory: n bytes of zeroed memory, or nullptr.
  using NodeSource = void* (*)(size_t n);

  // The pool of `order`'s stacks, whose chunks `map` knows. `node_source`
  // provides node memory (tests inject failure).
  constexpr StackPool(int order, ChunkMap* map,
                      NodeSource node_source = &SysAlloc)
      : order_(order), map_(map), node_source_(node_source) {}
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  int order() const { return order_; }

  // Takes stacks[0, n) as one batch, 0 < n <= kMaxBatch (dies otherwise).
  // Returns false, taking nothing, if no node memory could be had (see
  // Strand()). Adds the bytes of node memory it obtained to *meta_sys.
  bool Put(void* const* stacks, int n, int64_t* meta_sys);

  // Moves the stacks of one batch into out[0, kMaxBatch) and returns how
  // many; 0 if the pool holds no batch.
  int Get(void** out);

  // Counts n stacks the caller has marked kStranded: free, in no batch. The
  // pool owns them; RescueStranded() and Scavenge() find them again.
  void Strand(int n) { stranded_.fetch_add(n, std::memory_order_relaxed); }

  // Moves up to `max` stranded stacks to state `to` and into out; returns
  // how many. Walks the order's chunks: slow, for when nodes ran out.
  int RescueStranded(void** out, int max, SlotState to);

  // Records a new chunk of this order (kept for the life of the process).
  void AddChunk(ChunkRecord* rec);

  // A chunk that Scavenge() released (its pages read as zero, every slot
  // kUncarved, guards kept), laid out with guard pages or without, or
  // nullptr.
  ChunkRecord* TakeReleasedChunk(bool guarded);

  struct ScavengeResult {
    bool ran = false;             // False if another pass was running.
    int64_t stacks_examined = 0;  // Free stacks the pass looked at.
    int64_t chunks_released = 0;  // Chunks whose pages went back whole...
    int64_t chunk_stacks = 0;     // ...holding this many stacks, of which
    int64_t chunk_stacks_were_released = 0;  // ...so many were kReleased.
    int64_t stacks_released = 0;  // Single stacks whose pages went back.
  };
  // Called with each release as it happens (one chunk, or one stack), before
  // the chunk or stack can be taken again, so the caller's statistics never
  // count memory twice.
  using OnRelease = void (*)(const ScavengeResult& release, void* arg);

  // Returns to the OS the pages of every chunk whose slots are all free in
  // the pool, and, if release_stacks, of every free stack still holding
  // pages; returns the totals. The pool serves throughout: the pass takes
  // one batch off it at a time and holds aside only the stacks of chunks
  // that may go whole, each chunk until it holds it whole.
  ScavengeResult Scavenge(bool release_stacks, OnRelease on_release = nullptr,
                          void* arg = nullptr);

  // Free stacks in batches, stranded stacks, and released chunks waiting for
  // reuse. Exact when no call is in flight.
  int64_t stacks() const { return stacks_.load(std::memory_order_relaxed); }
  int64_t stranded() const { return stranded_.load(std::memory_order_relaxed); }
  int64_t released_chunks() const {
    return released_count_.load(std::memory_order_relaxed);
  }
  // Stacks in batches whose pages Scavenge() returned (kReleased). The
  // caller says when it takes such stacks out (TookReleased).
  int64_t released_stacks() const {
    return released_stacks_.load(std::memory_order_relaxed);
  }
  void TookReleased(int64_t n) {
    released_stacks_.fetch_sub(n, std::memory_order_relaxed);
  }

 private:
  struct alignas(64) Node {
    std::atomic<Node*> next{nullptr};
    int n = 0;
    void* items[kMaxBatch];
  };
  using NodeStack = LockFreeStack<Node, &Node::next>;
  using ChunkStack = LockFreeStack<ChunkRecord, &ChunkRecord::pool_link>;

  class Holder;

  Node* NewNode(int64_t* meta_sys);
  // Scavenge's parts.
  void CountStranded();
  bool ReleaseChunk(ChunkRecord* rec, ScavengeResult* r, OnRelease on_release,
                    void* arg);
  void ReleaseStack(ChunkRecord* rec, int slot, ScavengeResult* r,
                    OnRelease on_release, void* arg);
  void PutBack(Node* n, NodeStack* to);

  const int order_;
  ChunkMap* const map_;
  const NodeSource node_source_;
  NodeStack full_;  // Batches of free stacks.
  // Batches a pass put back: it takes from full_ and seen_[seen_parity_],
  // puts back into the other, so it never meets a batch twice. Get() serves
  // them after full_.
  NodeStack seen_[2];
  int seen_parity_ = 0;                        // The scavenger's alone.
  NodeStack empty_;                            // Spare nodes.
  ChunkStack released_[2];                     // Without guards, with guards.
  std::atomic<ChunkRecord*> chunks_{nullptr};  // Every chunk, via order_next.
  std::atomic<int64_t> stacks_{0};
  std::atomic<int64_t> stranded_{0};
  std::atomic<int64_t> released_count_{0};
  std::atomic<int64_t> released_stacks_{0};
  std::atomic<bool> scavenging_{false};
};

}  // namespace stackalloc

#endif  // ALLOC_STACK_POOL_H_
