#include "stack/large_stack.h"

#include <cstdint>

#include "alloc/chunk.h"
#include "alloc/guard.h"
#include "alloc/sys_alloc.h"
#include "base/check.h"
#include "base/stack_sizes.h"
#include "stack/heap.h"
#include "stack/misuse.h"
#include "stack/overflow.h"
#include "stack/parameters.h"

namespace stackalloc {
namespace internal {

void* LargeStackalloc(M* m, size_t n) {
  if (n > kMaxStackRequest) return nullptr;
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
    SysFree(mem, size + guard);
    FreeRecord(m, rec);
    return nullptr;
  }
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
  const size_t size = rec->stack_size, guard = rec->guard;
  TheChunkMap().Clear(rec);
  SysFree(reinterpret_cast<void*>(rec->base.load()), rec->bytes);
  const uint8_t flags = rec->Flags(0);
  if ((flags & kSlotUnguarded) != 0) m->stats.large_unguarded.Add(-1);
  if ((flags & kSlotMprotect) != 0) ReleaseGuard(/*mappings=*/1);
  FreeRecord(m, rec);
  m->stats.large_inuse.Add(-static_cast<int64_t>(size));
  m->stats.large_guard.Add(-static_cast<int64_t>(guard));
}

}  // namespace internal
}  // namespace stackalloc
