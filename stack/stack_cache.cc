#include "stack/stack_cache.h"

#include <algorithm>
#include <cstring>

#include "alloc/stack_pool.h"
#include "base/check.h"
#include "stack/carve.h"
#include "stack/heap.h"
#include "stack/misuse.h"
#include "stack/parameters.h"

namespace stackalloc {
namespace internal {
namespace {

// Takes a batch from the pool into m's hands: each stack kInCache, and the
// pages of released ones counted as in use again.
void TakeFromPool(StackCache& c, int order, void* const* got, int n) {
  int64_t were_released = 0;
  for (int i = 0; i < n; ++i) {
    int slot;
    ChunkRecord* rec = RecordOf(got[i], order, 0, &slot);
    SlotState found;
    if (rec->Transition(slot, SlotState::kPooled, kInCache, &found)) continue;
    STACKALLOC_CHECK(found == SlotState::kReleased);
    STACKALLOC_CHECK(
        rec->Transition(slot, SlotState::kReleased, kInCache, &found));
    ++were_released;
  }
  PoolOf(order).TookReleased(were_released);
  c.stats.pool_released.Add(-were_released);
  c.stats.sys.Add(were_released * static_cast<int64_t>(c.stack_size));
}

// Releases stacks[0, n) of m's cache of `order` to the pool, checking each
// on its way out; stacks the pool has no batch record for stay its own,
// stranded, and counted as pooled.
void GiveBack(M* m, int order, void* const* stacks, int n) {
  StackCache& c = m->mcache.stackcache.c[order];
  StackPool& pool = PoolOf(order);
  c.stats.held.Add(-n);
  for (int i = 0; i < n; ++i) {
    MoveStack(stacks[i], order, 0, kInCache, SlotState::kPooled);
  }
  while (n > 0) {
    const int b = std::min(n, StackPool::kMaxBatch);
    int64_t meta = 0;
    const bool pooled = pool.Put(stacks, b, &meta);
    m->stats.meta_sys.Add(meta);
    if (!pooled) {
      for (int i = 0; i < b; ++i) {
        MoveStack(stacks[i], order, 0, SlotState::kPooled,
                  SlotState::kStranded);
      }
      pool.Strand(b);
    }
    stacks += b;
    n -= b;
  }
}

}  // namespace

bool StackCacheRefill(M* m, int order) {
  StackCache& c = m->mcache.stackcache.c[order];
  STACKALLOC_DCHECK_EQ(c.stats.cached.value(), 0);
  c.limit = CacheLimit(order);
  const int batch = static_cast<int>(c.limit / 2);
  void* got[StackPool::kMaxBatch];
  StackPool& pool = PoolOf(order);
  int n = pool.Get(got);
  if (n > 0) {
    TakeFromPool(c, order, got, n);
  } else {
    n = pool.RescueStranded(got, batch, kInCache);
    if (n == 0) n = Carve(m, order, got, batch);
    if (n == 0) return false;
  }
  c.stats.held.Add(n);
  if (n > c.limit) {  // A batch from a time of larger caches.
    GiveBack(m, order, got + c.limit, n - static_cast<int>(c.limit));
    n = static_cast<int>(c.limit);
  }
  // The first stack obtained goes on top, so it is the first handed out:
  // address order for a fresh chunk.
  for (int i = 0; i < n; ++i) c.slot[n - i] = got[i];
  c.stats.cached.Set(n);
  return true;
}

void StackCacheRelease(M* m, int order) {
  StackCache& c = m->mcache.stackcache.c[order];
  c.limit = CacheLimit(order);
  const int64_t k = c.stats.cached.value();
  const int64_t keep = c.limit / 2;
  STACKALLOC_CHECK_LE(k, kStackCacheMax);
  if (k <= keep) return;
  const int give = static_cast<int>(k - keep);
  GiveBack(m, order, &c.slot[1], give);
  memmove(&c.slot[1], &c.slot[1 + give], keep * sizeof(void*));
  c.stats.cached.Set(keep);
}

void EmptyCaches(M* m) {
  for (int order = 0; order < kNumStackOrders; ++order) {
    StackCache& c = m->mcache.stackcache.c[order];
    const int64_t k = c.stats.cached.value();
    if (k == 0) continue;
    GiveBack(m, order, &c.slot[1], static_cast<int>(k));
    c.stats.cached.Set(0);
  }
}

}  // namespace internal
}  // namespace stackalloc
