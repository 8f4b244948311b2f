#include "stack/wipe.h"

#include <cstring>

#include "alloc/sys_alloc.h"
#include "base/check.h"
#include "base/stack_sizes.h"

namespace stackalloc {
namespace internal {

void WipeStack(void* v, size_t size) {
  auto* p = static_cast<char*>(v);
  if (size == kPageSize) {
    memset(p, 0, kPageSize);
    return;
  }
  constexpr size_t kMaxPages = kMaxOrderStack / kPageSize;
  static_assert(kMaxPages <= kMaxResidencyPages, "one call reads a stack");
  const size_t pages = size / kPageSize;
  STACKALLOC_DCHECK_LE(pages, kMaxPages);
  unsigned char resident[kMaxPages];
  if (!SysResidency(v, size, resident)) {
    memset(p, 0, size);  // Every page, then: right, if not cheap.
    return;
  }
  for (size_t i = 0; i < pages;) {
    if (resident[i] == 0) {
      ++i;
      continue;
    }
    size_t end = i + 1;
    while (end < pages && resident[end] != 0) ++end;
    memset(p + i * kPageSize, 0, (end - i) * kPageSize);
    i = end;
  }
}

}  // namespace internal
}  // namespace stackalloc
