#include "alloc/chunk.h"

namespace stackalloc {

int ChunkRecord::SlotOfStack(uintptr_t v) const {
  if (!Contains(v) || v - base < guard) return -1;
  const uintptr_t off = v - base - guard;
  const uintptr_t i = off / slot_size;
  if (i >= static_cast<uintptr_t>(nslots) || off % slot_size != 0) return -1;
  return static_cast<int>(i);
}

int ChunkRecord::SlotOfGuard(uintptr_t a) const {
  if (guard == 0 || !Contains(a)) return -1;
  const uintptr_t off = a - base;
  const uintptr_t i = off / slot_size;
  if (i >= static_cast<uintptr_t>(nslots) || off % slot_size >= guard) {
    return -1;
  }
  return static_cast<int>(i);
}

bool ChunkRecord::Transition(int i, SlotState from, SlotState to,
                             SlotState* found) {
  uint8_t old = slots[i].load(std::memory_order_relaxed);
  do {
    if ((old & kSlotStateMask) != static_cast<uint8_t>(from)) {
      *found = static_cast<SlotState>(old & kSlotStateMask);
      return false;
    }
  } while (!slots[i].compare_exchange_weak(
      old,
      static_cast<uint8_t>((old & ~kSlotStateMask) | static_cast<uint8_t>(to)),
      std::memory_order_acq_rel, std::memory_order_relaxed));
  return true;
}

}  // namespace stackalloc
