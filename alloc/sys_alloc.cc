#include "alloc/sys_alloc.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdint>

namespace stackalloc {
namespace {

std::atomic<bool> huge_pages{false};

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
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + align - 1) & ~(align - 1);
  const size_t head = aligned - start;
  const size_t tail = align - head;
  // Trimming the ends of a mapping never needs a mapping more, so it fails
  // only if the kernel cannot allocate its own bookkeeping: then what is
  // left goes back whole, and the request is refused. If even that fails,
  // the block is used and the untouched ends stay mapped, holding no memory.
  const bool head_ok = head == 0 || munmap(raw, head) == 0;
  const bool tail_ok =
      tail == 0 || munmap(reinterpret_cast<char*>(aligned) + n, tail) == 0;
  if (head_ok && tail_ok) return reinterpret_cast<void*>(aligned);
  char* lo = head_ok ? reinterpret_cast<char*>(aligned) : raw;
  char* hi = tail_ok ? reinterpret_cast<char*>(aligned) + n : raw + n + align;
  if (munmap(lo, static_cast<size_t>(hi - lo)) == 0) return nullptr;
  return reinterpret_cast<void*>(aligned);
}

bool SysNewMappingsLocked() {
  void* page = SysAlloc(kPageSize);
  if (page == nullptr) return false;
  unsigned char resident = 0;
  const bool locked =
      mincore(page, kPageSize, &resident) == 0 && (resident & 1) != 0;
  // Unmapping a whole mapping never needs a mapping more; a page left
  // behind would cost a page of address space.
  (void)SysFree(page, kPageSize);
  return locked;
}

bool SysFree(void* v, size_t n) {
  return v == nullptr || munmap(v, RoundUpToPage(n)) == 0;
}

bool SysUnused(void* v, size_t n) {
  return madvise(v, RoundUpToPage(n), MADV_DONTNEED) == 0;
}

bool SysResidency(const void* v, size_t n, unsigned char* vec) {
  if (n == 0 || n > kMaxResidencyPages * kPageSize) return false;
  if (mincore(const_cast<void*>(v), n, vec) != 0) return false;
  // Only bit 0 means anything; the others are reserved.
  for (size_t i = 0; i < n / kPageSize; ++i) vec[i] &= 1;
  return true;
}

void SetHugePages(bool on) { huge_pages.store(on, std::memory_order_relaxed); }

bool HugePages() { return huge_pages.load(std::memory_order_relaxed); }

bool SysHugePageAdvice(void* v, size_t n) {
  return madvise(v, RoundUpToPage(n),
                 HugePages() ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) == 0;
}

}  // namespace stackalloc
