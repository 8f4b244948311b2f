#include "alloc/guard.h"

#include <sys/mman.h>

#include <atomic>
#include <cerrno>

#include "alloc/sys_alloc.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL \
  102  // Linux 6.13, include/uapi/asm-generic/mman-common.h
#endif

namespace stackalloc {
namespace {

std::atomic<bool> madvise_unsupported{false};
std::atomic<size_t> budget{kDefaultGuardMappingBudget};
std::atomic<size_t> used{0};

// Takes n mappings from the budget; false if it has not that many left.
bool TakeBudget(size_t n) {
  size_t u = used.load(std::memory_order_relaxed);
  do {
    if (u + n > budget.load(std::memory_order_relaxed)) return false;
  } while (!used.compare_exchange_weak(u, u + n, std::memory_order_relaxed));
  return true;
}

}  // namespace

GuardMethod InstallGuard(void* p, size_t mappings) {
  if (!madvise_unsupported.load(std::memory_order_relaxed)) {
    if (madvise(p, kPageSize, MADV_GUARD_INSTALL) == 0) {
      return GuardMethod::kMadvise;
    }
    // EINVAL: a kernel before 6.13. Anything else (EAGAIN, ENOMEM): this
    // one failed; the fallback may still work.
    if (errno == EINVAL) {
      madvise_unsupported.store(true, std::memory_order_relaxed);
    }
  }
  if (!TakeBudget(mappings)) return GuardMethod::kNone;
  if (mprotect(p, kPageSize, PROT_NONE) != 0) {
    ReleaseGuard(mappings);
    return GuardMethod::kNone;
  }
  return GuardMethod::kMprotect;
}

void ReleaseGuard(size_t mappings) {
  used.fetch_sub(mappings, std::memory_order_relaxed);
}

void SetGuardMappingBudget(size_t mappings) {
  budget.store(mappings, std::memory_order_relaxed);
}

size_t GuardMappingsUsed() { return used.load(std::memory_order_relaxed); }

namespace internal {
void ForceGuardFallback(bool on) {
  madvise_unsupported.store(on, std::memory_order_relaxed);
}
}  // namespace internal

}  // namespace stackalloc
