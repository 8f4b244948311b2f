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

// Packs stacks into batches, in nodes from a spare list, and pushes each
// batch to `to` as it fills (or, with `to` null, keeps them: Take()). The
// pass's alone: no other thread sees its nodes until they are pushed.
class StackPool::Batcher {
 public:
  Batcher(StackPool* pool, NodeStack* to) : pool_(pool), to_(to) {}

  // Takes the emptied node n as a spare.
  void AddSpare(Node* n) {
    n->next.store(spare_, std::memory_order_relaxed);
    spare_ = n;
  }

  // False if there was no node for the stack (only when it has no spare and
  // the pool none in its empty list).
  bool Append(void* stack) {
    if (out_ == nullptr) {
      out_ = spare_ != nullptr ? spare_ : pool_->empty_.Pop();
      if (out_ == nullptr) return false;
      if (out_ == spare_) spare_ = spare_->next.load(std::memory_order_relaxed);
      out_->n = 0;
    }
    out_->items[out_->n++] = stack;
    if (out_->n == kMaxBatch) Flush();
    return true;
  }

  // Pushes the partial batch, if any (kept, with `to` null).
  void Flush() {
    if (out_ == nullptr) return;
    if (to_ != nullptr) {
      pool_->stacks_.fetch_add(out_->n, std::memory_order_relaxed);
      to_->Push(out_);
    } else {
      out_->next.store(kept_, std::memory_order_relaxed);
      kept_ = out_;
    }
    out_ = nullptr;
  }

  // The batches kept (with `to` null), linked by next; the caller owns them.
  Node* Take() {
    Flush();
    Node* k = kept_;
    kept_ = nullptr;
    return k;
  }

  // Flushes, then gives every spare node back to the pool's empty list.
  ~Batcher() {
    Flush();
    for (Node* list : {spare_, kept_}) {
      while (list != nullptr) {
        Node* n = list;
        list = n->next.load(std::memory_order_relaxed);
        pool_->empty_.Push(n);
      }
    }
  }

 private:
  StackPool* const pool_;
  NodeStack* const to_;
  Node* spare_ = nullptr;
  Node* out_ = nullptr;
  Node* kept_ = nullptr;
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

// A pass never takes the pool's batches all at once: while it ran, refills
// would find the pool empty and carve new chunks (peak memory rose 1.5-2.5x
// with a scavenger preempted mid-pass on a loaded machine). It takes one
// batch at a time, from full_ and from the batches the last pass put back;
// holds aside the stacks of chunks that may be wholly free (every slot in
// the pool, by ChunkRecord::pool_slots); puts every other stack back, in
// the other list, so it never meets a batch twice, after returning its
// pages if release_stacks. A chunk whose stacks it then holds all (with
// the stranded ones) goes back to the OS; the held stacks of the rest go
// back to the pool.
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
  if (candidates && stranded() > 0) CountStranded();
  NodeStack* const from[2] = {&full_, &seen_[seen_parity_]};
  seen_parity_ ^= 1;
  {
    Batcher kept(this, &seen_[seen_parity_]);
    Batcher held(this, nullptr);
    for (NodeStack* list : from) {
      // Each batch holds a stack at least: the pass ends even while others
      // keep putting batches in.
      for (int64_t bound = stacks(); bound > 0; --bound) {
        Node* n = list->Pop();
        if (n == nullptr) break;
        const int count = n->n;
        void* items[kMaxBatch];
        memcpy(items, n->items, count * sizeof(void*));
        stacks_.fetch_sub(count, std::memory_order_relaxed);
        r.stacks_examined += count;
        kept.AddSpare(n);
        for (int i = 0; i < count; ++i) {
          const auto a = reinterpret_cast<uintptr_t>(items[i]);
          ChunkRecord* rec = map_->Lookup(a);
          STACKALLOC_CHECK(rec != nullptr && rec->order == order_);
          STACKALLOC_CHECK_LT(rec->scavenge_count, rec->nslots);
          if (candidates &&
              rec->pool_slots.load(std::memory_order_relaxed) == rec->nslots &&
              held.Append(items[i])) {
            ++rec->scavenge_count;
            continue;
          }
          if (release_stacks) ReleaseStack(rec, rec->SlotOfStack(a), &r);
          STACKALLOC_CHECK(kept.Append(items[i]));  // Its node is a spare.
        }
      }
    }
    // Held stacks of chunks not wholly held go back; their nodes first
    // become spares, so there is a node for each.
    for (Node* n = held.Take(); n != nullptr;) {
      Node* next = n->next.load(std::memory_order_relaxed);
      const int count = n->n;
      void* items[kMaxBatch];
      memcpy(items, n->items, count * sizeof(void*));
      kept.AddSpare(n);
      for (int i = 0; i < count; ++i) {
        const auto a = reinterpret_cast<uintptr_t>(items[i]);
        ChunkRecord* rec = map_->Lookup(a);
        if (rec->scavenge_count == rec->nslots) continue;  // Goes whole.
        if (release_stacks) ReleaseStack(rec, rec->SlotOfStack(a), &r);
        STACKALLOC_CHECK(kept.Append(items[i]));
      }
      n = next;
    }
    kept.Flush();
    // Every chunk held whole goes back to the OS; one the OS refuses to
    // take goes back to the pool. Counts are reset before a release, since
    // another thread may take the released record at once.
    for (ChunkRecord* rec = chunks_.load(std::memory_order_acquire);
         rec != nullptr; rec = rec->order_next) {
      const bool whole = rec->scavenge_count == rec->nslots;
      rec->scavenge_count = 0;
      if (!whole || ReleaseChunk(rec, &r)) continue;
      for (int i = 0; i < rec->nslots; ++i) {
        const SlotState s = rec->State(i);
        if (s == SlotState::kPooled || s == SlotState::kReleased) {
          STACKALLOC_CHECK(
              kept.Append(reinterpret_cast<void*>(rec->StackAt(i))));
        }
      }
    }
  }  // The batcher pushes its last batch and gives its spare nodes back.
  released_stacks_.fetch_sub(r.chunk_stacks_were_released,
                             std::memory_order_relaxed);
  scavenging_.store(false, std::memory_order_release);
  return r;
}

}  // namespace stackalloc
