#include "alloc/arena.h"

#include <sys/mman.h>

#include <new>

#include "alloc/chunk.h"
#include "alloc/sys_alloc.h"
#include "base/check.h"

namespace stackalloc {

void* StackArena::Alloc(size_t n) {
  if (n == 0 || n > kArenaBytes - kChunkGranule) return nullptr;
  n = (n + kChunkGranule - 1) & ~(kChunkGranule - 1);
  for (;;) {
    Reservation* r = current_.load(std::memory_order_acquire);
    if (r != nullptr) {
      // Overshooting the end is harmless: the reservation is then spent.
      uintptr_t at = r->cursor.fetch_add(n, std::memory_order_relaxed);
      if (at + n <= r->end) {
        STACKALLOC_DCHECK(at % kChunkGranule == 0);
        return reinterpret_cast<void*>(at);
      }
    }
    if (!Grow(r)) return nullptr;
  }
}

bool StackArena::Grow(Reservation* seen) {
  void* mem = SysAllocAligned(kArenaBytes, kChunkGranule);
  if (mem == nullptr) return false;
  const auto base = reinterpret_cast<uintptr_t>(mem);
  // The header takes the first granule; chunks are carved from the rest.
  auto* r = new (mem) Reservation{base + kArenaBytes, {base + kChunkGranule}};
  if (current_.compare_exchange_strong(seen, r, std::memory_order_acq_rel)) {
    reserved_.fetch_add(kArenaBytes, std::memory_order_relaxed);
  } else {
    SysFree(mem, kArenaBytes);  // Another thread grew first; use theirs.
  }
  return true;
}

}  // namespace stackalloc
