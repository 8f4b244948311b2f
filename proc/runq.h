// Run queues of the fiber runtime (private to //proc), after Go's runqput /
// runqget / runqsteal: a bounded lock-free ring per M, with a runnext slot,
// and a plain list for the global queue.
//
// LocalRunq: one owner M pushes at the tail and pops at the head; any other
// M may steal about half of it from the head. Head moves only by CAS, the
// tail only by the owner's release store, so a thief that copied slots from
// a stale head fails its CAS instead of taking a G twice. Slots are atomics
// (relaxed): a thief may read a slot the owner is overwriting, and then
// discards what it read.
//
// GList: a FIFO of Gs linked through ProcG::schedlink; external locking.

#ifndef PROC_RUNQ_H_
#define PROC_RUNQ_H_

#include <atomic>
#include <cstdint>

#include "proc/g.h"

namespace stackalloc {
namespace proc {
namespace internal {

// A FIFO of Gs through schedlink. Not thread-safe: its owner (or a lock)
// serialises every use.
struct GList {
  ProcG* head = nullptr;
  ProcG* tail = nullptr;
  int64_t n = 0;

  bool empty() const { return head == nullptr; }
  void PushBack(ProcG* g);
  void PushFront(ProcG* g);
  ProcG* PopFront();  // nullptr if empty.
  // Moves everything after the first `keep` Gs to *rest (in order).
  void SplitAfter(int64_t keep, GList* rest);
  void Append(GList* other);  // Moves all of *other to the back.
};

class LocalRunq {
 public:
  static constexpr uint32_t kSize = 256;

  LocalRunq() = default;
  LocalRunq(const LocalRunq&) = delete;
  LocalRunq& operator=(const LocalRunq&) = delete;

  // Owner only. Makes g runnext, the G to run next, and returns the G it
  // displaced (nullptr if the slot was empty); the caller then Put()s that.
  ProcG* PutNext(ProcG* g);

  // Owner only. Puts g at the tail. When the ring is full, moves its older
  // half and then g onto *overflow (for the global queue) and returns false.
  bool Put(ProcG* g, GList* overflow);

  // Owner only. runnext first, then the head of the ring; nullptr if both
  // are empty.
  ProcG* Get();

  // Owner (the thief) only, with its own ring empty: moves about half of
  // victim's ring into this one and returns one of those Gs to run, or
  // nullptr if there was nothing. With steal_next, an empty ring's runnext
  // may be taken.
  ProcG* StealFrom(LocalRunq* victim, bool steal_next);

  // Any thread: whether the queue looked empty (runnext and ring) at some
  // moment during the call.
  bool Empty() const;
  // Any thread: Gs in the ring (not runnext) at some moment.
  uint32_t RingSize() const;

 private:
  // Copies about half of victim's ring to this ring's slots from tail t on
  // and takes them from victim; returns how many.
  uint32_t Grab(LocalRunq* victim, uint32_t t, bool steal_next);

  alignas(64) std::atomic<uint32_t> head_{0};  // Consumers: CAS.
  alignas(64) std::atomic<uint32_t> tail_{0};  // Owner: release store.
  std::atomic<ProcG*> runnext_{nullptr};
  std::atomic<ProcG*> ring_[kSize] = {};
};

}  // namespace internal
}  // namespace proc
}  // namespace stackalloc

#endif  // PROC_RUNQ_H_
