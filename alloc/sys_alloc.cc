#include "alloc/sys_alloc.h"

#include <sys/mman.h>

#include <cstdint>

namespace stackalloc {
namespace {

size_t RoundUpToPage(size_t n) { return (n + kPageSize - 1) & ~(kPageSize - 1); }

}  // namespace

void* SysAlloc(size_t n) {
  if (n == 0 || n > SIZE_MAX - kPageSize) return nullptr;
  void* v = mmap(nullptr, RoundUpToPage(n), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return v == MAP_FAILED ? nullptr : v;
}

void SysFree(void* v, size_t n) {
  if (v != nullptr) munmap(v, RoundUpToPage(n));
}

void SysUnused(void* v, size_t n) { madvise(v, RoundUpToPage(n), MADV_DONTNEED); }

}  // namespace stackalloc
