// Every function stackalloc.h declares: the fast paths of stackalloc and
// stackfree, their slow paths, which check the contract and decide which
// pool serves (an M's cache, its refill from the pool or the carver, a
// mapping of its own above the largest order) and when to scavenge, and the
// controls. The jobs themselves are in this folder's other files
// (docs/design.md, "One stack's journey").

#include "stackalloc.h"

#include <cstdint>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "alloc/guard.h"
#include "alloc/sys_alloc.h"
#include "base/sanitizers.h"
#include "base/throw.h"
#include "sched/m.h"
#include "stack/heap.h"
#include "stack/large_stack.h"
#include "stack/margin.h"
#include "stack/misuse.h"
#include "stack/overflow.h"
#include "stack/parameters.h"
#include "stack/scavenge.h"
#include "stack/stack_bounds.h"
#include "stack/stack_cache.h"
#include "stack/usage.h"
#include "stack/wipe.h"

namespace stackalloc {
namespace {

using internal::kCheckEveryCall;

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

// The cache that serves a request of n bytes: one comparison for
// kFixedStack, else its class's (StackClassOf, computed as on the fast
// path). Every size no order serves leads to a closed cache.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline StackCache* CacheFor(StackCaches* cs,
                                                         size_t n) {
  if (ABSL_PREDICT_TRUE(n == kFixedStack)) return &cs->c[0];
  return cs->by_class[HighBit((n - 1) | (kStackMin - 1))];
}

ABSL_ATTRIBUTE_NOINLINE void* StackallocSlow(size_t n) {
  M* m = internal::CheckContract("stackalloc not on scheduler stack",
                                 "stackalloc", n);
  if (m == nullptr) return nullptr;  // No M to be had: refused.
  SlowPathGate gate(m);
  // While stacks are wiped the caches are bypassed, so every call comes
  // here; the M takes the setting now if it has not yet.
  m->AdoptCacheBypass();
  if (n == 0) Throw("stackalloc: zero-sized stack");
  const int order = StackOrder(n);
  // Above 1 MiB a stack is a fresh mapping: zero already.
  if (order < 0) return internal::LargeStackalloc(m, n);
  StackCache& c = m->mcache.stackcache.c[order];
  if (c.stats.cached.value() == 0 && !internal::StackCacheRefill(m, order)) {
    return nullptr;
  }
  const int64_t k = c.stats.cached.value();
  void* v = c.slot[k];
  c.stats.cached.Set(k - 1);
  if (kCheckEveryCall) internal::CheckHandOut(v);
  sanitizer::UnpoisonMemory(v, c.stack_size);
  if (internal::WipeEnabled()) internal::WipeStack(v, c.stack_size);
  return v;
}

ABSL_ATTRIBUTE_NOINLINE void StackfreeSlow(void* v, size_t n) {
  M* m = internal::CheckContract("stackfree not on scheduler stack",
                                 "stackfree", n);
  if (m == nullptr) Throw("stackfree: out of memory for a new M");
  SlowPathGate gate(m);
  m->AdoptCacheBypass();
  if (v == nullptr) Throw("stackfree: nil stack");
  if (n == 0) Throw("stackfree: zero-sized stack");
  const int order = StackOrder(n);
  if (order < 0) return internal::LargeStackfree(m, v, n);
  StackCache& c = m->mcache.stackcache.c[order];
  if (c.slot[c.stats.cached.value()] == v) internal::DieFreedAgain(v);
  if (kCheckEveryCall) internal::CheckTakeBack(v, n);
  const bool release = c.stats.cached.value() >= c.limit;
  if (release) internal::StackCacheRelease(m, order);
  const int64_t k = c.stats.cached.value();
  sanitizer::PoisonMemory(v, c.stack_size);
  c.slot[k + 1] = v;
  c.stats.cached.Set(k + 1);
  // The pools grew: maybe time to give memory back.
  if (release) internal::MaybeScavenge(m);
}

// The fast paths: one thread-local load (the caches of the thread's M while
// it runs on g0, closed caches otherwise), the cache (given, or found from
// the size), and an array pop or push whose length store is also the
// statistics update. Invariant: a cache never holds more than its limit,
// which only the slow paths change (and they trim the cache when they do).
// Debug and checked builds take the slow paths every time.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool TryPop(StackCache* c, void** v) {
  const int64_t k = c->stats.cached.value();
  if (ABSL_PREDICT_FALSE(k == 0)) return false;
  c->stats.cached.Set(k - 1);
  *v = c->slot[k];
  sanitizer::UnpoisonMemory(*v, c->stack_size);
  return true;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool TryPush(StackCache* c, void* v) {
  const int64_t k = c->stats.cached.value();
  if (ABSL_PREDICT_FALSE(k == c->limit)) return false;
  // The one ownership check the fast path affords: the stack freed last on
  // this M is not freed again (slot[0] is never a stack, but nullptr).
  if (ABSL_PREDICT_FALSE(c->slot[k] == v)) internal::DieFreedAgain(v);
  sanitizer::PoisonMemory(v, c->stack_size);
  c->slot[k + 1] = v;
  c->stats.cached.Set(k + 1);
  return true;
}

// Runs f(m) inside a SlowPathGate of the calling thread's M m, for a
// control that touches process-wide state: fork() waits for it. A thread
// without an M borrows one for the call and leaves without. False, without
// calling f, if no M could be had (out of memory).
template <typename F>
bool InAGate(F f) {
  M* m = internal::tls_m;
  const bool borrowed = m == internal::UnboundM();
  if (borrowed) m = internal::TryBindM();
  if (m == nullptr) return false;
  {
    SlowPathGate gate(m);
    f(m);
  }
  if (borrowed) dropm();  // The thread leaves as it came.
  return true;
}

}  // namespace

void* stackalloc(size_t n) {
  void* v;
  if (!kCheckEveryCall && TryPop(CacheFor(internal::tls_stackcache, n), &v)) {
    return v;
  }
  return StackallocSlow(n);
}

void stackfree(void* v, size_t n) {
  if (!kCheckEveryCall && TryPush(CacheFor(internal::tls_stackcache, n), v)) {
    return;
  }
  StackfreeSlow(v, n);
}

void* stackalloc(StackClass c) {
  void* v;
  if (!kCheckEveryCall &&
      TryPop(internal::tls_stackcache->by_class[c.index_], &v)) {
    return v;
  }
  return StackallocSlow(c.size());
}

void stackfree(void* v, StackClass c) {
  if (!kCheckEveryCall &&
      TryPush(internal::tls_stackcache->by_class[c.index_], v)) {
    return;
  }
  StackfreeSlow(v, c.size());
}

bool SetStackCacheLimit(int limit, size_t stack_size) {
  const int order = StackOrder(stack_size);
  if (order < 0 || limit < 2 || limit > kStackCacheMax || limit % 2 != 0) {
    return false;
  }
  internal::SetCacheLimit(order, limit);
  return true;
}

size_t ScavengeStacks() {
  size_t released = 0;  // Out of memory for an M: nothing released.
  InAGate([&released](M* m) { released = internal::Scavenge(m); });
  return released;
}

void SetScavengeThreshold(size_t bytes) {
  internal::SetScavengeThreshold(bytes);
}

bool SetStackGuards(bool on) { return internal::SetGuardsEnabled(on); }

bool SetStackWipe(bool on) {
  const bool was = internal::SetWipeEnabled(on);
  // The caches follow the last setting, whoever calls concurrently: a call
  // that changes it after this check bypasses them (or not) after us.
  for (;;) {
    const bool wipe = internal::WipeEnabled();
    BypassCaches(wipe);
    if (internal::WipeEnabled() == wipe) break;
  }
  return was;
}

bool StackWipe() { return internal::WipeEnabled(); }

bool SetStackHugePages(bool on) {
  const bool was = HugePages();
  SetHugePages(on);
  return was;
}

void InstallStackOverflowHandler() {
  // Inside a gate, so that a fork never leaves the child an installer's
  // claim taken by a thread it does not have (its next install would wait
  // for ever). Without an M to be had, installed all the same.
  auto install = [](M*) {
    internal::ReinstallOverflowHandler(&internal::TheChunkMap());
  };
  if (!InAGate(install)) install(nullptr);
}

void SetGuardMappingBudget(size_t mappings) {
  internal::SetGuardMappingBudget(mappings);
}

size_t StackMargin() {
  // This call's own frame: a few words below the caller's stack pointer.
  const auto sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  size_t margin;
  if (ABSL_PREDICT_TRUE(internal::FastStackMargin(sp, &margin))) return margin;
  uintptr_t lo, hi;
  return internal::StackBoundsHolding(internal::TheChunkMap(), sp, &lo, &hi,
                                      /*read_thread_stack=*/true)
             ? sp - lo
             : 0;
}

bool FindStack(const void* p, void** lo, size_t* size) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  const ChunkRecord* rec = internal::TheChunkMap().Lookup(a);
  uintptr_t stack;
  // A large stack freed meanwhile on another thread takes its record with
  // it, and the record may be rewritten for another chunk as we read.
  if (rec == nullptr || !rec->ReadStackHolding(a, &stack, size)) return false;
  *lo = reinterpret_cast<void*>(stack);
  return true;
}

StackUsage ReadStackUsage() {
  StackUsage u;
  internal::TakeCensus(&u);
  return u;
}

size_t FormatStackUsage(char* buf, size_t size) {
  StackUsage u;  // About 19 KiB, on the caller's stack: nothing allocated.
  internal::TakeCensus(&u);
  return internal::FormatUsage(u, buf, size);
}

size_t FormatStackUsage(const StackUsage& usage, char* buf, size_t size) {
  return internal::FormatUsage(usage, buf, size);
}

}  // namespace stackalloc
