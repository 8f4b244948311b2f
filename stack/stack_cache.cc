#include "stack/stack_cache.h"

#include <algorithm>
#include <cstring>

#include "alloc/stack_pool.h"
#include "base/sanitizers.h"
#include "base/throw.h"
#include "stack/heap.h"

namespace stackalloc {
namespace internal {
namespace {

// The record and slot of stack v, which must be a stack of `order`; dies
// with a "stackfree: ..." message naming what is wrong. n is the size the
// caller gave (0: unknown, only the order).
ChunkRecord* RecordOf(void* v, int order, size_t n, int* slot) {
  if (v == nullptr) Throw("stackfree: nil stack");
  const auto a = reinterpret_cast<uintptr_t>(v);
  ChunkRecord* rec = TheChunkMap().Lookup(a);
  const int i = rec == nullptr ? -1 : rec->SlotOfStack(a);
  if (i < 0) DieBadFree("is not a stack from stackalloc", v, 0, 0);
  if (rec->order != order) {
    DieBadFree("freed as", v, n != 0 ? n : OrderStackSize(order),
               rec->stack_size);
  }
  *slot = i;
  return rec;
}

// Moves v from `from` to `to`; dies with the reason if it was not in `from`.
void Move(void* v, int order, size_t n, SlotState from, SlotState to) {
  int i;
  ChunkRecord* rec = RecordOf(v, order, n, &i);
  SlotState found;
  if (rec->Transition(i, from, to, &found)) return;
  if (found == SlotState::kUncarved) {
    // Not carved, or freed twice and its chunk released meanwhile.
    DieBadFree(
        "is not a stack from stackalloc (never handed out, or freed twice "
        "and its chunk since released)",
        v, 0, 0);
  }
  const size_t size = rec->stack_size;
  if (from == SlotState::kCached && to == SlotState::kLive) {
    RawBuffer b;
    b.Str("stackalloc: stack ").Hex(reinterpret_cast<uintptr_t>(v));
    b.Str(" handed out twice (the cache was corrupted)");
    Throw(b.c_str());
  }
  DieBadFree("freed twice", v, 0, size);
}

// Takes a batch from the pool into m's hands: each stack kInCache, and the
// pages of released ones counted as in use again.
void TakeFromPool(StackCache& c, void* const* got, int n) {
  const int order = StackOrder(c.stack_size);
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

// Carves up to `want` new stacks with m's FixAlloc of `order`.
int Carve(M* m, int order, void** got, int want) {
  const ChunkLayout layout = PrepareStackalloc(m, order);
  FixAlloc& f = m->stackalloc[order];
  StackCache& c = m->stackcache.c[order];
  int n = 0;
  while (n < want) {
    void* slot = f.Alloc();
    if (slot == nullptr) break;
    void* v = static_cast<char*>(slot) + layout.guard;
    int i;
    ChunkRecord* rec = RecordOf(v, order, 0, &i);
    SlotState found;
    STACKALLOC_CHECK(
        rec->Transition(i, SlotState::kUncarved, kInCache, &found));
    sanitizer::PoisonMemory(v, c.stack_size);
    got[n++] = v;
  }
  c.stats.carved.Add(n);
  return n;
}

// Gives stacks[0, n) of m's cache of `order` to the pool, checking each on
// its way out; stacks the pool has no batch record for stay its own,
// stranded, and counted as pooled.
void GiveBack(M* m, int order, void* const* stacks, int n) {
  StackCache& c = m->stackcache.c[order];
  StackPool& pool = PoolOf(order);
  c.stats.held.Add(-n);
  for (int i = 0; i < n; ++i) {
    Move(stacks[i], order, 0, kInCache, SlotState::kPooled);
  }
  while (n > 0) {
    const int b = std::min(n, StackPool::kMaxBatch);
    int64_t meta = 0;
    const bool pooled = pool.Put(stacks, b, &meta);
    m->stats.meta_sys.Add(meta);
    if (!pooled) {
      for (int i = 0; i < b; ++i) {
        Move(stacks[i], order, 0, SlotState::kPooled, SlotState::kStranded);
      }
      pool.Strand(b);
    }
    stacks += b;
    n -= b;
  }
}

}  // namespace

bool StackCacheRefill(M* m, int order) {
  StackCache& c = m->stackcache.c[order];
  STACKALLOC_DCHECK_EQ(c.stats.cached.value(), 0);
  c.limit = CacheLimit(order);
  const int batch = static_cast<int>(c.limit / 2);
  void* got[StackPool::kMaxBatch];
  StackPool& pool = PoolOf(order);
  int n = pool.Get(got);
  if (n > 0) {
    TakeFromPool(c, got, n);
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
  StackCache& c = m->stackcache.c[order];
  c.limit = CacheLimit(order);
  const int64_t k = c.stats.cached.value();
  const int64_t keep = c.limit / 2;
  STACKALLOC_CHECK_LE(k, kStackCacheMax);
  if (k <= keep) return;
  const int give = static_cast<int>(k - keep);
  GiveBack(m, order, &c.slot[1], give);
  memmove(&c.slot[1], &c.slot[1 + give], keep * sizeof(void*));
  c.stats.cached.Set(keep);
  MaybeScavenge(m);
}

void EmptyCaches(M* m) {
  for (int order = 0; order < kNumStackOrders; ++order) {
    StackCache& c = m->stackcache.c[order];
    const int64_t k = c.stats.cached.value();
    if (k == 0) continue;
    GiveBack(m, order, &c.slot[1], static_cast<int>(k));
    c.stats.cached.Set(0);
  }
}

void CheckHandOut(void* v) {
  const auto a = reinterpret_cast<uintptr_t>(v);
  const ChunkRecord* rec = TheChunkMap().Lookup(a);
  STACKALLOC_CHECK(rec != nullptr);
  Move(v, rec->order, 0, SlotState::kCached, SlotState::kLive);
}

void CheckTakeBack(void* v, size_t n) {
  Move(v, StackOrder(n), n, SlotState::kLive, SlotState::kCached);
}

void DieFreedAgain(void* v) {
  if (v == nullptr) Throw("stackfree: nil stack");
  const ChunkRecord* rec = TheChunkMap().Lookup(reinterpret_cast<uintptr_t>(v));
  DieBadFree("freed twice", v, 0, rec != nullptr ? rec->stack_size.load() : 0);
}

void DieBadFree(const char* what, const void* v, size_t n, size_t size) {
  RawBuffer b;
  b.Str("stackfree: ");
  if (size != 0) b.Udec(size).Str("-byte stack ");
  b.Hex(reinterpret_cast<uintptr_t>(v)).Str(" ").Str(what);
  if (n != 0) b.Str(" ").Udec(n);
  Throw(b.c_str());
}

}  // namespace internal
}  // namespace stackalloc
