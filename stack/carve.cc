#include "stack/carve.h"

#include <algorithm>

#include "base/check.h"
#include "base/sanitizers.h"
#include "stack/heap.h"
#include "stack/misuse.h"
#include "stack/parameters.h"

namespace stackalloc {
namespace internal {

int Carve(M* m, int order, void** out, int want) {
  StackCarver& carver = m->mcache.carver[order];
  ChunkRecord* rec = carver.chunk;
  if (rec == nullptr || carver.next == rec->nslots) {
    rec = TakeChunk(m, order, GuardsEnabled());
    if (rec == nullptr) return 0;
    carver.chunk = rec;
    carver.next = 0;
  }
  const int n = std::min(want, rec->nslots - carver.next);
  const size_t size = rec->stack_size;
  for (int i = 0; i < n; ++i) {
    const int slot = carver.next++;
    SlotState found;
    STACKALLOC_CHECK(
        rec->Transition(slot, SlotState::kUncarved, kInCache, &found));
    void* v = reinterpret_cast<void*>(rec->StackAt(slot));
    sanitizer::PoisonMemory(v, size);
    out[i] = v;
  }
  m->mcache.stackcache.c[order].stats.carved.Add(n);
  return n;
}

}  // namespace internal
}  // namespace stackalloc
