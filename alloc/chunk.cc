#include "alloc/chunk.h"

namespace stackalloc {

namespace {

// off / slot and off % slot. A pooled chunk is at most 32 slots of
// 1 MiB + a page, so both fit 32 bits and one 32-bit divide (a third of the
// 64-bit one's latency on x86-64) gives quotient and remainder; only a
// large stack's mapping needs the 64-bit divide.
inline void DivideBySlot(uintptr_t off, size_t slot, uintptr_t* quotient,
                         uintptr_t* remainder) {
  if (((off | slot) >> 32) == 0) {
    const uint32_t a = static_cast<uint32_t>(off);
    const uint32_t b = static_cast<uint32_t>(slot);
    *quotient = a / b;
    *remainder = a % b;
  } else {
    *quotient = off / slot;
    *remainder = off % slot;
  }
}

}  // namespace

void ChunkRecord::BeginRewrite() {
  const uint32_t s = seq.load();
  if ((s & 1) == 0) seq.store(s + 1);
  for (auto& slot : slots) slot.store(0);
  order_next = nullptr;
  scavenge_count = 0;
  pool_slots.store(0);
  pool_link.store(nullptr);
}

int ChunkRecord::SlotOfStack(uintptr_t v) const {
  if (!Contains(v) || v - base < guard) return -1;
  uintptr_t i, r;
  DivideBySlot(v - base - guard, slot_size, &i, &r);
  if (i >= static_cast<uintptr_t>(nslots) || r != 0) return -1;
  return static_cast<int>(i);
}

int ChunkRecord::SlotOfGuard(uintptr_t a) const {
  // slot_size is 0 only in a record never laid out, which a reader without
  // a claim cannot reach; checked all the same, it costs nothing here.
  if (guard == 0 || slot_size == 0 || !Contains(a)) return -1;
  uintptr_t i, r;
  DivideBySlot(a - base, slot_size, &i, &r);
  if (i >= static_cast<uintptr_t>(nslots) || r >= guard) return -1;
  return static_cast<int>(i);
}

int ChunkRecord::SlotHolding(uintptr_t a) const {
  if (slot_size == 0 || !Contains(a)) return -1;
  uintptr_t i, r;
  DivideBySlot(a - base, slot_size, &i, &r);
  if (i >= static_cast<uintptr_t>(nslots) || r < guard) return -1;
  return static_cast<int>(i);
}

bool ChunkRecord::ReadStackHolding(uintptr_t a, uintptr_t* lo,
                                   size_t* size) const {
  const uint32_t s = ReadBegin();
  const int i = SlotHolding(a);
  if (i < 0 || State(i) == SlotState::kUncarved) return false;
  const uintptr_t stack = StackAt(i);
  const size_t n = stack_size;
  // A rewrite may have moved the layout under the slot we computed: then
  // neither the sequence nor the bounds hold.
  if (!ReadValid(s) || a - stack >= n) return false;
  *lo = stack;
  *size = n;
  return true;
}

bool ChunkRecord::ReadGuardHolding(uintptr_t a, uintptr_t* lo,
                                   size_t* size) const {
  const uint32_t s = ReadBegin();
  const int i = SlotOfGuard(a);
  if (i < 0) return false;
  const uintptr_t stack = StackAt(i);
  const size_t n = stack_size;
  if (!ReadValid(s)) return false;
  *lo = stack;
  *size = n;
  return true;
}

bool ChunkRecord::ReadLayout(Layout* l, uint32_t* read_seq) const {
  const uint32_t s = ReadBegin();
  l->base = base;
  l->bytes = bytes;
  l->stack_size = stack_size;
  l->slot_size = slot_size;
  l->guard = guard;
  l->nslots = nslots;
  l->order = order;
  // A record never laid out (bytes 0) has no chunk to read.
  if (!ReadValid(s) || l->bytes == 0 || l->nslots <= 0 ||
      l->nslots > kMaxSlots) {
    return false;
  }
  *read_seq = s;
  return true;
}

namespace {

bool InPool(SlotState s) {
  return s == SlotState::kPooled || s == SlotState::kReleased ||
         s == SlotState::kStranded;
}

}  // namespace

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
  if (InPool(from) != InPool(to)) {
    pool_slots.fetch_add(InPool(to) ? 1 : -1, std::memory_order_relaxed);
  }
  return true;
}

}  // namespace stackalloc
