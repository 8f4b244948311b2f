#include "stats/mstats.h"

#include "base/stack_sizes.h"

namespace stackalloc {
namespace {

std::atomic<MStatsShard*> all_shards{nullptr};

uint64_t NonNegative(int64_t v) { return v < 0 ? 0 : static_cast<uint64_t>(v); }

}  // namespace

void RegisterMStatsShard(MStatsShard* shard) {
  MStatsShard* head = all_shards.load(std::memory_order_relaxed);
  do {
    shard->next = head;
  } while (!all_shards.compare_exchange_weak(
      head, shard, std::memory_order_release, std::memory_order_relaxed));
}

MemStats ReadMemStats() {
  int64_t cached = 0, held = 0, carved = 0, sys = 0, released = 0, meta = 0,
          large = 0;
  for (const MStatsShard* s = all_shards.load(std::memory_order_acquire);
       s != nullptr; s = s->next) {
    cached += s->cached.value();
    held += s->held.value();
    carved += s->carved.value();
    sys += s->sys.value();
    released += s->released.value();
    meta += s->meta_sys.value();
    large += s->large_inuse.value();
  }
  MemStats st;
  // Mid-flight sums can mix moments (a batch counted as moved but not yet as
  // cached); never report such a transient as a huge unsigned number.
  st.stacks_inuse = NonNegative(held - cached) * kFixedStack;
  st.stacks_cached = NonNegative(cached) * kFixedStack;
  st.stacks_pooled = NonNegative(carved - held) * kFixedStack;
  st.stacks_sys = NonNegative(sys);
  st.stacks_released = NonNegative(released);
  st.stacks_meta_sys = NonNegative(meta);
  st.large_stacks_inuse = NonNegative(large);
  return st;
}

}  // namespace stackalloc
