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
    // Under mlockall(MCL_FUTURE) a reservation is locked and resident
    // whole, and counts against RLIMIT_MEMLOCK whole: map each chunk by
    // itself instead. Asked only when a reservation is spent.
    if (SysNewMappingsLocked()) {
      void* mem = SysAllocAligned(n, kChunkGranule);
      if (mem == nullptr) return nullptr;
      (void)SysHugePageAdvice(mem, n);  // As a reservation's.
      reserved_.fetch_add(n, std::memory_order_relaxed);
      return mem;
    }
    if (!Grow(r, n)) return nullptr;
  }
}

StackArena::Reservation* StackArena::Reserve(size_t n) {
  // The header takes the first granule; chunks are carved from the rest.
  const size_t least = n + kChunkGranule;
  size_t bytes = kArenaBytes;
  void* mem;
  while ((mem = SysAllocAligned(bytes, kChunkGranule)) == nullptr) {
    if (bytes == least) return nullptr;
    bytes = bytes / 2 < least ? least : (bytes / 2) & ~(kChunkGranule - 1);
  }
  // A refused advice leaves the system's policy: nothing to undo.
  (void)SysHugePageAdvice(mem, bytes);
  const auto base = reinterpret_cast<uintptr_t>(mem);
  reserved_.fetch_add(bytes, std::memory_order_relaxed);
  return new (mem) Reservation{base + bytes, {base + kChunkGranule}, {nullptr}};
}

bool StackArena::Grow(Reservation* seen, size_t n) {
  Reservation* r = spares_.Pop();
  if (r != nullptr && r->cursor.load(std::memory_order_relaxed) + n > r->end) {
    spares_.Push(r);  // Too small for this chunk (a limit shrank it).
    r = nullptr;
  }
  if (r == nullptr) r = Reserve(n);
  if (r == nullptr) return false;
  if (current_.compare_exchange_strong(seen, r, std::memory_order_acq_rel)) {
    return true;
  }
  // Another thread grew first: carve from theirs. Ours goes back to the
  // OS, or, if the OS will not take it, waits for the next Grow.
  const size_t bytes = r->end - reinterpret_cast<uintptr_t>(r);
  if (SysFree(r, bytes)) {
    reserved_.fetch_sub(bytes, std::memory_order_relaxed);
  } else {
    spares_.Push(r);
  }
  return true;
}

}  // namespace stackalloc
