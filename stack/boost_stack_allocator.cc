#include "boost_stack_allocator.h"

#include <new>

#include "alloc/sys_alloc.h"
#include "base/throw.h"
#include "sched/m.h"

namespace stackalloc {

static_assert(BoostStackAllocator::UsableSize(kMaxOrderStack + 1) ==
                  kMaxOrderStack + kPageSize,
              "large stacks are rounded to stackalloc's pages");
static_assert(BoostStackAllocator::UsableSize(5000) == 8192 &&
                  BoostStackAllocator::UsableSize(kFixedStack) == kFixedStack,
              "sizes between orders get the next order up");

namespace internal {

void ThrowBadAlloc() { throw std::bad_alloc(); }

void DieEmptyStackContext() {
  Throw("BoostStackAllocator: deallocate of an empty stack_context");
}

}  // namespace internal

void BoostStackAllocator::PrepareThread() { getm(); }

}  // namespace stackalloc
