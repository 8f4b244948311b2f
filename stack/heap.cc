#include "stack/heap.h"

#include <atomic>
#include <new>

#include "absl/base/attributes.h"
#include "alloc/arena.h"
#include "alloc/guard.h"
#include "alloc/sys_alloc.h"
#include "base/check.h"
#include "base/throw.h"
#include "stack/overflow.h"

namespace stackalloc {
namespace internal {
namespace {

ABSL_CONST_INIT ChunkMap chunk_map;
ABSL_CONST_INIT StackArena arena;

// Where chunks, pool nodes and chunk records come from (tests inject
// failures here).
ABSL_CONST_INIT std::atomic<MemorySource> chunk_source{nullptr};  // Arena.
ABSL_CONST_INIT std::atomic<MemorySource> node_source{&SysAlloc};
ABSL_CONST_INIT std::atomic<MemorySource> record_source{&SysAlloc};

void* NodeMemory(size_t n) {
  return node_source.load(std::memory_order_relaxed)(n);
}

void* RecordMemory(void*, size_t n) {
  return record_source.load(std::memory_order_relaxed)(n);
}

ABSL_CONST_INIT PerOrder<StackPool> pools =
    PerOrder<StackPool>::Make(&chunk_map, &NodeMemory);

// A record is constructed once, when FixAlloc first hands it out; a record
// freed (with its large stack) and reused is rewritten in place, never
// constructed again, as a reader without a claim may still be reading it
// (ChunkRecord's seqlock).
void ConstructRecord(void*, void* mem) { new (mem) ChunkRecord; }

// Fresh chunk memory: granule-aligned, zeroed.
void* ChunkMemory(size_t bytes) {
  MemorySource source = chunk_source.load(std::memory_order_relaxed);
  void* mem = source != nullptr ? source(bytes) : arena.Alloc(bytes);
  if (mem != nullptr && reinterpret_cast<uintptr_t>(mem) % kChunkGranule != 0) {
    Throw("stackalloc: chunk source returned a misaligned chunk");
  }
  return mem;
}

// Installs the guard page of every slot of a new chunk, in as few system
// calls as the kernel allows; books the guard bytes, and the slots the
// mprotect fallback's budget left without one, on the M's shard `st`.
void GuardChunk(ChunkRecord* rec, StackOrderShard* st) {
  const int n = rec->nslots;
  void* pages[ChunkRecord::kMaxSlots] = {};
  GuardMethod how[ChunkRecord::kMaxSlots] = {};
  for (int i = 0; i < n; ++i) {
    pages[i] = reinterpret_cast<void*>(rec->base + i * rec->slot_size);
  }
  InstallGuards(pages, n, how);
  int64_t unguarded = 0;
  for (int i = 0; i < n; ++i) {
    rec->AddFlags(i, GuardFlags(how[i]));
    if (how[i] == GuardMethod::kNone) ++unguarded;
  }
  st->guard.Add(static_cast<int64_t>(rec->guard) * n);
  st->unguarded.Add(unguarded);
  InstallOverflowHandler(&chunk_map);
}

// A new chunk of `order` with `layout`, recorded, mapped and guarded, or
// nullptr (nothing changed but, if the chunk map could not grow, the
// address space of the chunk, which no statistic counted).
ChunkRecord* NewChunk(M* m, int order, const ChunkLayout& layout) {
  ChunkRecord* rec = NewRecord(m);
  if (rec == nullptr) return nullptr;
  void* mem = ChunkMemory(layout.bytes());
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
  int64_t meta = 0;
  const bool mapped = mem != nullptr && chunk_map.Set(rec, &meta);
  m->stats.meta_sys.Add(meta);  // Leaves a failed Set mapped stay, counted.
  if (!mapped) {
    FreeRecord(m, rec);
    return nullptr;
  }
  StackOrderShard& st = m->mcache.stackcache.c[order].stats;
  if (layout.guard != 0) GuardChunk(rec, &st);
  PoolOf(order).AddChunk(rec);
  return rec;
}

}  // namespace

ChunkMap& TheChunkMap() { return chunk_map; }

StackPool& PoolOf(int order) { return pools.at[order]; }

uint8_t GuardFlags(GuardMethod how) {
  switch (how) {
    case GuardMethod::kMadvise:
      return kSlotGuarded;
    case GuardMethod::kMprotect:
      return kSlotGuarded | kSlotMprotect;
    case GuardMethod::kNone:
      break;
  }
  return kSlotUnguarded;
}

ChunkLayout LayoutOf(int order, bool guards) {
  ChunkLayout l;
  l.stack_size = OrderStackSize(order);
  l.guard = guards ? kPageSize : 0;
  l.slot_size = l.stack_size + l.guard;
  const size_t fit = kChunkGranule / l.slot_size;
  l.nslots = static_cast<int>(fit < 2 ? 2 : fit > 32 ? 32 : fit);
  return l;
}

ChunkRecord* TakeChunk(M* m, int order, bool guards) {
  const ChunkLayout layout = LayoutOf(order, guards);
  StackOrderShard& st = m->mcache.stackcache.c[order].stats;
  const auto stack_bytes =
      static_cast<int64_t>(layout.stack_size) * layout.nslots;
  ChunkRecord* rec = PoolOf(order).TakeReleasedChunk(guards);
  if (rec != nullptr) {
    STACKALLOC_CHECK(rec->bytes == layout.bytes() &&
                     rec->slot_size == layout.slot_size);
    st.released.Add(-stack_bytes);
  } else {
    rec = NewChunk(m, order, layout);
    if (rec == nullptr) return nullptr;
  }
  st.sys.Add(stack_bytes);
  return rec;
}

ChunkRecord* NewRecord(M* m) {
  FixAlloc& f = m->mcache.chunkalloc;
  if (f.size() == 0) {
    f.Init(sizeof(ChunkRecord), &RecordMemory, &ConstructRecord);
  }
  const size_t sys0 = f.sys();
  void* mem = f.Alloc();
  m->stats.meta_sys.Add(static_cast<int64_t>(f.sys() - sys0));
  if (mem == nullptr) return nullptr;
  auto* rec = static_cast<ChunkRecord*>(mem);
  rec->BeginRewrite();
  return rec;
}

void FreeRecord(M* m, ChunkRecord* rec) { m->mcache.chunkalloc.Free(rec); }

size_t ArenaReserved() { return arena.reserved(); }

void SetChunkSource(MemorySource source) {
  chunk_source.store(source, std::memory_order_relaxed);
}

void SetNodeSource(MemorySource source) {
  node_source.store(source != nullptr ? source : &SysAlloc,
                    std::memory_order_relaxed);
}

void SetRecordSource(MemorySource source) {
  record_source.store(source != nullptr ? source : &SysAlloc,
                      std::memory_order_relaxed);
}

}  // namespace internal
}  // namespace stackalloc
