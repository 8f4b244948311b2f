#include "alloc/stack_pool.h"

#include <algorithm>
#include <cstring>

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
  if (n <= 0 || n > kMaxBatch ||
      static_cast<size_t>(n) > chunk_size_ / stack_size_) {
    Throw("StackPool::Put: bad batch size");
  }
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
  if (node == nullptr) return 0;
  int n = node->n;
  memcpy(out, node->items, n * sizeof(void*));
  stacks_.fetch_sub(n, std::memory_order_relaxed);
  empty_.Push(node);
  return n;
}

void* StackPool::TakeReleasedChunk() {
  Node* node = released_list_.Pop();
  if (node == nullptr) return nullptr;
  void* chunk = node->items[0];
  released_.fetch_sub(1, std::memory_order_relaxed);
  empty_.Push(node);
  return chunk;
}

StackPool::ScavengeResult StackPool::Scavenge() {
  ScavengeResult result;
  if (scavenging_.exchange(true, std::memory_order_acquire)) return result;
  result.ran = true;

  // Take every batch; from here on they are ours alone, and Put()/Get() go
  // on with an empty pool.
  Node* taken = full_.PopAll();
  int64_t total = 0;
  int batch = 1;
  for (Node* n = taken; n != nullptr; n = n->next.load()) {
    total += n->n;
    batch = std::max(batch, n->n);
  }
  result.stacks_examined = total;
  void** all = total == 0
                   ? nullptr
                   : static_cast<void**>(SysAlloc(total * sizeof(void*)));
  if (all != nullptr) {
    int64_t k = 0;
    for (Node* n = taken; n != nullptr; n = n->next.load()) {
      memcpy(&all[k], n->items, n->n * sizeof(void*));
      k += n->n;
    }
    std::sort(all, all + total);
  }

  // Re-batch what stays, and record what goes, in the nodes we took: as many
  // stacks per node as the fullest batch had, and one node per released
  // chunk, never needs more nodes than came in (a chunk holds at least one
  // batch's worth of stacks: Put() checks it).
  Node* spare = taken;
  auto next_spare = [&spare] {
    Node* n = spare;
    spare = n->next.load(std::memory_order_relaxed);
    return n;
  };
  Node* out = nullptr;
  auto keep = [&](void* stack) {
    if (out == nullptr) {
      out = next_spare();
      out->n = 0;
    }
    out->items[out->n++] = stack;
    if (out->n == batch) {
      stacks_.fetch_add(out->n, std::memory_order_relaxed);
      full_.Push(out);
      out = nullptr;
    }
  };
  const int64_t per_chunk = static_cast<int64_t>(chunk_size_ / stack_size_);
  Node* to_release = nullptr;
  stacks_.fetch_sub(total, std::memory_order_relaxed);
  if (all != nullptr) {
    for (int64_t i = 0; i < total;) {
      uintptr_t chunk =
          reinterpret_cast<uintptr_t>(all[i]) & ~(chunk_size_ - 1);
      int64_t j = i + 1;
      while (j < total && (reinterpret_cast<uintptr_t>(all[j]) &
                           ~(chunk_size_ - 1)) == chunk) {
        if (all[j] == all[j - 1]) Throw("stackfree: stack freed twice");
        ++j;
      }
      if (j - i == per_chunk) {
        // Released below, once what stays is back in the pool.
        Node* r = next_spare();
        r->n = 1;
        r->items[0] = reinterpret_cast<void*>(chunk);
        r->next.store(to_release, std::memory_order_relaxed);
        to_release = r;
        ++result.chunks_released;
      } else {
        for (int64_t s = i; s < j; ++s) keep(all[s]);
      }
      i = j;
    }
    SysFree(all, total * sizeof(void*));
  } else {
    // No memory to sort in: put every batch back as it was.
    while (spare != nullptr) {
      Node* n = next_spare();
      stacks_.fetch_add(n->n, std::memory_order_relaxed);
      full_.Push(n);
    }
  }
  if (out != nullptr) {
    stacks_.fetch_add(out->n, std::memory_order_relaxed);
    full_.Push(out);
  }
  while (spare != nullptr) empty_.Push(next_spare());
  // Only now the slow part: tell the OS, then offer each chunk for reuse
  // (never before its pages are gone, or a reuser's data would go too).
  while (to_release != nullptr) {
    Node* r = to_release;
    to_release = r->next.load(std::memory_order_relaxed);
    SysUnused(r->items[0], chunk_size_);
    released_.fetch_add(1, std::memory_order_relaxed);
    released_list_.Push(r);
  }
  scavenging_.store(false, std::memory_order_release);
  return result;
}

}  // namespace stackalloc
