#include "alloc/guard.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "alloc/sys_alloc.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL \
  102  // Linux 6.13, include/uapi/asm-generic/mman-common.h
#endif

// The calling thread, as a pidfd (Linux 6.14, include/uapi/linux/pidfd.h):
// process_madvise() on it advises the caller's own memory with no file
// descriptor to open, leak or inherit across fork().
#ifndef PIDFD_SELF_THREAD
#define PIDFD_SELF_THREAD -10000
#endif

namespace stackalloc {
namespace {

std::atomic<bool> madvise_unsupported{false};
std::atomic<bool> batch_unsupported{false};
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

void InstallGuards(void* const* pages, int n, GuardMethod* methods,
                   size_t mappings) {
  int done = 0;
  if (n >= kMinGuardBatch && n <= kMaxGuardBatch &&
      !madvise_unsupported.load(std::memory_order_relaxed) &&
      !batch_unsupported.load(std::memory_order_relaxed)) {
    iovec iov[kMaxGuardBatch];
    for (int i = 0; i < n; ++i) iov[i] = {pages[i], kPageSize};
    const long advised =
        syscall(SYS_process_madvise, PIDFD_SELF_THREAD, iov,
                static_cast<unsigned long>(n), MADV_GUARD_INSTALL, 0u);
    if (advised >= 0) {
      // The kernel stops at the first page it could not advise.
      done = static_cast<int>(static_cast<size_t>(advised) / kPageSize);
      for (int i = 0; i < done; ++i) methods[i] = GuardMethod::kMadvise;
    } else if (errno == EINVAL || errno == ENOSYS || errno == EBADF ||
               errno == EPERM) {
      // No PIDFD_SELF, no process_madvise, or not this advice: one by one.
      batch_unsupported.store(true, std::memory_order_relaxed);
    }
  }
  for (int i = done; i < n; ++i) methods[i] = InstallGuard(pages[i], mappings);
}

void ReleaseGuard(size_t mappings) {
  used.fetch_sub(mappings, std::memory_order_relaxed);
}

void SetGuardBudget(size_t mappings) {
  budget.store(mappings, std::memory_order_relaxed);
}

size_t GuardMappingsUsed() { return used.load(std::memory_order_relaxed); }

namespace internal {
void ForceGuardFallback(bool on) {
  madvise_unsupported.store(on, std::memory_order_relaxed);
}
void ForceGuardOneByOne(bool on) {
  batch_unsupported.store(on, std::memory_order_relaxed);
}
}  // namespace internal

}  // namespace stackalloc
