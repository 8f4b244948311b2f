#include "alloc/stack_pool.h"

#include <cstring>
#include <new>

#include "base/check.h"
#include "base/throw.h"

namespace stackalloc {

StackPool::Node* StackPool::NewNode(int64_t* meta_sys) {
  if (Node* node = empty_.Pop()) return node;
  // Carve a fresh chunk of nodes: keep one, offer the rest to everyone.
  void* mem = node_source_(kNodeChunk);
  if (mem == nullptr) return nullptr;
  *meta_sys += static_cast<int64_t>(kNodeChunk);
  Node* nodes = static_cast<Node*>(mem);
  constexpr size_t kCount = kNodeChunk / sizeof(Node);
  for (size_t i = 0; i < kCount; ++i) new (&nodes[i]) Node;
  for (size_t i = 1; i < kCount; ++i) empty_.Push(&nodes[i]);
  return &nodes[0];
}

bool StackPool::Put(void* const* stacks, int n, int64_t* meta_sys) {
  if (n <= 0 || n > kMaxBatch) Throw("StackPool::Put: bad batch size");
  Node* node = NewNode(meta_sys);
  if (node == nullptr) return false;
  memcpy(node->items, stacks, n * sizeof(void*));
  node->n = n;
  stacks_.fetch_add(n, std::memory_order_relaxed);
  full_.Push(node);
  return true;
}

int StackPool::Get(void** out) {
  Node* node = full_.Pop();
  if (node == nullptr) node = seen_[0].Pop();
  if (node == nullptr) node = seen_[1].Pop();
  if (node == nullptr) return 0;
  const int n = node->n;
  STACKALLOC_DCHECK(n > 0 && n <= kMaxBatch);
  memcpy(out, node->items, n * sizeof(void*));
  stacks_.fetch_sub(n, std::memory_order_relaxed);
  empty_.Push(node);
  return n;
}

void StackPool::AddChunk(ChunkRecord* rec) {
  STACKALLOC_CHECK_EQ(rec->order, order_);
  ChunkRecord* head = chunks_.load(std::memory_order_relaxed);
  do {
    rec->order_next = head;
  } while (!chunks_.compare_exchange_weak(head, rec, std::memory_order_release,
                                          std::memory_order_relaxed));
}

ChunkRecord* StackPool::TakeReleasedChunk(bool guarded) {
  ChunkRecord* rec = released_[guarded ? 1 : 0].Pop();
  if (rec != nullptr) released_count_.fetch_sub(1, std::memory_order_relaxed);
  return rec;
}

int StackPool::RescueStranded(void** out, int max, SlotState to) {
  if (stranded() <= 0) return 0;
  // The scavenger also walks stranded slots: one of us at a time.
  if (scavenging_.exchange(true, std::memory_order_acquire)) return 0;
  int n = 0;
  SlotState found;
  for (ChunkRecord* rec = chunks_.load(std::memory_order_acquire);
       rec != nullptr && n < max; rec = rec->order_next) {
    for (int i = 0; i < rec->nslots && n < max; ++i) {
      if (rec->State(i) == SlotState::kStranded &&
          rec->Transition(i, SlotState::kStranded, to, &found)) {
        out[n++] = reinterpret_cast<void*>(rec->StackAt(i));
      }
    }
  }
  stranded_.fetch_sub(n, std::memory_order_relaxed);
  scavenging_.store(false, std::memory_order_release);
  return n;
}

// --- Scavenge. It runs with scavenging_ held, so every record's
// scavenge_count is the pass's alone. ---

// Adds the stranded stacks to their chunks' counts.
void StackPool::CountStranded() {
  for (ChunkRecord* rec = chunks_.load(std::memory_order_acquire);
       rec != nullptr; rec = rec->order_next) {
    for (int i = 0; i < rec->nslots; ++i) {
      if (rec->State(i) == SlotState::kStranded) ++rec->scavenge_count;
    }
  }
}

// Holds stacks aside in nodes from the pool's empty list, the pass's alone
// until it takes them (Take()); what it still has at the end goes back to
// the empty list.
class StackPool::Holder {
 public:
  explicit Holder(StackPool* pool) : pool_(pool) {}

  // False if there was no node for the stack.
  bool Append(void* stack) {
    if (out_ == nullptr || out_->n == kMaxBatch) {
      Node* n = pool_->empty_.Pop();
      if (n == nullptr) return false;
      n->n = 0;
      n->next.store(out_, std::memory_order_relaxed);
      out_ = n;
    }
    out_->items[out_->n++] = stack;
    return true;
  }

  // Lets go of every stack in [lo, hi) (a chunk's), keeping the rest.
  void Drop(uintptr_t lo, uintptr_t hi) {
    for (Node* n = out_; n != nullptr;
         n = n->next.load(std::memory_order_relaxed)) {
      int kept = 0;
      for (int i = 0; i < n->n; ++i) {
        const auto a = reinterpret_cast<uintptr_t>(n->items[i]);
        if (a < lo || a >= hi) n->items[kept++] = n->items[i];
      }
      n->n = kept;
    }
  }

  // The nodes held, linked by next; the caller owns them.
  Node* Take() {
    Node* n = out_;
    out_ = nullptr;
    return n;
  }

  ~Holder() {
    while (out_ != nullptr) {
      Node* n = out_;
      out_ = n->next.load(std::memory_order_relaxed);
      pool_->empty_.Push(n);
    }
  }

 private:
  StackPool* const pool_;
  Node* out_ = nullptr;
};

// Returns a chunk whose every slot is free to the OS, books it
// (on_release) and offers it for reuse; false, changing nothing, if the OS
// kept its pages (they are locked).
// REQUIRES: no slot of rec is in a batch any more; its scavenge_count is 0.
bool StackPool::ReleaseChunk(ChunkRecord* rec, ScavengeResult* r,
                             OnRelease on_release, void* arg) {
  if (!SysUnused(reinterpret_cast<void*>(rec->base.load()), rec->bytes)) {
    return false;
  }
  ScavengeResult one;
  one.chunks_released = 1;
  one.chunk_stacks = rec->nslots;
  int64_t stranded = 0;
  SlotState found;
  for (int i = 0; i < rec->nslots; ++i) {
    const SlotState s = rec->State(i);
    if (s == SlotState::kReleased) ++one.chunk_stacks_were_released;
    if (s == SlotState::kStranded) ++stranded;
    STACKALLOC_CHECK(s == SlotState::kPooled || s == SlotState::kReleased ||
                     s == SlotState::kStranded);
    STACKALLOC_CHECK(rec->Transition(i, s, SlotState::kUncarved, &found));
  }
  stranded_.fetch_sub(stranded, std::memory_order_relaxed);
  released_stacks_.fetch_sub(one.chunk_stacks_were_released,
                             std::memory_order_relaxed);
  r->chunks_released += 1;
  r->chunk_stacks += one.chunk_stacks;
  r->chunk_stacks_were_released += one.chunk_stacks_were_released;
  if (on_release != nullptr) on_release(one, arg);
  // Only now, with its pages gone and booked, may another M carve it again.
  released_count_.fetch_add(1, std::memory_order_relaxed);
  released_[rec->guard != 0 ? 1 : 0].Push(rec);
  return true;
}

// Returns the pages of one pooled stack (its guard stays) and books it,
// unless the OS keeps them (locked): then it stays as it was.
void StackPool::ReleaseStack(ChunkRecord* rec, int slot, ScavengeResult* r,
                             OnRelease on_release, void* arg) {
  SlotState found;
  if (rec->State(slot) != SlotState::kPooled) return;  // Already released.
  if (!SysUnused(reinterpret_cast<void*>(rec->StackAt(slot)),
                 rec->stack_size)) {
    return;
  }
  STACKALLOC_CHECK(
      rec->Transition(slot, SlotState::kPooled, SlotState::kReleased, &found));
  released_stacks_.fetch_add(1, std::memory_order_relaxed);
  ++r->stacks_released;
  if (on_release != nullptr) {
    ScavengeResult one;
    one.stacks_released = 1;
    on_release(one, arg);
  }
}

// Puts batch n back (into `to`), or its node into the empty list if it
// holds no stack any more.
void StackPool::PutBack(Node* n, NodeStack* to) {
  if (n->n == 0) {
    empty_.Push(n);
    return;
  }
  stacks_.fetch_add(n->n, std::memory_order_relaxed);
  to->Push(n);
}

// A pass never takes the pool's batches all at once: while it ran, refills
// would find the pool empty and carve new chunks (peak memory rose 1.5-2x
// with a scavenger preempted mid-pass on a loaded machine). It takes one
// batch at a time, from full_ and from the batches the last pass put back;
// holds aside the stacks of chunks that may be wholly free (every slot in
// the pool, by ChunkRecord::pool_slots) and releases a chunk, offered for
// reuse at once, the moment it holds all of them (with the stranded ones);
// puts the batch back with every other stack, in the other list, so it
// never meets a batch twice, after returning their pages if release_stacks.
// At the end the held stacks of chunks not released go back to the pool.
// Batches are changed in place, nothing copied onto the stack (a G may
// call this on a 4 KiB stack).
StackPool::ScavengeResult StackPool::Scavenge(bool release_stacks,
                                              OnRelease on_release, void* arg) {
  ScavengeResult r;
  if (scavenging_.exchange(true, std::memory_order_acquire)) return r;
  r.ran = true;
  bool candidates = false;
  for (ChunkRecord* rec = chunks_.load(std::memory_order_acquire);
       rec != nullptr && !candidates; rec = rec->order_next) {
    candidates = rec->pool_slots.load(std::memory_order_relaxed) == rec->nslots;
  }
  if (!candidates && !release_stacks) {
    scavenging_.store(false, std::memory_order_release);
    return r;
  }
  Holder held(this);
  // A chunk's scavenge_count: its stacks held (and stranded) while below
  // nslots. Whole, it goes (0 again before the release, since another
  // thread may take the record at once) and its stacks leave the holder; if
  // the OS refuses, it is marked kKept and its stacks go back at the end.
  constexpr int kKept = -1;
  auto release_if_whole = [&](ChunkRecord* rec) {
    if (rec->scavenge_count.load(std::memory_order_relaxed) != rec->nslots) {
      return;
    }
    const uintptr_t base = rec->base.load();
    const uintptr_t end = base + rec->bytes;
    rec->scavenge_count.store(0, std::memory_order_relaxed);
    if (ReleaseChunk(rec, &r, on_release, arg)) {
      held.Drop(base, end);  // By address: the record may be reused already.
    } else {
      rec->scavenge_count.store(kKept, std::memory_order_relaxed);
    }
  };
  if (candidates && stranded() > 0) {
    CountStranded();
    for (ChunkRecord* rec = chunks_.load(std::memory_order_acquire);
         rec != nullptr; rec = rec->order_next) {
      release_if_whole(rec);  // Every slot stranded.
    }
  }
  NodeStack* const from[2] = {&full_, &seen_[seen_parity_]};
  seen_parity_ ^= 1;
  NodeStack* const to = &seen_[seen_parity_];
  for (NodeStack* list : from) {
    // Each batch holds a stack at least: the pass ends even while others
    // keep putting batches in.
    for (int64_t bound = stacks(); bound > 0; --bound) {
      Node* n = list->Pop();
      if (n == nullptr) break;
      const int count = n->n;
      stacks_.fetch_sub(count, std::memory_order_relaxed);
      r.stacks_examined += count;
      int kept = 0;
      for (int i = 0; i < count; ++i) {
        void* stack = n->items[i];
        const auto a = reinterpret_cast<uintptr_t>(stack);
        ChunkRecord* rec = map_->Lookup(a);
        STACKALLOC_CHECK(rec != nullptr && rec->order == order_);
        // A stack twice in the pool, or of a chunk already decided (one
        // released in this pass has every slot kUncarved).
        const SlotState state = rec->State(rec->SlotOfStack(a));
        STACKALLOC_CHECK(state == SlotState::kPooled ||
                         state == SlotState::kReleased);
        const int held_so_far = rec->scavenge_count.load();
        STACKALLOC_CHECK(held_so_far >= 0 && held_so_far < rec->nslots);
        if (candidates &&
            rec->pool_slots.load(std::memory_order_relaxed) == rec->nslots &&
            held.Append(stack)) {
          rec->scavenge_count.store(held_so_far + 1, std::memory_order_relaxed);
          release_if_whole(rec);
          continue;
        }
        if (release_stacks) {
          ReleaseStack(rec, rec->SlotOfStack(a), &r, on_release, arg);
        }
        n->items[kept++] = stack;
      }
      n->n = kept;
      PutBack(n, to);
    }
  }
  // What is still held belongs to chunks not released: back to the pool.
  for (Node* n = held.Take(); n != nullptr;) {
    Node* next = n->next.load(std::memory_order_relaxed);
    for (int i = 0; i < n->n; ++i) {
      const auto a = reinterpret_cast<uintptr_t>(n->items[i]);
      ChunkRecord* rec = map_->Lookup(a);
      if (release_stacks) {
        ReleaseStack(rec, rec->SlotOfStack(a), &r, on_release, arg);
      }
    }
    PutBack(n, to);
    n = next;
  }
  // Counts of the chunks not released (a released record's is 0 already,
  // and may be another thread's to reset now).
  for (ChunkRecord* rec = chunks_.load(std::memory_order_acquire);
       rec != nullptr; rec = rec->order_next) {
    if (rec->scavenge_count.load(std::memory_order_relaxed) != 0) {
      rec->scavenge_count.store(0, std::memory_order_relaxed);
    }
  }
  scavenging_.store(false, std::memory_order_release);
  return r;
}

}  // namespace stackalloc
