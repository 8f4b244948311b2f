#include "stack/scavenge.h"

#include <atomic>

#include "absl/base/attributes.h"
#include "alloc/stack_pool.h"
#include "base/stack_sizes.h"
#include "stack/heap.h"
#include "stack/large_stack.h"
#include "stack/parameters.h"
#include "stack/stack_cache.h"

namespace stackalloc {
namespace internal {
namespace {

// Pool bytes left by the last scavenge: the policy waits for twice that.
ABSL_CONST_INIT std::atomic<size_t> pooled_after_scavenge{0};

size_t PooledBytes() {
  size_t bytes = 0;
  for (int k = 0; k < kNumStackOrders; ++k) {
    const StackPool& pool = PoolOf(k);
    // Stacks whose pages went already hold no memory.
    bytes += static_cast<size_t>(pool.stacks() - pool.released_stacks()) *
             OrderStackSize(k);
  }
  return bytes;
}

// Books one release (a chunk or a stack) of an order on m's shard; returns
// the bytes it released.
size_t Account(M* m, int order, const StackPool::ScavengeResult& r) {
  StackOrderShard& st = m->mcache.stackcache.c[order].stats;
  const auto size = static_cast<int64_t>(OrderStackSize(order));
  const int64_t newly =
      (r.chunk_stacks - r.chunk_stacks_were_released + r.stacks_released) *
      size;
  st.carved.Add(-r.chunk_stacks);
  st.pool_released.Add(r.stacks_released - r.chunk_stacks_were_released);
  st.released.Add(r.chunk_stacks * size);
  st.sys.Add(-newly);
  return static_cast<size_t>(newly);
}

// Empties idle Ms' caches into the pools, retries the unmapping of freed
// large stacks, then scavenges every order's pool; returns the bytes
// released.
size_t ScavengePools(M* m) {
  // Idle Ms (their threads exited) would hold their caches until a thread
  // enters again: empty them into the pools, so their chunks can go too.
  ForEachIdleM([](M* idle, void*) { EmptyCaches(idle); }, nullptr);
  RetryLargeUnmaps(m, kAllLargeUnmaps);
  // Each release is booked as it happens, before another M can carve the
  // chunk or take the stack again: booked at the pass's end, a chunk
  // released and carved again meanwhile counted twice in stacks_sys.
  struct Booking {
    M* m;
    int order;
    size_t released;
  } booking{m, 0, 0};
  for (int k = 0; k < kNumStackOrders; ++k) {
    booking.order = k;
    PoolOf(k).Scavenge(
        /*release_stacks=*/k >= kReleaseStackOrder,
        [](const StackPool::ScavengeResult& one, void* arg) {
          auto* b = static_cast<Booking*>(arg);
          b->released += Account(b->m, b->order, one);
        },
        &booking);
  }
  const size_t released = booking.released;
  pooled_after_scavenge.store(PooledBytes(), std::memory_order_relaxed);
  return released;
}

}  // namespace

size_t Scavenge(M* m) {
  // The caller's own caches hold what it freed last (the dead Gs' stacks
  // after proc::Stop()): they go too, each stack checked on its way (a
  // stack freed twice dies here rather than be handed out twice).
  EmptyCaches(m);
  return ScavengePools(m);
}

void MaybeScavenge(M* m) {
  const size_t threshold = ScavengeThreshold();
  if (threshold == 0) return;
  const size_t pooled = PooledBytes();
  if (pooled > threshold &&
      pooled >= 2 * pooled_after_scavenge.load(std::memory_order_relaxed)) {
    ScavengePools(m);
  }
}

}  // namespace internal
}  // namespace stackalloc
