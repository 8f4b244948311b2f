#include "stats/mstats.h"

#include "base/check.h"

namespace stackalloc {
namespace {

std::atomic<MStatsShard*> all_shards{nullptr};

// Mid-flight sums can mix moments (a batch counted as moved but not yet as
// cached); never report such a transient as a huge unsigned number.
uint64_t NonNegative(int64_t v) { return v < 0 ? 0 : static_cast<uint64_t>(v); }

// Sums of one order's counters over every shard.
struct OrderSums {
  int64_t cached = 0, held = 0, carved = 0, pool_released = 0, sys = 0,
          released = 0, guard = 0, unguarded = 0;

  void Add(const StackOrderShard& s) {
    cached += s.cached.value();
    held += s.held.value();
    carved += s.carved.value();
    pool_released += s.pool_released.value();
    sys += s.sys.value();
    released += s.released.value();
    guard += s.guard.value();
    unguarded += s.unguarded.value();
  }

  StackOrderStats ToStats(int order) const {
    const auto size = static_cast<int64_t>(OrderStackSize(order));
    StackOrderStats st;
    st.stack_size = static_cast<uint64_t>(size);
    st.inuse = NonNegative(held - cached) * size;
    st.cached = NonNegative(cached) * size;
    st.pooled = NonNegative(carved - held - pool_released) * size;
    st.released = NonNegative(released + pool_released * size);
    st.sys = NonNegative(sys);
    return st;
  }
};

}  // namespace

void RegisterMStatsShard(MStatsShard* shard) {
  for (const StackOrderShard* o : shard->orders) STACKALLOC_CHECK(o != nullptr);
  MStatsShard* head = all_shards.load(std::memory_order_relaxed);
  do {
    shard->next = head;
  } while (!all_shards.compare_exchange_weak(
      head, shard, std::memory_order_release, std::memory_order_relaxed));
}

MemStats ReadMemStats() {
  OrderSums orders[kNumStackOrders];
  int64_t large = 0, large_guard = 0, large_unguarded = 0, meta = 0;
  int64_t unmapping_sys = 0, unmapping_released = 0;
  for (const MStatsShard* s = all_shards.load(std::memory_order_acquire);
       s != nullptr; s = s->next) {
    for (int k = 0; k < kNumStackOrders; ++k) orders[k].Add(*s->orders[k]);
    large += s->large_inuse.value();
    large_guard += s->large_guard.value();
    large_unguarded += s->large_unguarded.value();
    unmapping_sys += s->large_unmapping_sys.value();
    unmapping_released += s->large_unmapping_released.value();
    meta += s->meta_sys.value();
  }
  MemStats st;
  int64_t guard = large_guard, unguarded = large_unguarded;
  for (int k = 0; k < kNumStackOrders; ++k) {
    const StackOrderStats o = orders[k].ToStats(k);
    st.orders[k] = o;
    st.stacks_inuse += o.inuse;
    st.stacks_cached += o.cached;
    st.stacks_pooled += o.pooled;
    st.stacks_released += o.released;
    st.stacks_sys += o.sys;
    guard += orders[k].guard;
    unguarded += orders[k].unguarded;
  }
  st.large_stacks_inuse = NonNegative(large);
  st.stacks_inuse += st.large_stacks_inuse;
  st.unmapping_sys = NonNegative(unmapping_sys);
  st.unmapping_released = NonNegative(unmapping_released);
  st.stacks_sys += st.large_stacks_inuse + st.unmapping_sys;
  st.stacks_released += st.unmapping_released;
  st.stacks_guard = NonNegative(guard);
  st.stacks_unguarded = NonNegative(unguarded);
  st.stacks_meta_sys = NonNegative(meta);
  return st;
}

}  // namespace stackalloc
