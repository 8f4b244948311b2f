// The contract of stackalloc / stackfree: the seed's fatal messages, and
// every misuse caught (stackalloc.h, README "Contract").

#include <signal.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "absl/base/config.h"
#include "alloc/sys_alloc.h"
#include "base/check.h"
#include "gtest/gtest.h"
#include "sched/m.h"
#include "stackalloc.h"

namespace stackalloc {
namespace {

// Whether this build checks every call (debug and checked builds), or only
// what the default optimised build's fast path affords.
constexpr bool kChecked = STACKALLOC_DEBUG_CHECKS != 0;

// Every size, in range or not, on a G's stack: the g0 check comes first.
TEST(ContractDeathTest, NotOnSchedulerStackWhateverTheSize) {
  for (size_t n : {kFixedStack, size_t{8192}, size_t{100}, kMaxOrderStack,
                   kMaxOrderStack + 1, size_t{0}, SIZE_MAX}) {
    EXPECT_DEATH(
        {
          G g;  // Pretend the M now runs a G.
          getm()->set_curg(&g);
          stackalloc(n);
        },
        "fatal error: stackalloc not on scheduler stack")
        << n;
    EXPECT_DEATH(
        {
          void* p = stackalloc(kFixedStack);
          G g;
          getm()->set_curg(&g);
          stackfree(p, n);
        },
        "fatal error: stackfree not on scheduler stack")
        << n;
  }
}

TEST(ContractDeathTest, WrongSizeInMalloc) {
  EXPECT_DEATH(
      {
        getm()->set_mallocing(1);
        stackalloc(8192);
      },
      "stackalloc: in malloc, size=4096 want 8192");
  EXPECT_DEATH(
      {
        getm()->set_gcing(1);
        stackalloc(100);
      },
      "stackalloc: in malloc, size=4096 want 100");
  EXPECT_DEATH(
      {
        void* p = stackalloc(8192);
        getm()->set_mallocing(1);
        stackfree(p, 8192);
      },
      "stackfree: in malloc, size=4096 want 8192");
}

TEST(ContractDeathTest, ZeroAndNil) {
  EXPECT_DEATH(stackalloc(0), "fatal error: stackalloc: zero-sized stack");
  EXPECT_DEATH(stackfree(nullptr, kFixedStack),
               "fatal error: stackfree: nil stack");
  EXPECT_DEATH(
      {
        void* p = stackalloc(kFixedStack);
        stackfree(p, 0);
      },
      "fatal error: stackfree: zero-sized stack");
}

// Freed right after it was freed: dies at the call in every build.
TEST(ContractDeathTest, ImmediateDoubleFreeDiesAtTheCall) {
  for (size_t n : {kFixedStack, size_t{64} << 10}) {
    EXPECT_DEATH(
        {
          void* p = stackalloc(n);
          stackfree(p, n);
          stackfree(p, n);
        },
        "fatal error: stackfree: [0-9]+-byte stack 0x[0-9a-f]+ freed twice")
        << n;
  }
}

// Freed again after the first free already took the stack on to the global
// pool: checked builds die at the call, the default build when the second
// copy leaves the cache.
TEST(ContractDeathTest, DoubleFreeAfterThePoolDies) {
  EXPECT_DEATH(
      {
        std::vector<void*> v;
        for (int i = 0; i < 3 * kStackCacheMax; ++i) {
          v.push_back(stackalloc(kFixedStack));
        }
        void* a = v.back();
        v.pop_back();
        stackfree(a, kFixedStack);
        // Fill the cache past its limit: the oldest half, a with it, goes.
        for (int i = 0; i < kStackCacheMax; ++i) {
          stackfree(v.back(), kFixedStack);
          v.pop_back();
        }
        stackfree(a, kFixedStack);
        if (kChecked) exit(3);
        for (int i = 0; i < kStackCacheMax; ++i) {
          stackfree(v.back(), kFixedStack);
          v.pop_back();
        }
        exit(4);
      },
      "fatal error: stackfree: 4096-byte stack 0x[0-9a-f]+ freed twice");
}

// Runs `misuse` and then frees enough stacks of size n that whatever the
// misuse put in the cache leaves it for the pool: the default build dies
// there at the latest, checked builds at the misuse itself.
template <typename F>
void MisuseThenFlush(size_t n, F misuse) {
  std::vector<void*> v;
  for (int i = 0; i < 2 * kStackCacheMax; ++i) v.push_back(stackalloc(n));
  misuse();
  if (kChecked) exit(3);  // Should have died already.
  for (void* p : v) stackfree(p, n);
  exit(4);  // Should have died at the flush.
}

TEST(ContractDeathTest, DoubleFreeLaterDies) {
  EXPECT_DEATH(MisuseThenFlush(kFixedStack,
                               [] {
                                 void* a = stackalloc(kFixedStack);
                                 void* b = stackalloc(kFixedStack);
                                 stackfree(a, kFixedStack);
                                 stackfree(b, kFixedStack);
                                 stackfree(a, kFixedStack);
                               }),
               "fatal error: stackfree: 4096-byte stack 0x[0-9a-f]+ freed "
               "twice");
}

TEST(ContractDeathTest, ForeignPointerDies) {
  EXPECT_DEATH(MisuseThenFlush(kFixedStack,
                               [] {
                                 void* page = mmap(
                                     nullptr, kPageSize, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                                 stackfree(page, kFixedStack);
                               }),
               "fatal error: stackfree: 0x[0-9a-f]+ is not a stack from "
               "stackalloc");
  EXPECT_DEATH(
      MisuseThenFlush(kFixedStack,
                      [] {
                        char* p = static_cast<char*>(stackalloc(kFixedStack));
                        stackfree(p + 16, kFixedStack);
                      }),
      "is not a stack from stackalloc");
}

TEST(ContractDeathTest, WrongOrderDies) {
  EXPECT_DEATH(
      MisuseThenFlush(kFixedStack,
                      [] { stackfree(stackalloc(8192), kFixedStack); }),
      "fatal error: stackfree: 8192-byte stack 0x[0-9a-f]+ freed as "
      "4096");
  EXPECT_DEATH(
      MisuseThenFlush(8192, [] { stackfree(stackalloc(kFixedStack), 8192); }),
      "fatal error: stackfree: 4096-byte stack 0x[0-9a-f]+ freed as "
      "8192");
  // Above the largest order the size is checked at every call.
  EXPECT_DEATH(
      {
        void* p = stackalloc(2 * kMaxOrderStack);
        stackfree(p, 3 * kMaxOrderStack);
      },
      "fatal error: stackfree: 2097152-byte stack 0x[0-9a-f]+ freed as "
      "3145728");
  EXPECT_DEATH(
      {
        void* p = stackalloc(kFixedStack);
        stackfree(p, 2 * kMaxOrderStack);
      },
      "fatal error: stackfree: 4096-byte stack 0x[0-9a-f]+ freed as 2097152");
  EXPECT_DEATH(
      {
        void* p = stackalloc(2 * kMaxOrderStack);
        stackfree(p, 2 * kMaxOrderStack);
        stackfree(p, 2 * kMaxOrderStack);
      },
      "is not a stack from stackalloc|freed twice");
}

TEST(ContractDeathTest, CheckedBuildsCatchEveryMisuseAtTheCall) {
  if (!kChecked) GTEST_SKIP() << "the default build checks at the flush";
  EXPECT_DEATH(
      {
        void* a = stackalloc(kFixedStack);
        void* b = stackalloc(kFixedStack);
        stackfree(a, kFixedStack);
        stackfree(b, kFixedStack);
        stackfree(a, kFixedStack);
      },
      "freed twice");
  EXPECT_DEATH(stackfree(SysAlloc(kPageSize), kFixedStack),
               "is not a stack from stackalloc");
}

// A signal handler that calls the allocator while it is in its slow path
// (here: inside a gate, as the slow path holds one) dies instead of
// corrupting the M's state. In checked builds every call takes the slow
// path; in the default build the fast path is not guarded, so the handler's
// call here goes to the slow path by asking for 0 bytes.
void ReenteringHandler(int) { stackalloc(kChecked ? kFixedStack : 0); }

TEST(ContractDeathTest, ReentryFromASignalHandlerDies) {
  EXPECT_DEATH(
      {
        signal(SIGUSR1, &ReenteringHandler);
        M* m = getm();
        SlowPathGate gate(m);  // As if interrupted inside stackalloc.
        raise(SIGUSR1);
      },
      "fatal error: stackalloc: re-entered from a signal handler");
}

#ifdef ABSL_HAVE_ADDRESS_SANITIZER
TEST(ContractDeathTest, UseAfterStackfreeIsReportedUnderAsan) {
  for (size_t n : {kFixedStack, size_t{64} << 10}) {
    EXPECT_DEATH(
        {
          auto* p = static_cast<volatile char*>(stackalloc(n));
          stackfree(const_cast<char*>(p), n);
          p[100] = 1;
        },
        "use-after-poison");
  }
}
#endif

}  // namespace
}  // namespace stackalloc
