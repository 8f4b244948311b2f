#include "stack/stack_bounds.h"

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "alloc/chunk.h"
#include "alloc/chunk_map.h"
#include "sched/m.h"

namespace stackalloc {
namespace internal {

bool StackBoundsHolding(const ChunkMap& map, uintptr_t sp, uintptr_t* lo,
                        uintptr_t* hi, bool read_thread_stack) {
  const M* m = tls_m;
  // The M's current G: nullptr on a thread without an M.
  const G* g = m->curg();
  if (g != nullptr && sp - g->stack_lo < g->stack_hi - g->stack_lo) {
    *lo = g->stack_lo;
    *hi = g->stack_hi;
    return true;
  }
  // A stack of ours the M was not told of: a Boost fiber's. A large stack
  // freed meanwhile on another thread takes its record with it, and the
  // record may be rewritten as we read (a seqlock): then it does not hold
  // sp.
  uintptr_t stack;
  size_t size;
  const ChunkRecord* rec = map.Lookup(sp);
  if (rec != nullptr && rec->ReadStackHolding(sp, &stack, &size)) {
    *lo = stack;
    *hi = stack + size;
    return true;
  }
  // The thread's own stack (for a thread without an M, or code on it that a
  // runtime's G runs without the M knowing).
  uintptr_t tlo, thi;
  if ((read_thread_stack ? ThreadStack(&tlo, &thi)
                         : CachedThreadStack(&tlo, &thi)) &&
      sp - tlo < thi - tlo) {
    *lo = tlo;
    *hi = thi;
    return true;
  }
  // A handler on the signal stack the M gave its thread.
  if (m->sigaltstack_installed) {
    const auto s = reinterpret_cast<uintptr_t>(
        m->sigaltstack.load(std::memory_order_relaxed));
    if (sp - s < SignalStackBytes()) {
      *lo = s;
      *hi = s + SignalStackBytes();
      return true;
    }
  }
  return false;
}

}  // namespace internal
}  // namespace stackalloc
