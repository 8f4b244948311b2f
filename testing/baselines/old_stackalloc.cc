#include <cstdlib>
#include <mutex>

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

// The seed's `static struct { Lock; FixAlloc; } stacks;` and the two mstats
// fields it maintained. std::mutex, like Go's Lock, sleeps in the kernel
// when contended.
struct {
  std::mutex lock;
  FixAlloc alloc;
  uint64_t stacks_inuse = 0;
  uint64_t stacks_sys = 0;
} stacks;

}  // namespace

void* OldStackalloc(size_t n) {
  M* m = getm();
  if (m->curg() != m->g0()) Throw("stackalloc not on scheduler stack");
  if (m->mallocing() || m->gcing() || n == kFixedStack) {
    std::lock_guard<std::mutex> l(stacks.lock);
    if (stacks.alloc.size() == 0) stacks.alloc.Init(n, &OsChunk);
    if (stacks.alloc.size() != n) {
      RawPrintf("stackalloc: in malloc, size=%zu want %zu\n",
                stacks.alloc.size(), n);
      Throw("stackalloc");
    }
    void* v = stacks.alloc.Alloc();
    stacks.stacks_inuse = stacks.alloc.inuse();
    stacks.stacks_sys = stacks.alloc.sys();
    return v;
  }
  return malloc(n);
}

void OldStackfree(void* v, size_t n) {
  M* m = getm();
  if (m->mallocing() || m->gcing() || n == kFixedStack) {
    std::lock_guard<std::mutex> l(stacks.lock);
    stacks.alloc.Free(v);
    stacks.stacks_inuse = stacks.alloc.inuse();
    stacks.stacks_sys = stacks.alloc.sys();
    return;
  }
  free(v);
}

BaselineMemStats ReadOldMemStats() {
  std::lock_guard<std::mutex> l(stacks.lock);
  return {stacks.stacks_inuse, stacks.stacks_sys};
}

}  // namespace baseline
}  // namespace stackalloc
