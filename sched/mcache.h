// MCache: everything an M's share of the stack allocator owns (Go's mcache):
// its caches of free stacks, one per order, as the fast paths see them; its
// carvers, which cut the next stacks of a fresh chunk; and its FixAlloc of
// chunk records.
//
// Who may touch what: the thread bound to the M, alone, reads and writes
// all of it (the fast paths the caches, the slow paths everything), except
// the caches' statistics (StackCache::stats), which any thread may read at
// any time, and an idle M's caches and carvers, which a scavenger that has
// borrowed the M (sched/m.h, ForEachIdleM) may empty.

#ifndef SCHED_MCACHE_H_
#define SCHED_MCACHE_H_

#include <cstddef>
#include <cstdint>

#include "alloc/chunk.h"
#include "alloc/fix_alloc.h"
#include "base/stack_sizes.h"
#include "stats/mstats.h"

namespace stackalloc {

// Capacity of each of an M's stack caches; the limit (how much is used) is
// tunable up to this, see SetStackCacheLimit() in stackalloc.h.
inline constexpr int kStackCacheMax = 64;

// Default cache limit of an order: 32 stacks of 4 KiB, then as many as make
// 128 KiB, and never fewer than 2 (so a cache can hold one and pass one on).
constexpr int DefaultStackCacheLimit(int order) {
  return (32 >> order) > 2 ? (32 >> order) : 2;
}
// The default limit of order 0 (FixedStack).
inline constexpr int kStackCacheDefaultLimit = DefaultStackCacheLimit(0);

// One order's cache of free stacks in an M (Go 1.1's stackcache): a bounded
// LIFO array. With k = stats.cached, the stacks are slot[1..k] (slot[k] the
// top), never more than `limit`. A cache with limit 0 is closed: both fast
// paths pass it by.
struct alignas(64) StackCache {
  // This order's counters; stats.cached is the cache's length.
  StackOrderShard stats;
  int64_t limit = 0;
  size_t stack_size = 0;
  // slot[0] is never a stack (nullptr), so the fast path's "is this the
  // stack freed last?" comparison with slot[k] needs no k == 0 case.
  void* slot[kStackCacheMax + 1] = {};
};

// An M's caches as the fast paths see them: c[0] serves kFixedStack
// directly; every request finds its cache in one load from by_class, at its
// StackClassOf (base/stack_sizes.h).
struct StackCaches {
  // One per order, then one more, always closed: the cache of every class
  // no order serves (n == 0, n above kMaxOrderStack), so that the fast
  // paths need no range check.
  StackCache c[kNumStackOrders + 1];
  // The cache of each class: c[k] for order k's class, the closed one for
  // the others, and for every order but 0 while the M is in malloc or GC
  // (M::set_mallocing), where only kFixedStack requests are allowed.
  StackCache* by_class[kNumStackClasses] = {};

  constexpr StackCaches() : c() {
    for (StackCache*& p : by_class) p = &c[kNumStackOrders];
    for (int k = 0; k < kNumStackOrders; ++k) {
      by_class[StackClassOfOrder(k)] = &c[k];
    }
  }
  StackCaches(const StackCaches&) = delete;
  StackCaches& operator=(const StackCaches&) = delete;

  // Opens (the M's own orders) or closes every order but 0 to the fast
  // paths; order 0 stays open.
  void OpenOrders(bool open) {
    for (int k = 1; k < kNumStackOrders; ++k) {
      by_class[StackClassOfOrder(k)] = open ? &c[k] : &c[kNumStackOrders];
    }
  }
};

// Where an M carves new stacks of one order (the seed's per-M stack
// FixAlloc; Go 1.4's stackpoolalloc carving a fresh span): the chunk in
// hand and its next uncarved slot. The chunk is the M's until every slot is
// carved; its record says its layout.
struct StackCarver {
  ChunkRecord* chunk = nullptr;
  int next = 0;
};

// Go's mcache, for stacks.
struct MCache {
  StackCaches stackcache;
  StackCarver carver[kNumStackOrders];
  // This M's ChunkRecords (Go's mheap.spanalloc, per M).
  FixAlloc chunkalloc;
};

}  // namespace stackalloc

#endif  // SCHED_MCACHE_H_
