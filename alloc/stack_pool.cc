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
  if (node == nullptr) node = released_full_.Pop();
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

// --- Scavenge, in phases. Each runs with scavenging_ held and the batches
// detached, so the stacks in them and every record's scavenge_count are the
// pass's alone. ---

// Counts, per chunk, the free stacks in the detached batches. Returns how
// many stacks there are.
int64_t StackPool::CountByChunk(Node* taken, ScavengeResult* r) {
  int64_t total = 0;
  for (Node* n = taken; n != nullptr; n = n->next.load()) {
    for (int i = 0; i < n->n; ++i) {
      ChunkRecord* rec = map_->Lookup(reinterpret_cast<uintptr_t>(n->items[i]));
      STACKALLOC_CHECK(rec != nullptr && rec->order == order_);
      STACKALLOC_CHECK_LT(rec->scavenge_count, rec->nslots);
      ++rec->scavenge_count;
    }
    total += n->n;
  }
  r->stacks_examined = total;
  return total;
}

// Adds the stranded stacks to their chunks' counts.
void StackPool::CountStranded() {
  for (ChunkRecord* rec = chunks_.load(std::memory_order_acquire);
       rec != nullptr; rec = rec->order_next) {
    for (int i = 0; i < rec->nslots; ++i) {
      if (rec->State(i) == SlotState::kStranded) ++rec->scavenge_count;
    }
  }
}

// Packs stacks into full batches, in nodes from a spare list, and pushes
// each batch to the pool as it fills. The pass's alone (no other thread sees
// its nodes until they are pushed).
class StackPool::Batcher {
 public:
  Batcher(StackPool* pool, Node* spare) : pool_(pool), spare_(spare) {}

  // Takes the emptied node n as a spare.
  void AddSpare(Node* n) {
    n->next.store(spare_, std::memory_order_relaxed);
    spare_ = n;
  }

  void Append(void* stack) {
    if (out_ == nullptr) {
      // There are never more stacks than the nodes they came in held.
      STACKALLOC_CHECK(spare_ != nullptr);
      out_ = spare_;
      spare_ = spare_->next.load(std::memory_order_relaxed);
      out_->n = 0;
    }
    out_->items[out_->n++] = stack;
    if (out_->n == kMaxBatch) Flush();
  }

  // Pushes the partial batch, if any.
  void Flush() {
    if (out_ == nullptr) return;
    pool_->stacks_.fetch_add(out_->n, std::memory_order_relaxed);
    pool_->full_.Push(out_);
    out_ = nullptr;
  }

  // Flushes, then gives every spare node back to the pool's empty list.
  ~Batcher() {
    Flush();
    while (spare_ != nullptr) {
      Node* n = spare_;
      spare_ = n->next.load(std::memory_order_relaxed);
      pool_->empty_.Push(n);
    }
  }

 private:
  StackPool* const pool_;
  Node* spare_;
  Node* out_ = nullptr;
};

// Returns a chunk whose every slot is free to the OS and offers it for reuse;
// false, changing nothing, if the OS kept its pages (they are locked).
// REQUIRES: no slot of rec is in a batch any more.
bool StackPool::ReleaseChunk(ChunkRecord* rec, ScavengeResult* r) {
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
  // Only now, with its pages gone, may another M carve it again.
  released_count_.fetch_add(1, std::memory_order_relaxed);
  released_[rec->guard != 0 ? 1 : 0].Push(rec);
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

StackPool::ScavengeResult StackPool::Scavenge(bool release_stacks) {
  ScavengeResult r;
  if (scavenging_.exchange(true, std::memory_order_acquire)) return r;
  r.ran = true;
  // Take every batch; from here on they are ours alone, and Put()/Get() go
  // on with an empty pool.
  Node* taken = full_.PopAll();
  if (Node* released = released_full_.PopAll()) {
    Node* last = released;
    while (Node* next = last->next.load(std::memory_order_relaxed)) {
      last = next;
    }
    last->next.store(taken, std::memory_order_relaxed);
    taken = released;
  }
  stacks_.fetch_sub(CountByChunk(taken, &r), std::memory_order_relaxed);
  const bool walk = stranded() > 0;
  if (walk) CountStranded();
  // Chunks to release, found before any stack goes back (their stacks must
  // not), released after (the slow part, with the pool serving again).
  ChunkRecord* to_release = nullptr;
  auto mark = [&to_release](ChunkRecord* rec) {
    if (rec->scavenge_count != rec->nslots) return;
    rec->scavenge_count = -1;  // Marked: counted once.
    rec->pool_link.store(to_release, std::memory_order_relaxed);
    to_release = rec;
  };
  for (Node* n = taken; n != nullptr; n = n->next.load()) {
    for (int i = 0; i < n->n; ++i) {
      mark(map_->Lookup(reinterpret_cast<uintptr_t>(n->items[i])));
    }
  }
  if (walk) {
    for (ChunkRecord* rec = chunks_.load(std::memory_order_acquire);
         rec != nullptr; rec = rec->order_next) {
      mark(rec);
      if (rec->scavenge_count > 0) rec->scavenge_count = 0;  // Stays.
    }
  }
  {
    // The stacks that stay go back in full batches, their emptied nodes
    // reused; the stacks of a chunk the OS refuses to take follow them.
    Batcher batcher(this, nullptr);
    int64_t kept = 0;  // Stacks back in the pool.
    for (Node* n = taken; n != nullptr;) {
      Node* next = n->next.load(std::memory_order_relaxed);
      void* items[kMaxBatch];
      const int count = n->n;
      memcpy(items, n->items, count * sizeof(void*));
      batcher.AddSpare(n);
      for (int i = 0; i < count; ++i) {
        ChunkRecord* rec = map_->Lookup(reinterpret_cast<uintptr_t>(items[i]));
        if (rec->scavenge_count < 0) continue;  // Goes whole.
        rec->scavenge_count = 0;
        batcher.Append(items[i]);
        ++kept;
      }
      n = next;
    }
    batcher.Flush();  // The pool serves again while chunks are released.
    while (to_release != nullptr) {
      ChunkRecord* rec = to_release;
      to_release = rec->pool_link.load(std::memory_order_relaxed);
      rec->scavenge_count = 0;
      if (ReleaseChunk(rec, &r)) continue;
      for (int i = 0; i < rec->nslots; ++i) {
        const SlotState s = rec->State(i);
        if (s == SlotState::kPooled || s == SlotState::kReleased) {
          batcher.Append(reinterpret_cast<void*>(rec->StackAt(i)));
        }
      }
    }
    // The batches go back to the pool while each one's pages are returned
    // in turn, so that it is never empty for long; at most the batches the
    // pass put back, so that it ends.
    if (release_stacks) {
      for (int64_t b = (kept + kMaxBatch - 1) / kMaxBatch; b > 0; --b) {
        Node* n = full_.Pop();
        if (n == nullptr) break;
        for (int i = 0; i < n->n; ++i) {
          const auto a = reinterpret_cast<uintptr_t>(n->items[i]);
          ChunkRecord* rec = map_->Lookup(a);
          ReleaseStack(rec, rec->SlotOfStack(a), &r);
        }
        released_full_.Push(n);
      }
    }
  }  // The batcher pushes its last batch and gives its spare nodes back.
  released_stacks_.fetch_sub(r.chunk_stacks_were_released,
                             std::memory_order_relaxed);
  scavenging_.store(false, std::memory_order_release);
  return r;
}

}  // namespace stackalloc
