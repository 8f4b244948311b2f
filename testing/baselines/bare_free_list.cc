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

}  // namespace baseline
}  // namespace stackalloc
