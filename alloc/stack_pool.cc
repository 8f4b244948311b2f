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

// Returns a chunk whose every slot is free to the OS and links it on *done,
// to be offered for reuse once the pass ends; false, changing nothing, if
// the OS kept its pages (they are locked).
// REQUIRES: no slot of rec is in a batch any more.
bool StackPool::ReleaseChunk(ChunkRecord* rec, ScavengeResult* r,
                             ChunkRecord** done) {
  if (!SysUnused(reinterpret_cast<void*>(rec->base.load()), rec->bytes)) {
    return false;
  }
  int64_t stranded = 0;
  SlotState found;
  for (int i = 0; i < rec->nslots; ++i) {
    const SlotState s = rec->State(i);
    if (s == SlotState::kReleased) ++r->chunk_stacks_were_released;
    if (s == SlotState::kStranded) ++stranded;
    STACKALLOC_CHECK(s == SlotState::kPooled || s == SlotState::kReleased ||
                     s == SlotState::kStranded);
    STACKALLOC_CHECK(rec->Transition(i, s, SlotState::kUncarved, &found));
  }
  stranded_.fetch_sub(stranded, std::memory_order_relaxed);
  r->chunk_stacks += rec->nslots;
  ++r->chunks_released;
  rec->pool_link.store(*done, std::memory_order_relaxed);
  *done = rec;
  return true;
}

// Returns the pages of one pooled stack (its guard stays), unless the OS
// keeps them (locked): then it stays as it was.
void StackPool::ReleaseStack(ChunkRecord* rec, int slot, ScavengeResult* r) {
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
// would find the pool empty and carve new chunks (peak memory rose 1.5x
// with a scavenger preempted mid-pass on a loaded machine). It takes one
// batch at a time, from full_ and from the batches the last pass put back;
// holds aside the stacks of chunks that may be wholly free (every slot in
// the pool, by ChunkRecord::pool_slots) and releases a chunk the moment it
// holds all of them (with the stranded ones); puts the batch back with
// every other stack, in the other list, so it never meets a batch twice,
// after returning their pages if release_stacks. At the end the held
// stacks of chunks not released go back to the pool, and the released
// chunks are offered for reuse: until then their records, and the counts
// in them, are the pass's alone. Batches are changed in place, nothing
// copied onto the stack (a G may call this on a 4 KiB stack).
StackPool::ScavengeResult StackPool::Scavenge(bool release_stacks) {
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
  // A chunk's scavenge_count: stacks held (and stranded) while below
  // nslots; then kGone once released, or kKept if the OS refused.
  constexpr int kGone = -1;
  constexpr int kKept = -2;
  ChunkRecord* done = nullptr;  // Released, offered at the end.
  auto release_if_whole = [&](ChunkRecord* rec) {
    if (rec->scavenge_count != rec->nslots) return;
    rec->scavenge_count = ReleaseChunk(rec, &r, &done) ? kGone : kKept;
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
  Node* held_nodes;
  {
    Holder held(this);
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
          // A stack twice in the pool, or of a chunk already decided.
          STACKALLOC_CHECK(rec->scavenge_count >= 0 &&
                           rec->scavenge_count < rec->nslots);
          if (candidates &&
              rec->pool_slots.load(std::memory_order_relaxed) == rec->nslots &&
              held.Append(stack)) {
            ++rec->scavenge_count;
            release_if_whole(rec);
            continue;
          }
          if (release_stacks) ReleaseStack(rec, rec->SlotOfStack(a), &r);
          n->items[kept++] = stack;
        }
        n->n = kept;
        PutBack(n, to);
      }
    }
    held_nodes = held.Take();
  }
  // Held stacks of released chunks leave their nodes; the rest go back.
  while (held_nodes != nullptr) {
    Node* n = held_nodes;
    held_nodes = n->next.load(std::memory_order_relaxed);
    int kept = 0;
    for (int i = 0; i < n->n; ++i) {
      void* stack = n->items[i];
      const auto a = reinterpret_cast<uintptr_t>(stack);
      ChunkRecord* rec = map_->Lookup(a);
      if (rec->scavenge_count == kGone) continue;
      if (release_stacks) ReleaseStack(rec, rec->SlotOfStack(a), &r);
      n->items[kept++] = stack;
    }
    n->n = kept;
    PutBack(n, to);
  }
  for (ChunkRecord* rec = chunks_.load(std::memory_order_acquire);
       rec != nullptr; rec = rec->order_next) {
    rec->scavenge_count = 0;
  }
  // Only now, with their pages gone and the pass done with their records,
  // may another M carve them again.
  while (done != nullptr) {
    ChunkRecord* rec = done;
    done = rec->pool_link.load(std::memory_order_relaxed);
    released_count_.fetch_add(1, std::memory_order_relaxed);
    released_[rec->guard != 0 ? 1 : 0].Push(rec);
  }
  released_stacks_.fetch_sub(r.chunk_stacks_were_released,
                             std::memory_order_relaxed);
  scavenging_.store(false, std::memory_order_release);
  return r;
}

}  // namespace stackalloc
