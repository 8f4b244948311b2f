// Stack memory statistics: exact, lock-free, and cheap for the writers.
//
// Each M owns one MStatsShard and is its only writer; any thread may read any
// shard at any time. Shards sit on their own cache lines, so Ms updating their
// counters never contend. ReadMemStats() sums the shards of every M that ever
// registered. Sums are exact whenever the writers are quiescent; taken while
// they run, each counter is some recent value (no torn reads), but the sum
// may mix moments.

#ifndef STATS_MSTATS_H_
#define STATS_MSTATS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace stackalloc {

// A snapshot of the stack statistics, in bytes.
struct MemStats {
  // FixedStack stacks handed out by stackalloc and not yet stackfree'd (Go's
  // mstats.stacks_inuse).
  uint64_t stacks_inuse = 0;
  // Memory obtained from the OS for FixedStack stacks: whole chunks (Go's
  // mstats.stacks_sys).
  uint64_t stacks_sys = 0;
  // Free FixedStack stacks held in the per-M caches, ready for the fast path.
  uint64_t stacks_cached = 0;
  // Free FixedStack stacks in the global pool, between the caches.
  uint64_t stacks_pooled = 0;
  // Stack chunks whose pages went back to the OS (still mapped, not counted
  // in stacks_sys) and wait for reuse.
  uint64_t stacks_released = 0;
  // Memory for the global pool's batch records.
  uint64_t stacks_meta_sys = 0;
  // Stacks of other sizes, served by the general-purpose allocator.
  uint64_t large_stacks_inuse = 0;
};

// A counter with exactly one writer and any number of concurrent readers.
// Updates are a plain load and store (no locked instruction); reads never see
// a torn value.
class SingleWriterCounter {
 public:
  constexpr SingleWriterCounter() = default;

  int64_t value() const { return v_.load(std::memory_order_relaxed); }

  // Writer only.
  void Add(int64_t delta) { Set(value() + delta); }
  void Set(int64_t v) { v_.store(v, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// One M's stack counters. The owning M writes; anyone reads. Counts of
// FixedStack stacks are kept in stacks (not bytes) so that `cached` can double
// as the length of the M's stack cache: the fast path then updates the stats
// with the one store it must make anyway.
struct alignas(64) MStatsShard {
  // Free stacks in this M's cache (the cache's length).
  SingleWriterCounter cached;
  // FixedStack stacks this M took from the global pool or carved, minus those
  // it gave back to the pool. Per M it may be negative (stacks freed on
  // another M than the one that allocated them); the sum over all Ms is not.
  SingleWriterCounter held;
  // FixedStack stacks this M's FixAlloc handed out, minus those given back to
  // it, minus those that left the pool inside a chunk this M released.
  // carved - held, summed over all Ms, is the global pool.
  SingleWriterCounter carved;
  // Bytes of stack chunks this M obtained from the OS, minus those it
  // released.
  SingleWriterCounter sys;
  // Bytes of stack chunks this M released, minus those it took back.
  SingleWriterCounter released;
  // Bytes of pool metadata this M obtained.
  SingleWriterCounter meta_sys;
  // Bytes of large stacks allocated minus freed by this M.
  SingleWriterCounter large_inuse;

  // Registry link, written once before the shard is published.
  MStatsShard* next = nullptr;
};

// Makes `shard` visible to ReadMemStats(), for ever (shards are never
// unregistered, like Go's Ms). Lock-free; safe against concurrent readers.
void RegisterMStatsShard(MStatsShard* shard);

// Sums every registered shard. Lock-free; callable from any thread.
MemStats ReadMemStats();

}  // namespace stackalloc

#endif  // STATS_MSTATS_H_
