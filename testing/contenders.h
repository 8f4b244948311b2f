// The stack allocators our benchmarks put side by side, each as a contender:
// a class with `void* Alloc()`, which returns a kFixedStack (4 KiB) stack, and
// `void Free(void*)`.
//
//   Ours  stackalloc / stackfree
//   Old   the seed's old design: one FixAlloc behind a global lock
//   Bare  a bare thread-local free list, called out of line (the limit)
//
// Contenders have no state and their members are inline: a call compiles to
// the allocator's own call and nothing else, so a benchmark times, and
// callgrind counts (//testing:pair_instructions), the allocator alone.
//
// Thread-safety is the allocator's: Ours and Old run on any thread's g0 and
// free stacks from any thread; a Bare stack must be freed on the thread that
// allocated it.

#ifndef TESTING_CONTENDERS_H_
#define TESTING_CONTENDERS_H_

#include "base/stack_sizes.h"
#include "stackalloc.h"
#include "testing/baselines/bare_free_list.h"
#include "testing/baselines/old_stackalloc.h"

namespace stackalloc {
namespace baseline {

struct Ours {
  void* Alloc() { return stackalloc(kFixedStack); }
  void Free(void* v) { stackfree(v, kFixedStack); }
};

struct Old {
  void* Alloc() { return OldStackalloc(kFixedStack); }
  void Free(void* v) { OldStackfree(v, kFixedStack); }
};

struct Bare {
  void* Alloc() { return BareAlloc(); }
  void Free(void* v) { BareFree(v); }
};

}  // namespace baseline
}  // namespace stackalloc

#endif  // TESTING_CONTENDERS_H_
