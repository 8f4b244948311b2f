// The entry points: the fast paths, and the slow paths that check the
// contract and dispatch to the caches (stack_cache.cc), the pools and the
// large stacks (stack_heap.cc).

#include "stackalloc.h"

#include <cstdint>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "base/check.h"
#include "base/sanitizers.h"
#include "base/throw.h"
#include "sched/m.h"
#include "stack/heap.h"
#include "stack/stack_cache.h"

namespace stackalloc {
namespace {

using internal::kCheckEveryCall;

// Byte offset in StackCaches of the cache serving a request of n bytes,
// indexed by the highest set bit of (n - 1) | (kStackMin - 1): bits 11 to 19
// are orders 0 to 8; anything else (n == 0, n > kMaxOrderStack) leads to the
// closed cache at the end, so the fast paths need no range check.
struct OrderOffsets {
  uint64_t offset[64];
  constexpr OrderOffsets() : offset() {
    for (int b = 0; b < 64; ++b) {
      const int order = b - 11;
      offset[b] = static_cast<uint64_t>(
          sizeof(StackCache) *
          (order >= 0 && order < kNumStackOrders ? order : kNumStackOrders));
    }
  }
};
constexpr OrderOffsets kOrderOffsets;
static_assert(kMaxOrderStack == size_t{1} << 20, "orders are bits 11..19");

// The index of the highest set bit of x != 0, as a full-width register (the
// builtin's int result would cost a zero extension on the fast path).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline uint64_t HighBit(uint64_t x) {
#if defined(__x86_64__)
  uint64_t b;
  asm("bsr %1, %0" : "=r"(b) : "rm"(x) : "cc");
  return b;
#else
  return 63 ^ static_cast<uint64_t>(__builtin_clzll(x));
#endif
}

// The cache of `cs->orders` that serves a request for n != kFixedStack.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline StackCache* OrderCache(StackCaches* cs,
                                                           size_t n) {
  const uint64_t b = HighBit((n - 1) | (kStackMin - 1));
  return reinterpret_cast<StackCache*>(reinterpret_cast<char*>(cs->orders) +
                                       kOrderOffsets.offset[b]);
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline StackCache* CacheFor(StackCaches* cs,
                                                         size_t n) {
  if (ABSL_PREDICT_TRUE(n == kFixedStack)) return &cs->c[0];
  return OrderCache(cs, n);
}

[[noreturn]] ABSL_ATTRIBUTE_COLD void DieInMalloc(const char* fn, size_t n) {
  RawPrintf("%s: in malloc, size=%zu want %zu\n", fn, kFixedStack, n);
  Throw(fn);
}

// The contract, for both slow paths; returns the calling thread's M, or
// nullptr if it had none and the OS refused memory for one.
M* CheckContract(const char* not_on_g0, const char* fn, size_t n) {
  M* m = internal::tls_m;
  if (m == internal::UnboundM()) m = internal::TryBindM();
  if (m == nullptr) return nullptr;
  if (m->curg() != m->g0()) Throw(not_on_g0);
  if ((m->mallocing() != 0 || m->gcing() != 0) && n != kFixedStack) {
    DieInMalloc(fn, n);
  }
  return m;
}

ABSL_ATTRIBUTE_NOINLINE void* StackallocSlow(size_t n) {
  M* m = CheckContract("stackalloc not on scheduler stack", "stackalloc", n);
  if (m == nullptr) return nullptr;  // No M to be had: refused.
  SlowPathGate gate(m);
  if (n == 0) Throw("stackalloc: zero-sized stack");
  const int order = StackOrder(n);
  if (order < 0) return internal::LargeStackalloc(m, n);
  StackCache& c = m->stackcache.c[order];
  if (c.stats.cached.value() == 0 && !internal::StackCacheRefill(m, order)) {
    return nullptr;
  }
  const int64_t k = c.stats.cached.value();
  void* v = c.slot[k];
  c.stats.cached.Set(k - 1);
  if (kCheckEveryCall) internal::CheckHandOut(v);
  sanitizer::UnpoisonMemory(v, c.stack_size);
  return v;
}

ABSL_ATTRIBUTE_NOINLINE void StackfreeSlow(void* v, size_t n) {
  M* m = CheckContract("stackfree not on scheduler stack", "stackfree", n);
  if (m == nullptr) Throw("stackfree: out of memory for a new M");
  SlowPathGate gate(m);
  if (v == nullptr) Throw("stackfree: nil stack");
  if (n == 0) Throw("stackfree: zero-sized stack");
  const int order = StackOrder(n);
  if (order < 0) return internal::LargeStackfree(m, v, n);
  StackCache& c = m->stackcache.c[order];
  if (c.slot[c.stats.cached.value()] == v) internal::DieFreedAgain(v);
  if (kCheckEveryCall) internal::CheckTakeBack(v, n);
  if (c.stats.cached.value() >= c.limit) internal::StackCacheRelease(m, order);
  const int64_t k = c.stats.cached.value();
  sanitizer::PoisonMemory(v, c.stack_size);
  c.slot[k + 1] = v;
  c.stats.cached.Set(k + 1);
}

}  // namespace

// The fast paths: one thread-local load (the caches of the thread's M while
// it runs on g0, closed caches otherwise), the cache for the size (one
// comparison for kFixedStack), and an array pop or push whose length store
// is also the statistics update. Invariant: a cache never holds more than
// its limit, which only the slow paths change (and they trim the cache when
// they do). Debug and checked builds take the slow paths every time.
void* stackalloc(size_t n) {
  if (!kCheckEveryCall) {
    StackCache* c = CacheFor(internal::tls_stackcache, n);
    const int64_t k = c->stats.cached.value();
    if (ABSL_PREDICT_TRUE(k != 0)) {
      c->stats.cached.Set(k - 1);
      void* v = c->slot[k];
      sanitizer::UnpoisonMemory(v, c->stack_size);
      return v;
    }
  }
  return StackallocSlow(n);
}

void stackfree(void* v, size_t n) {
  if (!kCheckEveryCall) {
    StackCache* c = CacheFor(internal::tls_stackcache, n);
    const int64_t k = c->stats.cached.value();
    if (ABSL_PREDICT_TRUE(k != c->limit)) {
      // The one ownership check the fast path affords: the stack freed last
      // on this M is not freed again (slot[0] is never a stack, but nullptr).
      if (ABSL_PREDICT_FALSE(c->slot[k] == v)) internal::DieFreedAgain(v);
      sanitizer::PoisonMemory(v, c->stack_size);
      c->slot[k + 1] = v;
      c->stats.cached.Set(k + 1);
      return;
    }
  }
  StackfreeSlow(v, n);
}

}  // namespace stackalloc
