#include "testing/baselines/bare_free_list.h"

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "alloc/sys_alloc.h"
#include "base/stack_sizes.h"

namespace stackalloc {
namespace baseline {
namespace {

struct Link {
  Link* next;
};

__thread Link* free_list ABSL_ATTRIBUTE_INITIAL_EXEC = nullptr;
__thread Link* order_lists[kNumStackOrders] ABSL_ATTRIBUTE_INITIAL_EXEC = {};

}  // namespace

ABSL_ATTRIBUTE_NOINLINE void* BareAlloc() {
  Link* v = free_list;
  if (ABSL_PREDICT_TRUE(v != nullptr)) {
    free_list = v->next;
    return v;
  }
  return SysAlloc(kFixedStack);
}

ABSL_ATTRIBUTE_NOINLINE void BareFree(void* p) {
  Link* v = static_cast<Link*>(p);
  v->next = free_list;
  free_list = v;
}

ABSL_ATTRIBUTE_NOINLINE void* BareAllocOrder(int order) {
  Link* v = order_lists[order];
  if (ABSL_PREDICT_TRUE(v != nullptr)) {
    order_lists[order] = v->next;
    return v;
  }
  return SysAlloc(OrderStackSize(order));
}

ABSL_ATTRIBUTE_NOINLINE void BareFreeOrder(void* p, int order) {
  Link* v = static_cast<Link*>(p);
  v->next = order_lists[order];
  order_lists[order] = v;
}

}  // namespace baseline
}  // namespace stackalloc
