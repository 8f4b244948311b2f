// Stack sizes and stack orders, shared by every layer (Go's stack.h, and the
// stack orders of Go 1.4's stack.go): what a request of n bytes gets, said
// once.
//
// Stacks come in orders: order k holds stacks of kStackMin << k bytes, from
// 4 KiB (order 0, the seed's FixedStack) to 1 MiB (order 8). A request for n
// bytes is served by the smallest order whose stacks hold n; a request above
// the largest order gets a mapping of its own, n rounded up to whole pages,
// up to kMaxStackRequest.

#ifndef BASE_STACK_SIZES_H_
#define BASE_STACK_SIZES_H_

#include <cstddef>
#include <utility>

namespace stackalloc {

// The page size stacks and guard pages are laid out in (4 KiB on every
// platform we build for).
inline constexpr size_t kPageSize = 4096;

// The smallest stack a G gets (Go's StackMin in 2011).
inline constexpr size_t kStackMin = 4096;
// The size of order 0, the one served by the fast path (Go's FixedStack).
inline constexpr size_t kFixedStack = kStackMin;

// Number of stack orders (Go's _NumStackOrders): 4 KiB << 0 .. 4 KiB << 8.
inline constexpr int kNumStackOrders = 9;
// The largest stack an order holds: 1 MiB.
inline constexpr size_t kMaxOrderStack = kStackMin << (kNumStackOrders - 1);

// The largest request served (2^40 bytes): far beyond any real stack, and
// small enough that no size arithmetic on it can overflow. Larger requests
// are refused (nullptr), never rounded.
inline constexpr size_t kMaxStackRequest = size_t{1} << 40;

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

// n rounded up to whole pages. REQUIRES: n <= kMaxStackRequest.
constexpr size_t PageRoundUp(size_t n) {
  return (n + kPageSize - 1) & ~(kPageSize - 1);
}

// The usable bytes of the stack a request of n bytes gets: its order's size
// up to kMaxOrderStack, n rounded up to whole pages above. 0 for n == 0 and
// for n > kMaxStackRequest (no stack).
constexpr size_t StackBytes(size_t n) {
  if (n == 0 || n > kMaxStackRequest) return 0;
  if (n <= kMaxOrderStack) return OrderStackSize(StackOrder(n));
  return PageRoundUp(n);
}

// Stack classes: the index of the per-M cache that serves a request, for the
// fast paths (stackalloc.h's StackClass). A request of n bytes has class
// StackClassOf(n), the highest set bit of (n - 1) | (kStackMin - 1): classes
// kFirstStackClass + k serve order k; every other class (n == 0, n above
// kMaxOrderStack) is served by no cache, only by the slow path.
inline constexpr int kNumStackClasses = 64;
inline constexpr int kFirstStackClass = 11;  // log2(kStackMin) - 1
static_assert(size_t{1} << (kFirstStackClass + 1) == kStackMin,
              "class k + 11 is order k");

constexpr int StackClassOf(size_t n) {
  return n == 0 ? kNumStackClasses - 1
                : kNumStackClasses - 1 -
                      __builtin_clzll((n - 1) | (kStackMin - 1));
}

// The class of order k's requests.
constexpr int StackClassOfOrder(int order) { return kFirstStackClass + order; }

// One T per stack order, each constructed from its order and `args`:
// PerOrder<StackPool>::Make(args...). Constant-initialisable, for tables
// whose entries say their order (pools, limits), so that each table is
// written once, not once per order.
template <typename T>
struct PerOrder {
  T at[kNumStackOrders];

  template <typename... Args>
  static constexpr PerOrder Make(Args... args) {
    return Make(std::make_index_sequence<kNumStackOrders>(), args...);
  }

 private:
  template <size_t... K, typename... Args>
  static constexpr PerOrder Make(std::index_sequence<K...>, Args... args) {
    return PerOrder{{T(static_cast<int>(K), args...)...}};
  }
};

}  // namespace stackalloc

#endif  // BASE_STACK_SIZES_H_
