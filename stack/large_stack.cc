#include "stack/large_stack.h"

#include <cstdint>

#include "alloc/chunk.h"
#include "alloc/guard.h"
#include "alloc/lock_free_stack.h"
#include "alloc/sys_alloc.h"
#include "base/check.h"
#include "base/stack_sizes.h"
#include "stack/heap.h"
#include "stack/misuse.h"
#include "stack/overflow.h"
#include "stack/parameters.h"

namespace stackalloc {
namespace internal {
namespace {

// Freed large stacks whose mapping the OS kept: still in the chunk map, the
// slot uncarved (so FindStack finds no stack there, and a second free dies
// as freed twice), linked through pool_link (a large stack's record is on no
// pool list).
LockFreeStack<ChunkRecord, &ChunkRecord::pool_link> unmapping;

// Unmaps a freed large stack's mapping and gives its record back; false,
// leaving it mapped and in the chunk map, if the OS refused.
bool Unmap(M* m, ChunkRecord* rec) {
  TheChunkMap().Clear(rec);
  if (!SysFree(reinterpret_cast<void*>(rec->base.load()), rec->bytes)) {
    // Its leaves are mapped already: putting it back allocates nothing.
    int64_t meta = 0;
    STACKALLOC_CHECK(TheChunkMap().Set(rec, &meta));
    return false;
  }
  const uint8_t flags = rec->Flags(0);
  if ((flags & kSlotUnguarded) != 0) m->stats.large_unguarded.Add(-1);
  if ((flags & kSlotMprotect) != 0) ReleaseGuard(/*mappings=*/1);
  m->stats.large_guard.Add(-static_cast<int64_t>(rec->guard));
  FreeRecord(m, rec);
  return true;
}

}  // namespace

void RetryLargeUnmaps(M* m, int max) {
  unmapping.Sift(max, [m](ChunkRecord* rec) {
    const auto size = static_cast<int64_t>(rec->stack_size);
    const bool returned = (rec->Flags(0) & kSlotPagesReleased) != 0;
    if (!Unmap(m, rec)) return SiftAction::kPutBack;  // Refused again.
    (returned ? m->stats.large_unmapping_released
              : m->stats.large_unmapping_sys)
        .Add(-size);
    return SiftAction::kTake;
  });
}

void* LargeStackalloc(M* m, size_t n) {
  if (n > kMaxStackRequest) return nullptr;
  RetryLargeUnmaps(m, kLargeUnmapRetries);
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
  const bool mapped = mem != nullptr && TheChunkMap().Set(rec, &meta);
  m->stats.meta_sys.Add(meta);  // Leaves a failed Set mapped stay, counted.
  if (!mapped) {
    // A mapping nobody saw: if the OS keeps it, it is untouched address
    // space, counted with the records.
    if (!SysFree(mem, size + guard)) {
      m->stats.meta_sys.Add(static_cast<int64_t>(size + guard));
    }
    FreeRecord(m, rec);
    return nullptr;
  }
  // A refused advice leaves the system's policy: nothing to undo.
  (void)SysHugePageAdvice(mem, size + guard);
  if (guard != 0) {
    InstallOverflowHandler(&TheChunkMap());
    // At the start of its own mapping, an mprotect'ed guard adds one.
    const GuardMethod how = InstallGuard(mem, /*mappings=*/1);
    rec->AddFlags(0, GuardFlags(how));
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
  ChunkRecord* rec = TheChunkMap().Lookup(a);
  if (rec == nullptr || rec->SlotOfStack(a) < 0) {
    // A large stack's mapping and record go at its free, so a second free
    // finds nothing: say both.
    DieBadFree(
        "is not a stack from stackalloc (or a stack above 1 MiB freed twice)",
        v, 0, 0);
  }
  if (rec->order != ChunkRecord::kLargeOrder ||
      rec->stack_size != StackBytes(n)) {
    DieBadFree("freed as", v, n, rec->stack_size);
  }
  SlotState found;
  if (!rec->Transition(0, kHandedOut, SlotState::kUncarved, &found)) {
    DieBadFree("freed twice", v, 0, rec->stack_size);
  }
  const auto size = static_cast<int64_t>(rec->stack_size);
  m->stats.large_inuse.Add(-size);
  if (Unmap(m, rec)) return RetryLargeUnmaps(m, kLargeUnmapRetries);
  // The OS kept the mapping: return its pages if it lets us, and keep it
  // accounted for until a retry unmaps it.
  if (SysUnused(reinterpret_cast<void*>(rec->StackAt(0)), rec->stack_size)) {
    rec->AddFlags(0, kSlotPagesReleased);
    m->stats.large_unmapping_released.Add(size);
  } else {
    m->stats.large_unmapping_sys.Add(size);
  }
  unmapping.Push(rec);
}

}  // namespace internal
}  // namespace stackalloc
