#include <atomic>
#include <cstdlib>

#include "alloc/fix_alloc.h"
#include "alloc/sys_alloc.h"
#include "base/stack_sizes.h"
#include "base/throw.h"
#include "sched/m.h"
#include "testing/baselines/seed_designs.h"

namespace stackalloc {
namespace baseline {
namespace {

void* OsChunk(void*, size_t n) { return SysAlloc(n); }

// One thread's share of the seed design: its m->stackalloc and its part of
// mstats. Never freed, like an M.
struct SeedM {
  FixAlloc stackalloc{kFixedStack, &OsChunk};
  std::atomic<int64_t> inuse{0};
  std::atomic<int64_t> sys{0};
  SeedM* next = nullptr;
};

std::atomic<SeedM*> all_seed_ms{nullptr};
thread_local SeedM* seed_m = nullptr;

SeedM* Self() {
  if (seed_m == nullptr) {
    seed_m = new SeedM;
    seed_m->next = all_seed_ms.load();
    while (!all_seed_ms.compare_exchange_weak(seed_m->next, seed_m)) {
    }
  }
  return seed_m;
}

}  // namespace

void* SeedStackalloc(size_t n) {
  M* m = getm();
  if (m->curg() != m->g0()) Throw("stackalloc not on scheduler stack");
  if (m->mallocing() || m->gcing() || n == kFixedStack) {
    if (n != kFixedStack) {
      RawPrintf("stackalloc: in malloc, size=%zu want %zu\n", kFixedStack, n);
      Throw("stackalloc");
    }
    SeedM* s = Self();
    size_t sys0 = s->stackalloc.sys();
    void* v = s->stackalloc.Alloc();
    if (v == nullptr) return nullptr;
    s->inuse.store(s->inuse.load() + kFixedStack, std::memory_order_relaxed);
    s->sys.store(s->sys.load() + (s->stackalloc.sys() - sys0),
                 std::memory_order_relaxed);
    return v;
  }
  return malloc(n);
}

void SeedStackfree(void* v, size_t n) {
  M* m = getm();
  if (m->mallocing() || m->gcing() || n == kFixedStack) {
    SeedM* s = Self();
    s->stackalloc.Free(v);
    s->inuse.store(s->inuse.load() - kFixedStack, std::memory_order_relaxed);
    return;
  }
  free(v);
}

BaselineMemStats ReadSeedMemStats() {
  int64_t inuse = 0, sys = 0;
  for (SeedM* s = all_seed_ms.load(); s != nullptr; s = s->next) {
    inuse += s->inuse.load(std::memory_order_relaxed);
    sys += s->sys.load(std::memory_order_relaxed);
  }
  return {static_cast<uint64_t>(inuse), static_cast<uint64_t>(sys)};
}

}  // namespace baseline
}  // namespace stackalloc
