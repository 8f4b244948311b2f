#include "proc/runq.h"

#include "base/throw.h"

namespace stackalloc {
namespace proc {
namespace internal {

void GList::PushBack(ProcG* g) {
  g->schedlink = nullptr;
  if (tail == nullptr) {
    head = g;
  } else {
    tail->schedlink = g;
  }
  tail = g;
  ++n;
}

void GList::PushFront(ProcG* g) {
  g->schedlink = head;
  head = g;
  if (tail == nullptr) tail = g;
  ++n;
}

void GList::SplitAfter(int64_t keep, GList* rest) {
  if (keep <= 0) {
    rest->Append(this);
    return;
  }
  if (n <= keep) return;
  ProcG* last = head;
  for (int64_t i = 1; i < keep; ++i) last = last->schedlink;
  GList cut;
  cut.head = last->schedlink;
  cut.tail = tail;
  cut.n = n - keep;
  last->schedlink = nullptr;
  tail = last;
  n = keep;
  rest->Append(&cut);
}

ProcG* GList::PopFront() {
  ProcG* g = head;
  if (g == nullptr) return nullptr;
  head = g->schedlink;
  if (head == nullptr) tail = nullptr;
  g->schedlink = nullptr;
  --n;
  return g;
}

void GList::Append(GList* other) {
  if (other->empty()) return;
  if (tail == nullptr) {
    head = other->head;
  } else {
    tail->schedlink = other->head;
  }
  tail = other->tail;
  n += other->n;
  *other = GList();
}

ProcG* LocalRunq::PutNext(ProcG* g) {
  // A thief that takes runnext sees the G's fields; seq_cst as in Put().
  return runnext_.exchange(g, std::memory_order_seq_cst);
}

bool LocalRunq::Put(ProcG* g, GList* overflow) {
  for (;;) {
    const uint32_t h = head_.load(std::memory_order_acquire);
    const uint32_t t = tail_.load(std::memory_order_relaxed);
    if (t - h < kSize) {
      ring_[t % kSize].store(g, std::memory_order_relaxed);
      // seq_cst: ordered before the wakep that follows reads nmspinning
      // (the StoreLoad half of the parking protocol, see docs/proc.md).
      tail_.store(t + 1, std::memory_order_seq_cst);
      return true;
    }
    // Full: take the older half (Go's runqputslow). The slots are read
    // before the CAS: once head moves past them, a thief may not, and only
    // the owner (we) could overwrite them.
    constexpr uint32_t kHalf = kSize / 2;
    ProcG* batch[kHalf];
    for (uint32_t i = 0; i < kHalf; ++i) {
      batch[i] = ring_[(h + i) % kSize].load(std::memory_order_relaxed);
    }
    uint32_t expected = h;
    if (!head_.compare_exchange_strong(expected, h + kHalf,
                                       std::memory_order_acq_rel)) {
      continue;  // Thieves took some: there may be room now.
    }
    for (ProcG* b : batch) overflow->PushBack(b);
    overflow->PushBack(g);
    return false;
  }
}

ProcG* LocalRunq::Get() {
  if (runnext_.load(std::memory_order_relaxed) != nullptr) {
    ProcG* next = runnext_.exchange(nullptr, std::memory_order_acquire);
    if (next != nullptr) return next;
  }
  for (;;) {
    uint32_t h = head_.load(std::memory_order_acquire);
    const uint32_t t = tail_.load(std::memory_order_relaxed);
    if (t == h) return nullptr;
    ProcG* g = ring_[h % kSize].load(std::memory_order_relaxed);
    if (head_.compare_exchange_strong(h, h + 1, std::memory_order_acq_rel)) {
      return g;
    }
  }
}

uint32_t LocalRunq::Grab(LocalRunq* victim, uint32_t t, bool steal_next) {
  for (;;) {
    uint32_t h = victim->head_.load(std::memory_order_acquire);
    const uint32_t vt = victim->tail_.load(std::memory_order_acquire);
    uint32_t n = vt - h;
    n -= n / 2;
    if (n == 0) {
      if (!steal_next) return 0;
      ProcG* next = victim->runnext_.load(std::memory_order_acquire);
      if (next == nullptr || !victim->runnext_.compare_exchange_strong(
                                 next, nullptr, std::memory_order_acq_rel)) {
        return 0;
      }
      ring_[t % kSize].store(next, std::memory_order_relaxed);
      return 1;
    }
    if (n > kSize / 2) continue;  // h and vt read at different moments.
    for (uint32_t i = 0; i < n; ++i) {
      ProcG* g = victim->ring_[(h + i) % kSize].load(std::memory_order_relaxed);
      ring_[(t + i) % kSize].store(g, std::memory_order_relaxed);
    }
    if (victim->head_.compare_exchange_strong(h, h + n,
                                              std::memory_order_acq_rel)) {
      return n;
    }
  }
}

ProcG* LocalRunq::StealFrom(LocalRunq* victim, bool steal_next) {
  const uint32_t t = tail_.load(std::memory_order_relaxed);
  uint32_t n = Grab(victim, t, steal_next);
  if (n == 0) return nullptr;
  --n;
  ProcG* g = ring_[(t + n) % kSize].load(std::memory_order_relaxed);
  if (n == 0) return g;
  const uint32_t h = head_.load(std::memory_order_acquire);
  if (t - h + n >= kSize) Throw("runqsteal: runq overflow");
  tail_.store(t + n, std::memory_order_release);
  return g;
}

bool LocalRunq::Empty() const {
  return RingSize() == 0 && runnext_.load(std::memory_order_seq_cst) == nullptr;
}

uint32_t LocalRunq::RingSize() const {
  for (;;) {
    const uint32_t h = head_.load(std::memory_order_seq_cst);
    const uint32_t t = tail_.load(std::memory_order_seq_cst);
    // A consistent pair: head did not move while tail was read.
    if (h == head_.load(std::memory_order_seq_cst)) return t - h;
  }
}

}  // namespace internal
}  // namespace proc
}  // namespace stackalloc
