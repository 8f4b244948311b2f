#include "stackalloc.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "alloc/sys_alloc.h"
#include "alloc/throw.h"
#include "sched/m.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif

namespace stackalloc {
namespace {

// Stacks moved between an M's cache and its FixAlloc at a time: half the
// cache, so a full cache can take as many frees as an empty one can allocs.
constexpr int kStackBatch = kStackCacheSize / 2;

std::atomic<FixAlloc::ChunkSource> chunk_source{&SysAlloc};

void* StackChunk(size_t n) {
  return chunk_source.load(std::memory_order_relaxed)(n);
}

// Under ASan, a stack is poisoned from stackfree until stackalloc hands it out
// again, so a use after stackfree is reported; unpoisoning on the way out also
// clears the redzones of frames that ran on it earlier.
inline void PoisonStack(void* v) {
#ifdef __SANITIZE_ADDRESS__
  ASAN_POISON_MEMORY_REGION(v, kFixedStack);
#else
  (void)v;
#endif
}

inline void UnpoisonStack(void* v) {
#ifdef __SANITIZE_ADDRESS__
  ASAN_UNPOISON_MEMORY_REGION(v, kFixedStack);
#else
  (void)v;
#endif
}

// Fills the (empty) cache from the M's FixAlloc. Returns false, with nothing
// changed, if not even one stack could be had.
bool Refill(M* m) {
  void* got[kStackBatch];
  size_t sys0 = m->stackalloc.sys();
  int n = 0;
  while (n < kStackBatch && (got[n] = m->stackalloc.Alloc()) != nullptr) ++n;
  if (n == 0) return false;
  // The first stack obtained goes on top, so it is the first handed out:
  // most recently freed first, or address order for a fresh chunk.
  for (int i = 0; i < n; ++i) {
    m->stackcache[n - 1 - i] = got[i];
    PoisonStack(got[i]);
  }
  m->stats.sys.Add(static_cast<int64_t>(m->stackalloc.sys() - sys0));
  m->stats.held.Add(n);
  m->stats.cached.Set(n);
  return true;
}

// Makes room in the (full) cache: its bottom half, the stacks least recently
// freed, goes back to the M's FixAlloc.
void Flush(M* m) {
  for (int i = 0; i < kStackBatch; ++i) {
    UnpoisonStack(m->stackcache[i]);  // FixAlloc links through the first word.
    m->stackalloc.Free(m->stackcache[i]);
  }
  memmove(&m->stackcache[0], &m->stackcache[kStackBatch],
          (kStackCacheSize - kStackBatch) * sizeof(void*));
  m->stats.held.Add(-kStackBatch);
  m->stats.cached.Set(kStackCacheSize - kStackBatch);
}

M* BoundM(M* m) {
  return m == internal::UnboundM() ? getm(&StackChunk) : m;
}

ABSL_ATTRIBUTE_NOINLINE void* StackallocSlow(M* m, size_t n) {
  m = BoundM(m);
  if (m->curg() != m->g0()) Throw("stackalloc not on scheduler stack");
  if (m->mallocing || m->gcing || n == kFixedStack) {
    if (n != kFixedStack) {
      RawPrintf("stackalloc: in malloc, size=%zu want %zu\n", kFixedStack, n);
      Throw("stackalloc");
    }
    if (m->stats.cached.value() == 0 && !Refill(m)) return nullptr;
    int64_t k = m->stats.cached.value() - 1;
    m->stats.cached.Set(k);
    UnpoisonStack(m->stackcache[k]);
    return m->stackcache[k];
  }
  if (n == 0) Throw("stackalloc: zero-sized stack");
  void* v = malloc(n);
  if (v != nullptr) m->stats.large_inuse.Add(static_cast<int64_t>(n));
  return v;
}

ABSL_ATTRIBUTE_NOINLINE void StackfreeSlow(M* m, void* v, size_t n) {
  m = BoundM(m);
  if (m->curg() != m->g0()) Throw("stackfree not on scheduler stack");
  if (v == nullptr) Throw("stackfree: nil stack");
  if (m->mallocing || m->gcing || n == kFixedStack) {
    if (n != kFixedStack) {
      RawPrintf("stackfree: in malloc, size=%zu want %zu\n", kFixedStack, n);
      Throw("stackfree");
    }
    if (reinterpret_cast<uintptr_t>(v) % kFixedStack != 0) {
      Throw("stackfree: not a FixedStack stack");
    }
    int64_t k = m->stats.cached.value();
    if (k == kStackCacheSize) {
      Flush(m);
      k = m->stats.cached.value();
    }
    PoisonStack(v);
    m->stackcache[k] = v;
    m->stats.cached.Set(k + 1);
    return;
  }
  free(v);
  m->stats.large_inuse.Add(-static_cast<int64_t>(n));
}

}  // namespace

// The fast paths: one thread-local load, one comparison that checks both the
// size and that we run on g0 (see M::stackalloc_fast_size), and an array
// push or pop whose length store is also the statistics update.
void* stackalloc(size_t n) {
  M* m = internal::tls_m;
  if (ABSL_PREDICT_TRUE(n == m->stackalloc_fast_size())) {
    int64_t k = m->stats.cached.value();
    if (ABSL_PREDICT_TRUE(k != 0)) {
      --k;
      m->stats.cached.Set(k);
      void* v = m->stackcache[k];
      UnpoisonStack(v);
      return v;
    }
  }
  return StackallocSlow(m, n);
}

void stackfree(void* v, size_t n) {
  M* m = internal::tls_m;
#ifndef NDEBUG
  // Let the slow path diagnose a nil or misaligned stack.
  if (reinterpret_cast<uintptr_t>(v) % kFixedStack != 0 || v == nullptr) {
    return StackfreeSlow(m, v, n);
  }
#endif
  if (ABSL_PREDICT_TRUE(n == m->stackalloc_fast_size())) {
    int64_t k = m->stats.cached.value();
    if (ABSL_PREDICT_TRUE(k != kStackCacheSize)) {
      PoisonStack(v);
      m->stackcache[k] = v;
      m->stats.cached.Set(k + 1);
      return;
    }
  }
  StackfreeSlow(m, v, n);
}

namespace internal {
void StackallocTestPeer::SetChunkSource(FixAlloc::ChunkSource source) {
  chunk_source.store(source != nullptr ? source : &SysAlloc,
                     std::memory_order_relaxed);
}
}  // namespace internal

}  // namespace stackalloc
