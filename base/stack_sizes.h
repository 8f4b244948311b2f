// Stack size constants shared by every layer (Go's stack.h).

#ifndef BASE_STACK_SIZES_H_
#define BASE_STACK_SIZES_H_

#include <cstddef>

namespace stackalloc {

// The smallest stack a G gets (Go's StackMin in 2011).
inline constexpr size_t kStackMin = 4096;
// The one size served by the per-M stack caches; anything else goes to the
// general-purpose allocator (Go's FixedStack).
inline constexpr size_t kFixedStack = kStackMin;

}  // namespace stackalloc

#endif  // BASE_STACK_SIZES_H_
