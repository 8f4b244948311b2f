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

// Each mprotect'ed guard splits one mapping into up to three.
constexpr size_t kMappingsPerGuard = 2;

std::atomic<bool> madvise_unsupported{false};
std::atomic<size_t> budget{kDefaultGuardMappingBudget};
std::atomic<size_t> used{0};

// Takes kMappingsPerGuard from the budget; false if it is spent.
bool TakeBudget() {
  size_t u = used.load(std::memory_order_relaxed);
  do {
    if (u + kMappingsPerGuard > budget.load(std::memory_order_relaxed)) {
      return false;
    }
  } while (!used.compare_exchange_weak(u, u + kMappingsPerGuard,
                                       std::memory_order_relaxed));
  return true;
}

}  // namespace

GuardMethod InstallGuard(void* p) {
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
  if (!TakeBudget()) return GuardMethod::kNone;
  if (mprotect(p, kPageSize, PROT_NONE) != 0) {
    used.fetch_sub(kMappingsPerGuard, std::memory_order_relaxed);
    return GuardMethod::kNone;
  }
  return GuardMethod::kMprotect;
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
