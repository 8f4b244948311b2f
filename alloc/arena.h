// StackArena: where new stack chunks are cut from (Go's heap arenas).
//
// Chunks are carved, granule-aligned, from large reservations by a lock-free
// bump pointer, so that neighbouring chunks share one mapping: a million
// stacks cost a handful of lines in /proc/self/maps, and memory is committed
// only as pages are touched. A reservation is kArenaBytes where the OS
// grants it; under a limit (RLIMIT_AS, RLIMIT_DATA, RLIMIT_MEMLOCK) it is
// halved and retried down to what one chunk needs, so chunks are handed out
// while memory for them can be had. Under mlockall(MCL_FUTURE), where a
// reservation would be locked and resident whole, each chunk is a mapping
// of its own (SysNewMappingsLocked(), asked when a reservation is spent).
// Reservations and such chunks are never unmapped; a chunk's pages go back
// to the OS with SysUnused. Each is advised for huge pages as SetHugePages()
// says.
//
// Thread-safe and lock-free (a thread that finds the current reservation
// exhausted maps the next; if another thread installed one first, it unmaps
// its own, or keeps it for the next time if the OS will not take it back,
// and carves from theirs).

#ifndef ALLOC_ARENA_H_
#define ALLOC_ARENA_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "alloc/lock_free_stack.h"

namespace stackalloc {

class StackArena {
 public:
  static constexpr size_t kArenaBytes = size_t{64} << 20;

  constexpr StackArena() = default;
  StackArena(const StackArena&) = delete;
  StackArena& operator=(const StackArena&) = delete;

  // n bytes (rounded up to kChunkGranule; at most kArenaBytes less a
  // granule) of zeroed, read-write memory at a kChunkGranule-aligned
  // address, or nullptr if the OS refused even a reservation of n bytes
  // (then nothing changed).
  void* Alloc(size_t n);

  // Bytes of address space reserved so far.
  size_t reserved() const { return reserved_.load(std::memory_order_relaxed); }

 private:
  // Kept in the first page of its own reservation, which is never unmapped:
  // a thread holding a stale pointer to it reads valid memory.
  struct alignas(64) Reservation {
    uintptr_t end;                  // One past the last usable byte.
    std::atomic<uintptr_t> cursor;  // Next free byte (granule-aligned).
    // Link among the spares: reservations mapped by a thread that lost the
    // race to install theirs, which the OS would not take back.
    std::atomic<Reservation*> spare_link;
  };

  // Makes a reservation with room for n bytes current (a spare, or a new
  // one as large as the OS grants), unless another thread replaced `seen`
  // first. False if the OS refused.
  bool Grow(Reservation* seen, size_t n);
  // A new reservation with room for n bytes, as large as the OS grants up
  // to kArenaBytes, or nullptr.
  Reservation* Reserve(size_t n);

  std::atomic<Reservation*> current_{nullptr};
  LockFreeStack<Reservation, &Reservation::spare_link> spares_;
  std::atomic<size_t> reserved_{0};
};

}  // namespace stackalloc

#endif  // ALLOC_ARENA_H_
