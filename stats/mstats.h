// Stack memory statistics: exact, lock-free, and cheap for the writers.
//
// Each M owns one MStatsShard, with one StackOrderShard per stack order, and
// is their only writer; any thread may read any shard at any time. Shards
// sit on their own cache lines, so Ms updating their counters never contend.
// ReadMemStats() sums the shards of every M that ever registered. Sums are
// exact whenever the writers are quiescent; taken while they run, each
// counter is some recent value (no torn reads), but the sum may mix moments.
// docs/stats.md explains every field.

#ifndef STATS_MSTATS_H_
#define STATS_MSTATS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/stack_sizes.h"

namespace stackalloc {

// One stack order's part of a snapshot, in bytes.
struct StackOrderStats {
  uint64_t stack_size = 0;  // Bytes of each stack of this order.
  uint64_t inuse = 0;       // Handed out by stackalloc, not yet freed.
  uint64_t cached = 0;      // Free, in per-M caches.
  uint64_t pooled = 0;      // Free, in the global pool, pages kept.
  uint64_t released = 0;    // Free, pages returned to the OS (still mapped).
  uint64_t sys = 0;         // Obtained from the OS and not released.
};

// A snapshot of the stack statistics, in bytes unless said otherwise.
struct MemStats {
  // Stacks handed out by stackalloc and not yet stackfree'd, every order and
  // the stacks above the largest order (Go's mstats.stacks_inuse).
  uint64_t stacks_inuse = 0;
  // Stack memory obtained from the OS and not released: chunks of every
  // order (guard pages excluded) and large stacks' own mappings (Go's
  // mstats.stacks_sys), freed ones among them while the OS keeps their
  // mapping and pages (unmapping_sys). stacks_sys - inuse - cached - pooled
  // - unmapping_sys is the part of the Ms' current chunks not carved yet.
  uint64_t stacks_sys = 0;
  // Free stacks in the per-M caches, ready for the fast path.
  uint64_t stacks_cached = 0;
  // Free stacks in the global pools, between the caches.
  uint64_t stacks_pooled = 0;
  // Stack memory whose pages went back to the OS (whole chunks, and single
  // free stacks of the large orders): still mapped, not in stacks_sys,
  // reused before anything new is mapped; freed large stacks whose mapping
  // the OS keeps but whose pages it took (unmapping_released).
  uint64_t stacks_released = 0;
  // Memory for the allocator's own records: pool batches, chunk records,
  // the chunk map.
  uint64_t stacks_meta_sys = 0;
  // Address space of the guard pages below the stacks. No memory backs it;
  // not part of stacks_sys.
  uint64_t stacks_guard = 0;
  // Stacks carved without the guard page their chunk was laid out for (the
  // mprotect fallback's budget was spent). A count, not bytes.
  uint64_t stacks_unguarded = 0;
  // Stacks above the largest order (each with a mapping of its own) handed
  // out and not freed; part of stacks_inuse and stacks_sys.
  uint64_t large_stacks_inuse = 0;
  // Freed stacks above the largest order whose mapping the OS would not
  // take back (munmap fails near vm.max_map_count); a few retried at each
  // large stack's alloc and successful free, all at ScavengeStacks(). Their
  // pages are still
  // held (unmapping_sys, part of stacks_sys) or returned
  // (unmapping_released, part of stacks_released). Bytes.
  uint64_t unmapping_sys = 0;
  uint64_t unmapping_released = 0;
  // The same figures for each stack order.
  StackOrderStats orders[kNumStackOrders];
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

// One M's counters for one stack order; counts are in stacks where said.
// Per M they may be negative (a stack freed on another M than the one that
// allocated it); the sums over all Ms are not.
struct alignas(64) StackOrderShard {
  // Free stacks in the M's cache of this order (the cache's length: the
  // fast path's one store is this counter).
  SingleWriterCounter cached;
  // Stacks the M took into its cache (from the pool, or carved) minus those
  // it gave back to the pool.
  SingleWriterCounter held;
  // Stacks the M carved from chunks, minus those in chunks it released
  // whole. carved - held, summed, is the global pool.
  SingleWriterCounter carved;
  // Pooled stacks whose pages the M returned one at a time, minus those it
  // took back out of the pool (stacks).
  SingleWriterCounter pool_released;
  // Bytes of stack memory the M obtained (chunks, taking back released
  // pages) minus the bytes it released.
  SingleWriterCounter sys;
  // Bytes of whole chunks the M released, minus those it took back.
  SingleWriterCounter released;
  // Bytes of guard address space in the chunks the M obtained.
  SingleWriterCounter guard;
  // Stacks the M carved without the guard their chunk wanted.
  SingleWriterCounter unguarded;
};

// One M's counters.
struct alignas(64) MStatsShard {
  // The M's counters of each order; they live beside its caches (see
  // StackOrderShard::cached), and the M points at them before registering.
  StackOrderShard* orders[kNumStackOrders] = {};
  // Bytes of large stacks (own mappings) allocated minus freed by this M.
  SingleWriterCounter large_inuse;
  // Guard bytes below those, and how many of them got no guard.
  SingleWriterCounter large_guard;
  SingleWriterCounter large_unguarded;
  // Bytes of freed large stacks whose mapping the OS did not take back yet
  // (munmap failed; retried later): still resident, or pages returned.
  SingleWriterCounter large_unmapping_sys;
  SingleWriterCounter large_unmapping_released;
  // Bytes of the allocator's records this M obtained.
  SingleWriterCounter meta_sys;

  // Registry link, written once before the shard is published.
  MStatsShard* next = nullptr;
};

// Makes `shard` visible to ReadMemStats(), for ever (shards are never
// unregistered, like Go's Ms). Every orders[] pointer must be set. Lock-free;
// safe against concurrent readers.
void RegisterMStatsShard(MStatsShard* shard);

// Sums every registered shard. Lock-free; callable from any thread.
MemStats ReadMemStats();

}  // namespace stackalloc

#endif  // STATS_MSTATS_H_
