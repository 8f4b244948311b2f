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
#define PIDFD_SELF_THREAD (-10000)
#endif

namespace stackalloc {
namespace {

// Whether the kernel lacks MADV_GUARD_INSTALL: 0 not asked yet, 1 it has
// it, 2 it lacks it (or a test says so).
std::atomic<int> markers{0};
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

// Whether the kernel has guard markers, and takes them through
// process_madvise() on the calling thread, asked once on pages of our own:
// EINVAL there means an older kernel, while EINVAL on a stack's page may
// mean only that its mapping is locked (mlockall(MCL_FUTURE)), which
// munlock() undoes for the probe's pages.
void Probe() {
  int have = 1;
  bool batch = true;
  void* pages = SysAlloc(2 * kPageSize);
  if (pages != nullptr) {
    (void)munlock(pages, 2 * kPageSize);  // Not locked: nothing to undo.
    if (madvise(pages, kPageSize, MADV_GUARD_INSTALL) != 0 && errno == EINVAL) {
      have = 2;
    }
    iovec iov = {static_cast<char*>(pages) + kPageSize, kPageSize};
    batch = have == 1 &&
            syscall(SYS_process_madvise, PIDFD_SELF_THREAD, &iov, 1ul,
                    MADV_GUARD_INSTALL, 0u) == static_cast<long>(kPageSize);
    // Unmapping a whole mapping never needs a mapping more; a probe left
    // behind would cost two pages of address space, no memory.
    (void)SysFree(pages, 2 * kPageSize);
  }
  if (!batch) batch_unsupported.store(true, std::memory_order_relaxed);
  int expected = 0;
  markers.compare_exchange_strong(expected, have, std::memory_order_relaxed);
}

bool HaveMarkers() {
  if (markers.load(std::memory_order_relaxed) == 0) Probe();
  return markers.load(std::memory_order_relaxed) == 1;
}

}  // namespace

GuardMethod InstallGuard(void* p, size_t mappings) {
  // A failure here (a locked mapping, EAGAIN, ENOMEM) is this page's: the
  // fallback may still work.
  if (HaveMarkers() && madvise(p, kPageSize, MADV_GUARD_INSTALL) == 0) {
    return GuardMethod::kMadvise;
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
  if (n >= kMinGuardBatch && n <= kMaxGuardBatch && HaveMarkers() &&
      !batch_unsupported.load(std::memory_order_relaxed)) {
    iovec iov[kMaxGuardBatch];
    for (int i = 0; i < n; ++i) iov[i] = {pages[i], kPageSize};
    const long advised =
        syscall(SYS_process_madvise, PIDFD_SELF_THREAD, iov,
                static_cast<unsigned long>(n), MADV_GUARD_INSTALL, 0u);
    // The kernel stops at the first page it could not advise (a locked
    // mapping, say); those left get one madvise() each, then the fallback.
    if (advised > 0) {
      done = static_cast<int>(static_cast<size_t>(advised) / kPageSize);
      for (int i = 0; i < done; ++i) methods[i] = GuardMethod::kMadvise;
    }
  }
  for (int i = done; i < n; ++i) methods[i] = InstallGuard(pages[i], mappings);
}

void ReleaseGuard(size_t mappings) {
  used.fetch_sub(mappings, std::memory_order_relaxed);
}

size_t GuardMappingsUsed() { return used.load(std::memory_order_relaxed); }

namespace internal {
void SetGuardMappingBudget(size_t mappings) {
  budget.store(mappings, std::memory_order_relaxed);
}

void ForceGuardFallback(bool on) {
  markers.store(on ? 2 : 0, std::memory_order_relaxed);
}
void ForceGuardOneByOne(bool on) {
  batch_unsupported.store(on, std::memory_order_relaxed);
  if (!on) markers.store(0, std::memory_order_relaxed);  // Probe again.
}
}  // namespace internal

}  // namespace stackalloc
