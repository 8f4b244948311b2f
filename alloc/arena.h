// StackArena: where new stack chunks are cut from (Go's heap arenas).
//
// Chunks are carved, granule-aligned, from large reservations (kArenaBytes
// each) by a lock-free bump pointer, so that neighbouring chunks share one
// mapping: a million stacks cost a handful of lines in /proc/self/maps, and
// memory is committed only as pages are touched. Reservations are never
// unmapped; a chunk's pages go back to the OS with SysUnused.
//
// Thread-safe and lock-free (a thread that finds the current reservation
// exhausted maps the next; if another thread installed one first, it unmaps
// its own and carves from theirs).

#ifndef ALLOC_ARENA_H_
#define ALLOC_ARENA_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace stackalloc {

class StackArena {
 public:
  static constexpr size_t kArenaBytes = size_t{64} << 20;

  constexpr StackArena() = default;
  StackArena(const StackArena&) = delete;
  StackArena& operator=(const StackArena&) = delete;

  // n bytes (rounded up to kChunkGranule; at most kArenaBytes) of zeroed,
  // read-write memory at a kChunkGranule-aligned address, or nullptr if the
  // OS refused a new reservation.
  void* Alloc(size_t n);

  // Bytes of address space reserved so far.
  size_t reserved() const { return reserved_.load(std::memory_order_relaxed); }

 private:
  // Kept in the first page of its own reservation, which is never unmapped:
  // a thread holding a stale pointer to it reads valid memory.
  struct Reservation {
    uintptr_t end;                  // One past the last usable byte.
    std::atomic<uintptr_t> cursor;  // Next free byte (granule-aligned).
  };

  // Maps a new reservation and makes it current, unless another thread
  // replaced `seen` first. False if the OS refused.
  bool Grow(Reservation* seen);

  std::atomic<Reservation*> current_{nullptr};
  std::atomic<size_t> reserved_{0};
};

}  // namespace stackalloc

#endif  // ALLOC_ARENA_H_
