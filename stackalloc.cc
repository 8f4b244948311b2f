#include "stackalloc.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "alloc/stack_pool.h"
#include "alloc/sys_alloc.h"
#include "base/sanitizers.h"
#include "base/throw.h"
#include "sched/m.h"
#include "stackalloc_test_peer.h"

namespace stackalloc {
namespace {

constexpr int64_t kStacksPerChunk = FixAlloc::kChunk / kFixedStack;
static_assert(kStacksPerChunk >= StackPool::kMaxBatch &&
                  kStacksPerChunk >= kStackCacheMax / 2,
              "a chunk must hold a whole batch (StackPool::Scavenge)");

void* AlignedChunk(size_t n) { return SysAllocAligned(n, FixAlloc::kChunk); }

std::atomic<FixAlloc::ChunkSource> chunk_source{&AlignedChunk};
std::atomic<FixAlloc::ChunkSource> node_source{&SysAlloc};
std::atomic<int> cache_limit{kStackCacheDefaultLimit};
std::atomic<size_t> scavenge_threshold{0};
// Pool bytes left by the last scavenge: the policy waits for twice that.
std::atomic<size_t> pooled_after_scavenge{0};

void* NodeChunk(size_t n) {
  return node_source.load(std::memory_order_relaxed)(n);
}

StackPool pool(kFixedStack, FixAlloc::kChunk, &NodeChunk);

// Every M's FixAlloc carves from chunks obtained here (installed as the
// stack chunk source below): a chunk released by the scavenger if there is
// one (no new mapping), else a fresh one. Runs on the M's thread, inside
// Refill(), so that M's shard is the one to update.
void* PoolChunk(size_t n) {
  if (void* c = pool.TakeReleasedChunk()) {
    internal::tls_m->stats.released.Add(-static_cast<int64_t>(n));
    return c;
  }
  void* c = chunk_source.load(std::memory_order_relaxed)(n);
  if (reinterpret_cast<uintptr_t>(c) % FixAlloc::kChunk != 0) {
    Throw("stackalloc: chunk source returned a misaligned chunk");
  }
  return c;
}

// Under ASan, a stack is poisoned from stackfree until stackalloc hands it out
// again, so a use after stackfree is reported; unpoisoning on the way out also
// clears the redzones of frames that ran on it earlier.
inline void PoisonStack(void* v) { sanitizer::PoisonMemory(v, kFixedStack); }

inline void UnpoisonStack(void* v) {
  sanitizer::UnpoisonMemory(v, kFixedStack);
}

// Gives stacks[0, n) (free, poisoned) from m's cache to the global pool, in
// batches, or to m's own FixAlloc if the pool has no memory for batch
// records; either way nothing is lost and the counters stay exact.
void GiveBack(M* m, void* const* stacks, int n) {
  m->stats.held.Add(-n);
  while (n > 0) {
    int b = std::min(n, StackPool::kMaxBatch);
    int64_t meta = 0;
    bool pooled = pool.Put(stacks, b, &meta);
    m->stats.meta_sys.Add(meta);
    if (!pooled) {
      for (int i = 0; i < b; ++i) {
        UnpoisonStack(stacks[i]);  // FixAlloc links through the first word.
        m->stackalloc.Free(stacks[i]);
      }
      m->stats.carved.Add(-b);
    }
    stacks += b;
    n -= b;
  }
}

void MaybeScavenge() {
  size_t threshold = scavenge_threshold.load(std::memory_order_relaxed);
  if (threshold == 0) return;
  size_t pooled = static_cast<size_t>(pool.stacks()) * kFixedStack;
  if (pooled > threshold &&
      pooled >= 2 * pooled_after_scavenge.load(std::memory_order_relaxed)) {
    ScavengeStacks();
  }
}

// Makes room in m's (full) cache: all but the top half of its limit, the
// stacks least recently freed, go to the global pool. Also adopts a new
// cache limit.
void Flush(M* m) {
  m->stackcache_limit = cache_limit.load(std::memory_order_relaxed);
  int64_t k = m->stats.cached.value();
  int64_t keep = m->stackcache_limit / 2;
  if (k <= keep) return;
  int give = static_cast<int>(k - keep);
  GiveBack(m, m->stackcache, give);
  memmove(&m->stackcache[0], &m->stackcache[give], keep * sizeof(void*));
  m->stats.cached.Set(keep);
  MaybeScavenge();
}

// Fills m's (empty) cache: one batch from the global pool, else half a cache
// carved by m's FixAlloc. Returns false, with nothing changed, if not even one
// stack could be had.
bool Refill(M* m) {
  m->stackcache_limit = cache_limit.load(std::memory_order_relaxed);
  void* got[StackPool::kMaxBatch];
  int n = pool.Get(got);
  if (n == 0) {
    const int batch = static_cast<int>(m->stackcache_limit / 2);
    const size_t sys0 = m->stackalloc.sys();
    while (n < batch && (got[n] = m->stackalloc.Alloc()) != nullptr) {
      PoisonStack(got[n]);
      ++n;
    }
    m->stats.sys.Add(static_cast<int64_t>(m->stackalloc.sys() - sys0));
    m->stats.carved.Add(n);
    if (n == 0) return false;
  }
  m->stats.held.Add(n);
  if (n > m->stackcache_limit) {  // A batch from a time of larger caches.
    GiveBack(m, got + m->stackcache_limit, n - m->stackcache_limit);
    n = static_cast<int>(m->stackcache_limit);
  }
  // The first stack obtained goes on top, so it is the first handed out:
  // address order for a fresh chunk.
  for (int i = 0; i < n; ++i) m->stackcache[n - 1 - i] = got[i];
  m->stats.cached.Set(n);
  return true;
}

// Installed during static initialisation; until then (another TU's static
// initialiser calling stackalloc first) Ms carve fresh aligned chunks, which
// is still correct.
[[maybe_unused]] const bool pool_chunk_source_installed =
    (internal::SetStackChunkSource(&PoolChunk), true);

M* BoundM(M* m) { return m == internal::UnboundM() ? getm() : m; }

// Arguments in the order the fast path has them, so its tail call to here
// needs no register moves.
ABSL_ATTRIBUTE_NOINLINE void* StackallocSlow(size_t n, M* m) {
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

ABSL_ATTRIBUTE_NOINLINE void StackfreeSlow(void* v, size_t n, M* m) {
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
    if (m->stats.cached.value() >= m->stackcache_limit) Flush(m);
    int64_t k = m->stats.cached.value();
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
// size and that we run on g0 (see M::stackalloc_fast_size), and an array pop
// or push whose length store is also the statistics update. Invariant: an
// M's cached count never exceeds its stackcache_limit, which only the slow
// paths change (and they trim the cache when they do).
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
  return StackallocSlow(n, m);
}

void stackfree(void* v, size_t n) {
  M* m = internal::tls_m;
#ifndef NDEBUG
  // Let the slow path diagnose a nil or misaligned stack.
  if (v == nullptr || reinterpret_cast<uintptr_t>(v) % kFixedStack != 0) {
    return StackfreeSlow(v, n, m);
  }
#endif
  if (ABSL_PREDICT_TRUE(n == m->stackalloc_fast_size())) {
    int64_t k = m->stats.cached.value();
    if (ABSL_PREDICT_TRUE(k != m->stackcache_limit)) {
      PoisonStack(v);
      m->stackcache[k] = v;
      m->stats.cached.Set(k + 1);
      return;
    }
  }
  StackfreeSlow(v, n, m);
}

bool SetStackCacheLimit(int limit) {
  if (limit < 2 || limit > kStackCacheMax || limit % 2 != 0) return false;
  cache_limit.store(limit, std::memory_order_relaxed);
  return true;
}

size_t ScavengeStacks() {
  // Idle Ms (their threads exited) would hold their caches until a thread
  // enters again: empty them into the pool, so their chunks can go too.
  ForEachIdleM(
      [](M* m, void*) {
        int64_t k = m->stats.cached.value();
        if (k == 0) return;
        GiveBack(m, m->stackcache, static_cast<int>(k));
        m->stats.cached.Set(0);
      },
      nullptr);
  StackPool::ScavengeResult r = pool.Scavenge();
  if (!r.ran) return 0;  // Another thread is at it.
  pooled_after_scavenge.store(static_cast<size_t>(pool.stacks()) * kFixedStack,
                              std::memory_order_relaxed);
  if (r.chunks_released == 0) return 0;
  const int64_t bytes =
      r.chunks_released * static_cast<int64_t>(FixAlloc::kChunk);
  M* m = getm();
  m->stats.carved.Add(-r.chunks_released * kStacksPerChunk);
  m->stats.sys.Add(-bytes);
  m->stats.released.Add(bytes);
  return static_cast<size_t>(bytes);
}

void SetScavengeThreshold(size_t bytes) {
  scavenge_threshold.store(bytes, std::memory_order_relaxed);
}

namespace internal {
void StackallocTestPeer::SetChunkSource(FixAlloc::ChunkSource source) {
  chunk_source.store(source != nullptr ? source : &AlignedChunk,
                     std::memory_order_relaxed);
}
void StackallocTestPeer::SetNodeSource(FixAlloc::ChunkSource source) {
  node_source.store(source != nullptr ? source : &SysAlloc,
                    std::memory_order_relaxed);
}
int64_t StackallocTestPeer::PoolStacks() { return pool.stacks(); }
int64_t StackallocTestPeer::PoolReleasedChunks() {
  return pool.released_chunks();
}
}  // namespace internal

}  // namespace stackalloc
