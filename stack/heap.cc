#include "stack/heap.h"

#include <atomic>
#include <new>

#include "alloc/arena.h"
#include "alloc/guard.h"
#include "alloc/sys_alloc.h"
#include "base/check.h"
#include "base/sanitizers.h"
#include "base/throw.h"
#include "stack/overflow.h"
#include "stack/stack_cache.h"
#include "stack/test_peer.h"
#include "stackalloc.h"

namespace stackalloc {
namespace internal {
namespace {

ABSL_CONST_INIT ChunkMap chunk_map;
ABSL_CONST_INIT StackArena arena;

// Test hooks: where chunks, pool nodes and chunk records come from.
std::atomic<StackallocTestPeer::Source> chunk_source{nullptr};  // The arena.
std::atomic<StackallocTestPeer::Source> node_source{&SysAlloc};
std::atomic<StackallocTestPeer::Source> record_source{&SysAlloc};

void* NodeChunk(size_t n) {
  return node_source.load(std::memory_order_relaxed)(n);
}

void* RecordChunk(void*, size_t n) {
  return record_source.load(std::memory_order_relaxed)(n);
}

ABSL_CONST_INIT StackPool pools[kNumStackOrders] = {
    {0, &chunk_map, &NodeChunk}, {1, &chunk_map, &NodeChunk},
    {2, &chunk_map, &NodeChunk}, {3, &chunk_map, &NodeChunk},
    {4, &chunk_map, &NodeChunk}, {5, &chunk_map, &NodeChunk},
    {6, &chunk_map, &NodeChunk}, {7, &chunk_map, &NodeChunk},
    {8, &chunk_map, &NodeChunk},
};

std::atomic<bool> guards_enabled{true};

int OrderOf(const StackCache* c) { return StackOrder(c->stack_size); }

// A record is constructed once, when FixAlloc first hands it out; a record
// freed (with its large stack) and reused is rewritten in place, never
// constructed again, as a reader without a claim may still be reading it
// (ChunkRecord's seqlock).
void ConstructRecord(void*, void* mem) { new (mem) ChunkRecord; }

// A record from m's chunkalloc, or nullptr, its layout open for writing
// (EndRewrite closes it). Counts the metadata it maps.
ChunkRecord* NewRecord(M* m) {
  FixAlloc& f = m->chunkalloc;
  if (f.size() == 0) {
    f.Init(sizeof(ChunkRecord), &RecordChunk, &ConstructRecord);
  }
  const size_t sys0 = f.sys();
  void* mem = f.Alloc();
  m->stats.meta_sys.Add(static_cast<int64_t>(f.sys() - sys0));
  if (mem == nullptr) return nullptr;
  auto* rec = static_cast<ChunkRecord*>(mem);
  rec->BeginRewrite();
  return rec;
}

// Fresh chunk memory: granule-aligned, zeroed.
void* MapChunk(size_t bytes) {
  StackallocTestPeer::Source source = chunk_source.load();
  void* mem = source != nullptr ? source(bytes) : arena.Alloc(bytes);
  if (mem != nullptr && reinterpret_cast<uintptr_t>(mem) % kChunkGranule != 0) {
    Throw("stackalloc: chunk source returned a misaligned chunk");
  }
  return mem;
}

// A new chunk of m's `order` with `layout`, recorded and mapped, or nullptr
// (nothing changed but, if the chunk map could not grow, the address space
// of the chunk, which no statistic counted).
ChunkRecord* NewChunk(M* m, int order, const ChunkLayout& layout) {
  ChunkRecord* rec = NewRecord(m);
  if (rec == nullptr) return nullptr;
  void* mem = MapChunk(layout.bytes());
  int64_t meta = 0;
  if (mem != nullptr) {
    rec->base = reinterpret_cast<uintptr_t>(mem);
    rec->bytes = layout.bytes();
    rec->stack_size = layout.stack_size;
    rec->slot_size = layout.slot_size;
    rec->guard = layout.guard;
    rec->nslots = layout.nslots;
    rec->order = order;
  }
  rec->EndRewrite();
  const bool mapped = mem != nullptr && chunk_map.Set(rec, &meta);
  m->stats.meta_sys.Add(meta);  // Leaves a failed Set mapped stay, counted.
  if (!mapped) {
    m->chunkalloc.Free(rec);
    return nullptr;
  }
  PoolOf(order).AddChunk(rec);
  StackOrderShard& st = m->stackcache.c[order].stats;
  st.guard.Add(static_cast<int64_t>(layout.guard) * layout.nslots);
  if (layout.guard != 0) InstallOverflowHandler();
  return rec;
}

// The FixAlloc chunk source of every M's stackalloc[order] (arg: that
// order's StackCache): a released chunk of the same layout if there is one,
// else a new one. Runs on the M's thread, inside StackCacheRefill().
void* StackChunk(void* arg, size_t n) {
  auto* c = static_cast<StackCache*>(arg);
  M* m = tls_m;
  const int order = OrderOf(c);
  const size_t slot = m->stackalloc[order].size();
  const size_t stack_bytes = n / slot * c->stack_size;
  const bool guarded = slot != c->stack_size;
  ChunkRecord* rec = PoolOf(order).TakeReleasedChunk(guarded);
  if (rec != nullptr) {
    STACKALLOC_CHECK(rec->bytes == n && rec->slot_size == slot);
    c->stats.released.Add(-static_cast<int64_t>(stack_bytes));
  } else {
    rec = NewChunk(m, order, LayoutOf(order, guarded));
    if (rec == nullptr) return nullptr;
  }
  c->stats.sys.Add(static_cast<int64_t>(stack_bytes));
  return reinterpret_cast<void*>(rec->base.load());
}

// FixAlloc's first-use hook: a slot carved for the first time gets its guard
// page, once for the life of the slot (a released and reused chunk keeps
// its guards).
void FirstUse(void* arg, void* slot) {
  auto* c = static_cast<StackCache*>(arg);
  const auto a = reinterpret_cast<uintptr_t>(slot);
  ChunkRecord* rec = chunk_map.Lookup(a);
  STACKALLOC_CHECK(rec != nullptr);
  if (rec->guard == 0) return;
  const int i = rec->SlotOfGuard(a);
  STACKALLOC_CHECK_GE(i, 0);
  if ((rec->Flags(i) & (kSlotGuarded | kSlotUnguarded)) != 0) return;
  const GuardMethod how = InstallGuard(slot);
  if (how != GuardMethod::kNone) {
    rec->AddFlags(i, how == GuardMethod::kMprotect
                         ? kSlotGuarded | kSlotMprotect
                         : kSlotGuarded);
  } else {
    rec->AddFlags(i, kSlotUnguarded);
    c->stats.unguarded.Add(1);
  }
}

}  // namespace

ChunkMap& TheChunkMap() { return chunk_map; }

StackPool& PoolOf(int order) { return pools[order]; }

ChunkLayout LayoutOf(int order, bool guards) {
  ChunkLayout l;
  l.stack_size = OrderStackSize(order);
  l.guard = guards ? kPageSize : 0;
  l.slot_size = l.stack_size + l.guard;
  const size_t fit = (size_t{128} << 10) / l.slot_size;
  l.nslots = static_cast<int>(fit < 2 ? 2 : fit > 32 ? 32 : fit);
  return l;
}

bool GuardsEnabled() { return guards_enabled.load(std::memory_order_relaxed); }

ChunkLayout PrepareStackalloc(M* m, int order) {
  FixAlloc& f = m->stackalloc[order];
  const ChunkLayout want = LayoutOf(order, GuardsEnabled());
  if (f.size() == 0 ||
      (m->stackalloc_slot[order] != want.slot_size && f.chunk_spent())) {
    f.Init(want.slot_size, &StackChunk, &FirstUse, &m->stackcache.c[order],
           want.bytes());
    m->stackalloc_slot[order] = want.slot_size;
  }
  return LayoutOf(order, m->stackalloc_slot[order] != OrderStackSize(order));
}

// --- Stacks above the largest order: a mapping each, with its guard. ---

namespace {

// Largest large stack we map: far beyond any real stack, and small enough
// that no size arithmetic on it can overflow.
constexpr size_t kMaxLargeStack = size_t{1} << 40;

size_t PageRoundUp(size_t n) { return (n + kPageSize - 1) & ~(kPageSize - 1); }

}  // namespace

void* LargeStackalloc(M* m, size_t n) {
  if (n > kMaxLargeStack) return nullptr;
  const size_t size = PageRoundUp(n);
  const size_t guard = GuardsEnabled() ? kPageSize : 0;
  ChunkRecord* rec = NewRecord(m);
  if (rec == nullptr) return nullptr;
  void* mem = SysAllocAligned(size + guard, kChunkGranule);
  rec->base = reinterpret_cast<uintptr_t>(mem);
  rec->bytes = size + guard;
  rec->stack_size = size;
  rec->slot_size = size + guard;
  rec->guard = guard;
  rec->nslots = 1;
  rec->order = ChunkRecord::kLargeOrder;
  rec->EndRewrite();
  int64_t meta = 0;
  const bool mapped = mem != nullptr && chunk_map.Set(rec, &meta);
  m->stats.meta_sys.Add(meta);  // Leaves a failed Set mapped stay, counted.
  if (!mapped) {
    SysFree(mem, size + guard);
    m->chunkalloc.Free(rec);
    return nullptr;
  }
  if (guard != 0) {
    InstallOverflowHandler();
    // At the start of its own mapping, an mprotect'ed guard adds one.
    const GuardMethod how = InstallGuard(mem, /*mappings=*/1);
    rec->AddFlags(0, how == GuardMethod::kNone ? kSlotUnguarded
                     : how == GuardMethod::kMprotect
                         ? kSlotGuarded | kSlotMprotect
                         : kSlotGuarded);
    if (how == GuardMethod::kNone) m->stats.large_unguarded.Add(1);
    m->stats.large_guard.Add(static_cast<int64_t>(guard));
  }
  SlotState found;
  STACKALLOC_CHECK(
      rec->Transition(0, SlotState::kUncarved, kHandedOut, &found));
  m->stats.large_inuse.Add(static_cast<int64_t>(size));
  return reinterpret_cast<void*>(rec->StackAt(0));
}

void LargeStackfree(M* m, void* v, size_t n) {
  const auto a = reinterpret_cast<uintptr_t>(v);
  ChunkRecord* rec = chunk_map.Lookup(a);
  if (rec == nullptr || rec->SlotOfStack(a) < 0) {
    // A large stack's mapping and record go at its free, so a second free
    // finds nothing: say both.
    DieBadFree(
        "is not a stack from stackalloc (or a stack above 1 MiB freed twice)",
        v, 0, 0);
  }
  if (rec->order != ChunkRecord::kLargeOrder ||
      rec->stack_size != PageRoundUp(n)) {
    DieBadFree("freed as", v, n, rec->stack_size);
  }
  SlotState found;
  if (!rec->Transition(0, kHandedOut, SlotState::kUncarved, &found)) {
    DieBadFree("freed twice", v, 0, rec->stack_size);
  }
  const size_t size = rec->stack_size, guard = rec->guard;
  chunk_map.Clear(rec);
  SysFree(reinterpret_cast<void*>(rec->base.load()), rec->bytes);
  const uint8_t flags = rec->Flags(0);
  if ((flags & kSlotUnguarded) != 0) m->stats.large_unguarded.Add(-1);
  if ((flags & kSlotMprotect) != 0) ReleaseGuard(/*mappings=*/1);
  m->chunkalloc.Free(rec);
  m->stats.large_inuse.Add(-static_cast<int64_t>(size));
  m->stats.large_guard.Add(-static_cast<int64_t>(guard));
}

// --- Scavenging and its policy. ---

namespace {

std::atomic<size_t> scavenge_threshold{0};
// Pool bytes left by the last scavenge: the policy waits for twice that.
std::atomic<size_t> pooled_after_scavenge{0};

size_t PooledBytes() {
  size_t bytes = 0;
  for (int k = 0; k < kNumStackOrders; ++k) {
    // Stacks whose pages went already hold no memory.
    bytes +=
        static_cast<size_t>(pools[k].stacks() - pools[k].released_stacks()) *
        OrderStackSize(k);
  }
  return bytes;
}

// Books one order's scavenge on m's shard; returns the bytes it released.
size_t Account(M* m, int order, const StackPool::ScavengeResult& r) {
  StackOrderShard& st = m->stackcache.c[order].stats;
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

}  // namespace

size_t Scavenge(M* m) {
  // Idle Ms (their threads exited) would hold their caches until a thread
  // enters again: empty them into the pools, so their chunks can go too.
  ForEachIdleM([](M* idle, void*) { EmptyCaches(idle); }, nullptr);
  size_t released = 0;
  for (int k = 0; k < kNumStackOrders; ++k) {
    const StackPool::ScavengeResult r =
        pools[k].Scavenge(/*release_stacks=*/k >= kReleaseStackOrder);
    if (r.ran) released += Account(m, k, r);
  }
  pooled_after_scavenge.store(PooledBytes(), std::memory_order_relaxed);
  return released;
}

void MaybeScavenge(M* m) {
  const size_t threshold = scavenge_threshold.load(std::memory_order_relaxed);
  if (threshold == 0) return;
  const size_t pooled = PooledBytes();
  if (pooled > threshold &&
      pooled >= 2 * pooled_after_scavenge.load(std::memory_order_relaxed)) {
    Scavenge(m);
  }
}

namespace {
std::atomic<int> cache_limits[kNumStackOrders] = {
    DefaultStackCacheLimit(0), DefaultStackCacheLimit(1),
    DefaultStackCacheLimit(2), DefaultStackCacheLimit(3),
    DefaultStackCacheLimit(4), DefaultStackCacheLimit(5),
    DefaultStackCacheLimit(6), DefaultStackCacheLimit(7),
    DefaultStackCacheLimit(8),
};
}  // namespace

int CacheLimit(int order) {
  return cache_limits[order].load(std::memory_order_relaxed);
}

}  // namespace internal

// --- Public controls (stackalloc.h). ---

bool SetStackCacheLimit(int limit, size_t stack_size) {
  const int order = StackOrder(stack_size);
  if (order < 0 || limit < 2 || limit > kStackCacheMax || limit % 2 != 0) {
    return false;
  }
  internal::cache_limits[order].store(limit, std::memory_order_relaxed);
  return true;
}

size_t ScavengeStacks() {
  M* m = internal::tls_m;
  if (m == internal::UnboundM()) m = internal::TryBindM();
  if (m == nullptr) return 0;  // Out of memory for an M: nothing released.
  SlowPathGate gate(m);
  return internal::Scavenge(m);
}

void SetScavengeThreshold(size_t bytes) {
  internal::scavenge_threshold.store(bytes, std::memory_order_relaxed);
}

bool FindStack(const void* p, void** lo, size_t* size) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  const ChunkRecord* rec = internal::chunk_map.Lookup(a);
  if (rec == nullptr) return false;
  // A large stack freed meanwhile on another thread takes its record with
  // it, and the record may be rewritten for another chunk as we read.
  const uint32_t s = rec->ReadBegin();
  const int i = rec->SlotHolding(a);
  if (i < 0 || rec->State(i) == SlotState::kUncarved) return false;
  const uintptr_t stack = rec->StackAt(i);
  const size_t bytes = rec->stack_size;
  if (!rec->ReadValid(s) || a - stack >= bytes) return false;
  *lo = reinterpret_cast<void*>(stack);
  *size = bytes;
  return true;
}

bool SetStackGuards(bool on) {
  return internal::guards_enabled.exchange(on, std::memory_order_relaxed);
}

// --- Test peer (stack/test_peer.h). ---

namespace internal {
void StackallocTestPeer::SetChunkSource(Source source) {
  chunk_source.store(source, std::memory_order_relaxed);
}
void StackallocTestPeer::SetNodeSource(Source source) {
  node_source.store(source != nullptr ? source : &SysAlloc,
                    std::memory_order_relaxed);
}
void StackallocTestPeer::SetRecordSource(Source source) {
  record_source.store(source != nullptr ? source : &SysAlloc,
                      std::memory_order_relaxed);
}
int64_t StackallocTestPeer::PoolStacks(int order) {
  return pools[order].stacks() + pools[order].stranded();
}
int64_t StackallocTestPeer::PoolReleasedChunks(int order) {
  return pools[order].released_chunks();
}
int64_t StackallocTestPeer::PoolReleasedStacks(int order) {
  return pools[order].released_stacks();
}
int64_t StackallocTestPeer::PoolStranded(int order) {
  return pools[order].stranded();
}
const ChunkRecord* StackallocTestPeer::ChunkOf(const void* p) {
  return chunk_map.Lookup(reinterpret_cast<uintptr_t>(p));
}
size_t StackallocTestPeer::ArenaReserved() { return arena.reserved(); }
int StackallocTestPeer::ChunkStacks(int order) {
  return LayoutOf(order, GuardsEnabled()).nslots;
}
size_t StackallocTestPeer::ChunkBytes(int order) {
  return LayoutOf(order, GuardsEnabled()).bytes();
}
}  // namespace internal

}  // namespace stackalloc
