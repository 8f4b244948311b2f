// The stack allocators our benchmarks put side by side, each as a contender:
// a class with `void* Alloc()`, which returns a stack, and `void Free(void*)`.
// Ours, Old and Bare give kFixedStack (4 KiB) stacks; OursOf<N>, OldOf<N> and
// BareOf<N> stacks of N bytes (a stack order's size):
//
//   Ours       stackalloc(n) / stackfree(v, n)
//   OursClass  stackalloc(c) / stackfree(v, c), with c = StackClass(n)
//              resolved once per contender from a size the compiler cannot
//              see, as BoostStackAllocator and the fiber runtime do
//   Old        the seed's old design: one FixAlloc behind a global lock for
//              4 KiB, malloc / free for every other size (as the seed did)
//   Bare       a bare thread-local free list, called out of line (the limit)
//
// Contenders have no state and their members are inline: a call compiles to
// the allocator's own call and nothing else, so a benchmark times, and
// callgrind counts (//testing/perf:pair_instructions), the allocator alone.
//
// Thread-safety is the allocator's: Ours and Old run on any thread's g0 and
// free stacks from any thread; a Bare stack must be freed on the thread that
// allocated it.

#ifndef TESTING_PERF_CONTENDERS_H_
#define TESTING_PERF_CONTENDERS_H_

#include "base/stack_sizes.h"
#include "stackalloc.h"
#include "testing/baselines/bare_free_list.h"
#include "testing/baselines/seed_designs.h"

namespace stackalloc {
namespace baseline {

template <size_t N>
struct OursOf {
  void* Alloc() { return stackalloc(N); }
  void Free(void* v) { stackfree(v, N); }
};
using Ours = OursOf<kFixedStack>;

// n, as a value the compiler cannot fold: a size known only at run time.
inline size_t RunTimeSize(size_t n) {
  asm volatile("" : "+r"(n));
  return n;
}

template <size_t N>
struct OursClassOf {
  OursClassOf() : c(RunTimeSize(N)) {}
  void* Alloc() { return stackalloc(c); }
  void Free(void* v) { stackfree(v, c); }
  StackClass c;
};
using OursClass = OursClassOf<kFixedStack>;

template <size_t N>
struct OldOf {
  void* Alloc() { return OldStackalloc(N); }
  void Free(void* v) { OldStackfree(v, N); }
};
using Old = OldOf<kFixedStack>;

struct Bare {
  void* Alloc() { return BareAlloc(); }
  void Free(void* v) { BareFree(v); }
};

template <size_t N>
struct BareOf {
  static constexpr int kOrder = StackOrder(N);
  static_assert(kOrder >= 0 && OrderStackSize(kOrder) == N, "an order's size");
  void* Alloc() { return BareAllocOrder(kOrder); }
  void Free(void* v) { BareFreeOrder(v, kOrder); }
};

}  // namespace baseline
}  // namespace stackalloc

#endif  // TESTING_PERF_CONTENDERS_H_
