// Stack sizes and stack orders, shared by every layer (Go's stack.h, and the
// stack orders of Go 1.4's stack.go).
//
// Stacks come in orders: order k holds stacks of kStackMin << k bytes, from
// 4 KiB (order 0, the seed's FixedStack) to 1 MiB (order 8). A request for n
// bytes is served by the smallest order whose stacks hold n; a request above
// the largest order gets a mapping of its own.

#ifndef BASE_STACK_SIZES_H_
#define BASE_STACK_SIZES_H_

#include <cstddef>

namespace stackalloc {

// The smallest stack a G gets (Go's StackMin in 2011).
inline constexpr size_t kStackMin = 4096;
// The size of order 0, the one served by the fast path (Go's FixedStack).
inline constexpr size_t kFixedStack = kStackMin;

// Number of stack orders (Go's _NumStackOrders): 4 KiB << 0 .. 4 KiB << 8.
inline constexpr int kNumStackOrders = 9;
// The largest stack an order holds: 1 MiB.
inline constexpr size_t kMaxOrderStack = kStackMin << (kNumStackOrders - 1);

// Bytes of each stack of `order` (0 <= order < kNumStackOrders).
constexpr size_t OrderStackSize(int order) { return kStackMin << order; }

// The order that serves a request of n bytes: the smallest whose stacks hold
// n. -1 for n == 0 and for n > kMaxOrderStack (no order serves it).
constexpr int StackOrder(size_t n) {
  if (n == 0 || n > kMaxOrderStack) return -1;
  int order = 0;
  while (OrderStackSize(order) < n) ++order;
  return order;
}

}  // namespace stackalloc

#endif  // BASE_STACK_SIZES_H_
