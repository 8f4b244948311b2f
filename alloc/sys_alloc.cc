#include "alloc/sys_alloc.h"

#include <sys/mman.h>

#include <cstdint>

namespace stackalloc {
namespace {

size_t RoundUpToPage(size_t n) {
  return (n + kPageSize - 1) & ~(kPageSize - 1);
}

}  // namespace

void* SysAlloc(size_t n) {
  if (n == 0 || n > SIZE_MAX - kPageSize) return nullptr;
  void* v = mmap(nullptr, RoundUpToPage(n), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return v == MAP_FAILED ? nullptr : v;
}

void* SysAllocAligned(size_t n, size_t align) {
  if (align <= kPageSize) return SysAlloc(n);
  if ((align & (align - 1)) != 0 || n == 0 || n > SIZE_MAX / 2 ||
      align > SIZE_MAX / 2) {
    return nullptr;
  }
  n = RoundUpToPage(n);
  // Map enough to contain an aligned block, then give back both ends.
  char* raw = static_cast<char*>(SysAlloc(n + align));
  if (raw == nullptr) return nullptr;
  uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  uintptr_t aligned = (start + align - 1) & ~(align - 1);
  size_t head = aligned - start;
  size_t tail = align - head;
  if (head != 0) munmap(raw, head);
  if (tail != 0) munmap(reinterpret_cast<char*>(aligned) + n, tail);
  return reinterpret_cast<void*>(aligned);
}

void SysFree(void* v, size_t n) {
  if (v != nullptr) munmap(v, RoundUpToPage(n));
}

void SysUnused(void* v, size_t n) {
  madvise(v, RoundUpToPage(n), MADV_DONTNEED);
}

}  // namespace stackalloc
