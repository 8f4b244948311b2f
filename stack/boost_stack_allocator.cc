#include "boost_stack_allocator.h"

#include <new>

#include "base/throw.h"
#include "sched/m.h"

namespace stackalloc {

namespace internal {

void ThrowBadAlloc() { throw std::bad_alloc(); }

void DieEmptyStackContext() {
  Throw("BoostStackAllocator: deallocate of an empty stack_context");
}

}  // namespace internal

void BoostStackAllocator::PrepareThread() { getm(); }

}  // namespace stackalloc
