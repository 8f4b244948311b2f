// Under the process's resource limits (RLIMIT_AS, RLIMIT_DATA,
// mlockall(MCL_FUTURE) with RLIMIT_MEMLOCK) and at vm.max_map_count, stacks
// are handed out while memory for them can be had, then refused with
// nullptr, and every statistic stays exact; a system call the OS refuses
// (an munmap, a madvise) is never counted as done.
//
// Regressions: the first chunk needed a 64 MiB reservation, all or nothing,
// so stackalloc(4096) returned nullptr with RLIMIT_AS at current use plus
// 60 MiB, and after mlockall(MCL_FUTURE) under the default 8 MiB lock
// limit. Near vm.max_map_count, large stacks freed while munmap failed were
// counted as returned: the statistics said 0 in use while they stayed
// mapped and resident, for good.
//
// Each case runs in a child process: limits are the process's. Children
// that exhaust the address space or the map count do not run under a
// sanitizer, whose runtime needs mappings of its own.

#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "base/sanitizers.h"
#include "base/stack_sizes.h"
#include "gtest/gtest.h"
#include "sched/m.h"
#include "stack/large_stack.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/process_info.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace {

using testing_util::DescribeWaitStatus;
using testing_util::RunInChild;
using testing_util::StackStatsDiff;
using testing_util::VmSize;

constexpr bool kSanitized = sanitizer::kAsan || sanitizer::kTsan;

// Allocates stacks of n bytes until one is refused, checking after each
// that stacks_inuse counts exactly what it holds, and after the refusal
// that no statistic moved; then frees them and checks inuse is back.
// Returns 0, or the step that went wrong; *count gets how many it had.
int AllocateUntilRefused(size_t n, size_t limit, size_t* count) {
  const uint64_t inuse0 = ReadMemStats().stacks_inuse;
  std::vector<void*> held;
  held.reserve(limit);
  for (;;) {
    const MemStats before = ReadMemStats();
    void* v = held.size() < limit ? stackalloc(n) : nullptr;
    if (v == nullptr) {
      if (!StackStatsDiff(before, ReadMemStats()).empty()) return 10;
      break;
    }
    memset(v, 0x3c, 64);  // Touched: it is real memory.
    held.push_back(v);
    if (ReadMemStats().stacks_inuse - inuse0 != held.size() * StackBytes(n)) {
      return 11;
    }
  }
  *count = held.size();
  for (void* v : held) stackfree(v, n);
  if (ReadMemStats().stacks_inuse != inuse0) return 12;
  return 0;
}

// Gives up CAP_IPC_LOCK (effective and permitted), so that RLIMIT_MEMLOCK
// applies to this process as to any user's. libcap's cap_set_proc, by hand.
bool DropCapIpcLock() {
  struct Header {
    uint32_t version;
    int pid;
  } header = {0x20080522 /* _LINUX_CAPABILITY_VERSION_3 */, 0};
  struct Data {
    uint32_t effective, permitted, inheritable;
  } data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  constexpr uint32_t kIpcLock = 1u << 14;  // CAP_IPC_LOCK
  data[0].effective &= ~kIpcLock;
  data[0].permitted &= ~kIpcLock;
  return syscall(SYS_capset, &header, data) == 0;
}

void SetLimit(int resource, rlim_t bytes) {
  struct rlimit r = {bytes, bytes};
  if (setrlimit(resource, &r) != 0) _exit(90);
}

// In a child: what an unprivileged process under the default lock limit
// does with mlockall(MCL_FUTURE): RLIMIT_MEMLOCK at 8 MiB, CAP_IPC_LOCK
// (root's, which ignores the limit) given up, every new mapping locked.
// Returns 0, or the child's exit code for the call that failed (90-92).
int LockFutureMappingsUnder8MiB() {
  SetLimit(RLIMIT_MEMLOCK, size_t{8} << 20);
  if (!DropCapIpcLock()) return 91;
  if (mlockall(MCL_FUTURE) != 0) return 92;
  return 0;
}

// An address-space or data limit 60 MiB above what the process uses: less
// than one full arena reservation. Stacks keep coming from smaller ones.
void UnderALimitOf60MiBMore(int resource) {
  if (kSanitized) GTEST_SKIP() << "the sanitizers' shadow needs the room";
  std::string err;
  const int status = RunInChild(
      [resource] {
        SetLimit(resource, VmSize() + (size_t{60} << 20));
        if (stackalloc(kFixedStack) == nullptr) return 1;  // The first.
        size_t count = 0;
        if (const int e = AllocateUntilRefused(16 << 10, 100000, &count)) {
          return e;
        }
        // Most of the 60 MiB went to stacks: refused only when none was
        // left. Of its address space a 16 KiB stack takes 20 (its guard),
        // and the records, maps and the child's own pages take the rest.
        if (count * (16 << 10) < (size_t{30} << 20)) return 2;
        return 0;
      },
      &err);
  EXPECT_EQ(DescribeWaitStatus(status), "exit 0") << err;
}

TEST(LimitsTest, AddressSpaceLimitLeavesRoomForStacks) {
  UnderALimitOf60MiBMore(RLIMIT_AS);
}

TEST(LimitsTest, DataLimitLeavesRoomForStacks) {
  UnderALimitOf60MiBMore(RLIMIT_DATA);
}

// A thread's first call under an address-space limit a few pages above
// what the process uses, at every headroom up to 72 KiB: the M's signal
// stack (64 KiB and a guard) may not fit, and the call is refused and
// changes nothing; once the limit is lifted the thread's next slow path
// gives it the signal stack, as every M's thread has one.
// Regression: the thread stayed bound with no signal stack for good, and
// an overflow of one of our stacks on it died of a bare SIGSEGV.
TEST(LimitsTest, AThreadRefusedItsSignalStackGetsOneLater) {
  if (kSanitized) GTEST_SKIP() << "the sanitizers' shadow needs the room";
  std::string err;
  const int status = RunInChild(
      [] {
        // Idle Ms (those of the parent's threads, and each round's) have
        // their signal stacks: threads that hold them make every round's
        // thread take a new M.
        std::atomic<bool> release{false};
        std::vector<std::thread> holders;
        auto hold_idle_ms = [&] {
          while (idle_m_count() > 0) {
            std::atomic<bool> bound{false};
            holders.emplace_back([&release, &bound] {
              getm();
              bound.store(true);
              while (!release.load()) usleep(1000);
            });
            while (!bound.load()) std::this_thread::yield();
          }
        };
        int rc = 0;
        for (size_t kib = 8; kib <= 72 && rc == 0; kib += 8) {
          hold_idle_ms();
          std::thread([kib, &rc] {
            rlimit old{};
            if (getrlimit(RLIMIT_AS, &old) != 0) _exit(90);
            const MemStats before = ReadMemStats();
            rlimit tight = old;
            tight.rlim_cur = VmSize() + (kib << 10);
            if (setrlimit(RLIMIT_AS, &tight) != 0) _exit(91);
            void* first = stackalloc(kFixedStack);
            if (setrlimit(RLIMIT_AS, &old) != 0) _exit(92);
            if (first == nullptr &&
                !StackStatsDiff(before, ReadMemStats()).empty()) {
              rc = 1;  // A refusal changed the statistics.
              return;
            }
            void* p = first != nullptr ? first : stackalloc(kFixedStack);
            stack_t ss{};
            if (p == nullptr) {
              rc = 2;
            } else if (sigaltstack(nullptr, &ss) != 0 ||
                       (ss.ss_flags & SS_DISABLE) != 0) {
              rc = 3;  // Bound without a signal stack.
            }
            if (p != nullptr) stackfree(p, kFixedStack);
          }).join();
          if (rc != 0) fprintf(stderr, "headroom %zu KiB: %d\n", kib, rc);
        }
        release.store(true);
        for (std::thread& t : holders) t.join();
        return rc;
      },
      &err);
  EXPECT_EQ(DescribeWaitStatus(status), "exit 0") << err;
}

// mlockall(MCL_FUTURE) as an unprivileged process with the default 8 MiB
// lock limit: every new mapping is locked and resident, reservations must
// fit what is left, guard markers and MADV_DONTNEED are refused on locked
// memory (guards fall back to mprotect, and nothing is counted as
// released).
TEST(LimitsTest, LockedMemoryUnderTheDefaultLockLimit) {
  if (kSanitized) GTEST_SKIP() << "the sanitizers' mappings would be locked";
  std::string err;
  const int status = RunInChild(
      [] {
        if (const int e = LockFutureMappingsUnder8MiB()) return e;
        // The limit holds: more than is left of it cannot be mapped.
        if (mmap(nullptr, size_t{16} << 20, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED) {
          return 93;
        }
        if (stackalloc(kFixedStack) == nullptr) return 1;
        size_t count = 0;
        if (const int e = AllocateUntilRefused(kFixedStack, 100000, &count)) {
          return e;
        }
        if (count < 64) return 2;  // At least a few chunks.
        // Everything is free now, but locked: nothing can be released, and
        // nothing is counted as released.
        const MemStats before = ReadMemStats();
        if (ScavengeStacks() != 0) return 3;
        const MemStats after = ReadMemStats();
        if (after.stacks_released != before.stacks_released ||
            after.stacks_sys != before.stacks_sys) {
          return 4;
        }
        return 0;
      },
      &err);
  EXPECT_EQ(DescribeWaitStatus(status), "exit 0") << err;
}

// Makes sure large stack s (size bytes, its guard page below it) has a
// mapping on each side advised as ours are, so the kernel merges them into
// the stack's: unmapping the stack then splits a mapping in two, which
// needs a mapping more. A side already mapped (a neighbouring stack) is
// left as it is.
void Surround(char* s, size_t size) {
  for (char* p : {s - 2 * kPageSize, s + size}) {  // Under the guard; above.
    void* got = mmap(p, kPageSize, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (got == p) (void)madvise(p, kPageSize, MADV_NOHUGEPAGE);
  }
}

// Maps pages that cannot merge with each other until the map count is
// spent; returns them.
std::vector<void*> SpendTheMapCount() {
  std::vector<void*> pages;
  pages.reserve(70000);
  for (int i = 0;; ++i) {
    void* p = mmap(nullptr, kPageSize,
                   i % 2 == 0 ? PROT_READ : PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) break;
    pages.push_back(p);
  }
  return pages;
}

// Large stacks (a mapping each, which the kernel merges with its
// neighbours) freed at vm.max_map_count: unmapping one in the middle of a
// merged mapping needs a mapping more, and fails. Their pages go back, the
// statistics say where their bytes are, and a later call unmaps them.
TEST(LimitsTest, LargeStacksFreedAtTheMapCountWall) {
  if (kSanitized) GTEST_SKIP() << "the sanitizers need mappings of their own";
  std::string err;
  const int status = RunInChild(
      [] {
        constexpr size_t kSize = 2 * kMaxOrderStack;
        constexpr int kStacks = 16;
        std::vector<char*> v;
        for (int i = 0; i < kStacks; ++i) {
          char* s = static_cast<char*>(stackalloc(kSize));
          if (s == nullptr) return 1;
          memset(s, 0x11, kSize);  // Resident.
          Surround(s, kSize);
          v.push_back(s);
        }
        const MemStats st0 = ReadMemStats();
        std::vector<void*> pages = SpendTheMapCount();
        for (char* s : v) stackfree(s, kSize);
        const MemStats st1 = ReadMemStats();
        if (st0.stacks_inuse - st1.stacks_inuse != kStacks * kSize) return 2;
        const uint64_t kept = st1.unmapping_released + st1.unmapping_sys;
        if (kept == 0) return 3;  // Some unmap must have failed here.
        // Each mapping kept is accounted for, its pages returned.
        if (st1.unmapping_sys != 0) return 4;
        if (st0.stacks_sys - st1.stacks_sys != kStacks * kSize) return 5;
        if (st1.stacks_released - st0.stacks_released != kept) return 10;
        for (char* s : v) {
          unsigned char resident = 0;
          if (mincore(s, kPageSize, &resident) == 0 && (resident & 1) != 0) {
            return 6;  // Still mapped, and still holding a page.
          }
        }
        // Room again. A large stack's alloc retries a few (each try is a
        // system call, and thousands may wait); ScavengeStacks() the rest.
        for (void* p : pages) munmap(p, kPageSize);
        char* x = static_cast<char*>(stackalloc(kSize));
        if (x == nullptr) return 11;
        const uint64_t retried =
            std::min<uint64_t>(kept, internal::kLargeUnmapRetries * kSize);
        if (ReadMemStats().unmapping_released != kept - retried) return 12;
        stackfree(x, kSize);
        ScavengeStacks();
        const MemStats st2 = ReadMemStats();
        if (st2.unmapping_released != 0 || st2.unmapping_sys != 0) return 7;
        if (st2.stacks_released != st1.stacks_released - kept) return 8;
        unsigned char resident;
        for (char* s : v) {
          if (mincore(s, kPageSize, &resident) == 0) return 9;  // Mapped.
        }
        return 0;
      },
      &err);
  EXPECT_EQ(DescribeWaitStatus(status), "exit 0") << err;
}

// A large stack freed twice while its mapping waits to be unmapped is
// named, as any other stack freed twice.
TEST(LimitsDeathTest, ALargeStackFreedTwiceWhileItsMappingWaits) {
  if (kSanitized) GTEST_SKIP() << "the sanitizers need mappings of their own";
  EXPECT_DEATH(
      {
        constexpr size_t kSize = 2 * kMaxOrderStack;
        std::vector<char*> v;
        for (int i = 0; i < 8; ++i) {
          v.push_back(static_cast<char*>(stackalloc(kSize)));
          Surround(v.back(), kSize);
        }
        SpendTheMapCount();
        // Free them until one's unmap fails (in the middle of a mapping),
        // then free that one again.
        for (char* s : v) {
          const uint64_t kept = ReadMemStats().unmapping_released;
          stackfree(s, kSize);
          if (ReadMemStats().unmapping_released != kept) stackfree(s, kSize);
        }
        _exit(1);  // No unmap failed: nothing was tested.
      },
      "fatal error: stackfree: 2097152-byte stack 0x[0-9a-f]+ freed twice");
}

// Under mlockall(MCL_FUTURE) every mapping is locked and resident, the
// arena's reservation included: memory locked for stacks should be what the
// statistics count (stacks_sys, stacks_meta_sys), not more.
//
// Regression: the first stackalloc(4096) locked 4,812 KiB (VmLck) while
// stacks_sys grew by 64 KiB and stacks_meta_sys by 640 KiB: the rest was the
// arena's reservation (shrunk from 64 MiB until it fit the 8 MiB lock
// limit), resident and locked but counted nowhere. Under MCL_FUTURE each
// chunk is now a mapping of its own.
long VmLckKiB() {
  FILE* f = fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof line, f) != nullptr) {
    sscanf(line, "VmLck: %ld", &kib);
  }
  fclose(f);
  return kib;
}

TEST(LimitsTest, LockedMemoryIsWhatTheStatisticsCount) {
  if (kSanitized) GTEST_SKIP() << "the sanitizers' mappings would be locked";
  std::string err;
  const int status = RunInChild(
      [] {
        if (const int e = LockFutureMappingsUnder8MiB()) return e;
        const MemStats a = ReadMemStats();
        const long lck0 = VmLckKiB();
        if (stackalloc(kFixedStack) == nullptr) return 1;
        const MemStats b = ReadMemStats();
        const long locked = VmLckKiB() - lck0;
        const long counted =
            static_cast<long>(((b.stacks_sys - a.stacks_sys) +
                               (b.stacks_meta_sys - a.stacks_meta_sys)) >>
                              10);
        fprintf(stderr, "VmLck +%ld KiB, counted +%ld KiB\n", locked, counted);
        // Besides: the M's signal stack (64 KiB and its guard) and record,
        // and malloc's first heap growth (binding an M asks glibc for the
        // thread's stack bounds, which allocates): 140 KiB here. A whole
        // reservation, the fault this guards against, is megabytes.
        return locked <= counted + 512 ? 0 : 2;
      },
      &err);
  EXPECT_EQ(DescribeWaitStatus(status), "exit 0") << err;
}

}  // namespace
}  // namespace stackalloc
