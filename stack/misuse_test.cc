// The contract of stackalloc / stackfree: the seed's fatal messages, and
// every misuse caught with README "Misuse"'s message (stackalloc.h, README
// "Contract"): at the call in debug and checked builds; in the default
// optimised build at the call (an immediate double free, nil into an empty
// cache, everything above 1 MiB) or when the stack leaves its M's cache for
// the pool (here forced by freeing more stacks than a cache holds).

#include <signal.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <thread>
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
constexpr int kLimit = kStackCacheDefaultLimit;  // 32 stacks of 4 KiB.

// Frees enough fresh stacks of size n that the older half of the cache
// (where the bad one sits) leaves for the pool. Two rounds, so a stale copy
// handed out by the first round is freed and leaves in the second.
void Flush(size_t n) {
  for (int round = 0; round < 2; ++round) {
    std::vector<void*> v;
    for (int i = 0; i < 2 * kStackCacheMax; ++i) v.push_back(stackalloc(n));
    for (void* p : v) stackfree(p, n);
  }
}

// The misuse in body dies with re: at the call in checked builds, else at
// the flush at the latest.
#define MISUSE(body, n, re)    \
  EXPECT_DEATH(                \
      {                        \
        body;                  \
        if (kChecked) exit(0); \
        Flush(n);              \
        exit(0);               \
      },                       \
      re)

// --- Where, and what size: the seed's messages ---

// Every size, in range or not, on a G's stack: the g0 check comes first.
TEST(MisuseDeathTest, NotOnSchedulerStackWhateverTheSize) {
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

TEST(MisuseDeathTest, WrongSizeInMalloc) {
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

TEST(MisuseDeathTest, ZeroAndNil) {
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

// --- Double frees ---

// Freed right after it was freed: dies at the call in every build.
TEST(MisuseDeathTest, ImmediateDoubleFreeDiesAtTheCall) {
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
TEST(MisuseDeathTest, DoubleFreeAfterThePoolDies) {
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

const char kTwice4k[] =
    "fatal error: stackfree: 4096-byte stack 0x[0-9a-f]+ freed twice";

TEST(MisuseDeathTest, DoubleFrees) {
  // Separated by another free.
  MISUSE(
      {
        void* a = stackalloc(4096);
        void* b = stackalloc(4096);
        stackfree(a, 4096);
        stackfree(b, 4096);
        stackfree(a, 4096);
      },
      4096, kTwice4k);
  // Across threads: caught at the call in checked builds; the default build
  // sees it only if both copies reach the pool (README, "Misuse").
  if (!kChecked) return;
  MISUSE(
      {
        void* a = stackalloc(4096);
        stackfree(a, 4096);
        std::thread([a] {
          stackfree(a, 4096);
          if (kChecked) exit(0);
          Flush(4096);
        }).join();
      },
      4096, kTwice4k);
}

// A large stack freed twice: at the call (README: everything above 1 MiB),
// with the "freed twice" message.
TEST(MisuseDeathTest, LargeDoubleFree) {
  EXPECT_DEATH(
      {
        void* a = stackalloc(2 << 20);
        stackfree(a, 2 << 20);
        stackfree(a, 2 << 20);
      },
      // Its mapping and record went at the first free: the second finds
      // nothing, and says both possibilities.
      "fatal error: stackfree: 0x[0-9a-f]+ is not a stack from stackalloc "
      "\\(or a stack above 1 MiB freed twice\\)");
}

// Freed twice after scavenging released its chunk.
TEST(MisuseDeathTest, DoubleFreeAfterItsChunkWasReleased) {
  MISUSE(
      {
        // A chunk of 256 KiB stacks of our own: 2 stacks.
        void* a = stackalloc(256 << 10);
        void* b = stackalloc(256 << 10);
        stackfree(a, 256 << 10);
        stackfree(b, 256 << 10);
        Flush(256 << 10);  // Both to the pool.
        ScavengeStacks();  // The chunk goes (if wholly free).
        stackfree(a, 256 << 10);
        // Its cache emptied, each stack checked, before anything could
        // carve the released chunk again (then a is another user's stack:
        // nothing can tell). Regression: the default build's Flush first
        // took a from the cache and carved its chunk anew, and nothing died.
        ScavengeStacks();
      },
      256 << 10,
      // Whether its chunk went or not, the second free is named.
      "fatal error: stackfree: (262144-byte stack 0x[0-9a-f]+ freed twice|"
      "0x[0-9a-f]+ is not a stack from stackalloc \\(never handed out, or "
      "freed twice and its chunk since released\\))");
}

// Two copies of a stack in two Ms' caches: the first leaves (kTaken ->
// kPooled), a third M takes the batch (kPooled -> kTaken), then the second
// copy leaves and its check kTaken -> kPooled succeeds, because in the
// default build "in some M's cache", "handed out" and "in another M's cache"
// are the same state (kTaken). The stack is then in the pool and in the
// third M's cache, handed out twice, and nothing dies, ever. Checked builds
// die at the second stackfree, as promised.
TEST(MisuseDeathTest, StackFreedOnTwoMsIsEventuallyCaught) {
  // The default build keeps no per-stack state on its fast paths: it sees
  // this only if both copies reach the pool (README, "Misuse").
  if (!kChecked) GTEST_SKIP() << "caught at the call in checked builds only";
  EXPECT_DEATH(
      {
        // Thread A allocates v and a cache's worth more, frees v first
        // (oldest) then enough to overflow its cache: v leaves with the
        // older half, into the pool.
        std::atomic<int> step{0};
        void* v = nullptr;
        std::vector<void*> held;
        std::thread a([&] {
          v = stackalloc(kFixedStack);
          std::vector<void*> more;
          for (int i = 0; i < kLimit; ++i) more.push_back(stackalloc(4096));
          step.store(1);
          while (step.load() != 2) std::this_thread::yield();
          stackfree(v, kFixedStack);  // Legitimate free, on M(a).
          for (void* p : more) stackfree(p, kFixedStack);  // v -> pool.
          step.store(3);
          while (step.load() != 6) std::this_thread::yield();
        });
        while (step.load() != 1) std::this_thread::yield();
        // Thread B: frees v again (the bug), into M(b)'s cache.
        std::thread b([&] {
          stackfree(stackalloc(kFixedStack), kFixedStack);  // Bind, warm.
          step.store(2);
          while (step.load() != 3) std::this_thread::yield();
          stackfree(v, kFixedStack);  // Double free: into M(b)'s cache.
          step.store(4);
          while (step.load() != 5) std::this_thread::yield();
          // Now flush M(b)'s cache: v, the oldest here but one, leaves.
          std::vector<void*> more;
          for (int i = 0; i < kLimit; ++i) more.push_back(stackalloc(4096));
          for (void* p : more) stackfree(p, kFixedStack);
          step.store(6);
        });
        while (step.load() != 4) std::this_thread::yield();
        // Thread C (this one): takes v back out of the pool into its cache.
        std::vector<void*> mine;
        bool got = false;
        for (int i = 0; i < 4 * kLimit && !got; ++i) {
          void* p = stackalloc(kFixedStack);
          mine.push_back(p);
          got = p == v;
        }
        if (!got) {
          fprintf(stderr, "setup: v not found in the pool\n");
          _exit(7);
        }
        step.store(5);
        b.join();
        a.join();
        // v is live here (in `mine`) and pooled: the next allocations on
        // any M hand it out again.
        std::set<void*> live(mine.begin(), mine.end());
        for (int i = 0; i < 8 * kLimit; ++i) {
          void* p = nullptr;
          std::thread([&] { p = stackalloc(kFixedStack); }).join();
          if (!live.insert(p).second) {
            fprintf(stderr, "SILENT: stack %p handed out twice\n", p);
            _exit(9);
          }
        }
        _exit(0);
      },
      "freed twice");
}

// The same kind on one thread: a stack freed again after scavenging
// released its chunk sits in the cache as a stale copy; the chunk is reused
// (carved again, kUncarved -> kTaken), so the stale copy and the fresh one
// are both handed out, and when the stale one leaves the cache its check
// kTaken -> kPooled passes. Debug/checked builds die at the second free.
TEST(MisuseDeathTest, DoubleFreeAfterChunkReleaseIsEventuallyCaught) {
  EXPECT_DEATH(
      {
        const size_t n = 256 << 10;  // Cache limit 2, 2 stacks a chunk.
        void* a = stackalloc(n);
        void* b = stackalloc(n);
        stackfree(a, n);
        stackfree(b, n);
        std::vector<void*> v;
        for (int i = 0; i < 128; ++i) v.push_back(stackalloc(n));
        for (void* p : v) stackfree(p, n);  // Everything to the pool...
        v.clear();
        ScavengeStacks();  // ...and every chunk released.
        stackfree(a, n);   // The bug: a second free of a.
        std::set<void*> seen;
        bool dup = false;
        for (int i = 0; i < 128; ++i) {
          void* p = stackalloc(n);
          dup |= !seen.insert(p).second;
          v.push_back(p);
        }
        for (void* p : v) stackfree(p, n);
        for (int i = 0; i < 128; ++i) v.push_back(stackalloc(n));
        for (void* p : v) stackfree(p, n);
        fprintf(stderr, "SILENT: %s\n",
                dup ? "a stack was handed out twice" : "nothing seen");
        _exit(0);
      },
      // Debug builds: at the call, as "not a stack" once the chunk went.
      "freed twice|is not a stack from stackalloc");
}

// --- Foreign pointers, wrong orders, nil ---

const char kNotOurs[] =
    "fatal error: stackfree: 0x[0-9a-f]+ is not a stack from stackalloc";

TEST(MisuseDeathTest, ForeignPointers) {
  MISUSE(stackfree(malloc(8192), 4096), 4096, kNotOurs);
  MISUSE(
      {
        char local[16];
        stackfree(local, 4096);
      },
      4096, kNotOurs);
  MISUSE(stackfree(mmap(nullptr, 4096, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
                   4096),
         4096, kNotOurs);
  MISUSE(
      {
        char* v = static_cast<char*>(stackalloc(4096));
        stackfree(v - 4096, 4096);  // Its guard page.
      },
      4096, kNotOurs);
  MISUSE(
      {
        char* v = static_cast<char*>(stackalloc(8192));
        stackfree(v + 4096, 8192);  // The middle.
      },
      8192, kNotOurs);
  MISUSE(
      {
        char* v = static_cast<char*>(stackalloc(kFixedStack));
        stackfree(v + 16, kFixedStack);  // Near its start.
      },
      kFixedStack, kNotOurs);
}

TEST(MisuseDeathTest, WrongOrder) {
  MISUSE(stackfree(stackalloc(8192), 4096), 4096,
         "fatal error: stackfree: 8192-byte stack 0x[0-9a-f]+ freed as 4096");
  MISUSE(stackfree(stackalloc(4096), 8192), 8192,
         "fatal error: stackfree: 4096-byte stack 0x[0-9a-f]+ freed as 8192");
  MISUSE(stackfree(stackalloc(2 << 20), 4096), 4096,
         "fatal error: stackfree: [0-9]+-byte stack 0x[0-9a-f]+ freed as 4096");
  // Above 1 MiB: at the call in every build.
  EXPECT_DEATH(stackfree(stackalloc(2 << 20), 3 << 20),
               "fatal error: stackfree: 2097152-byte stack 0x[0-9a-f]+ freed "
               "as 3145728");
  EXPECT_DEATH(stackfree(stackalloc(4096), 2 << 20),
               "fatal error: stackfree: 4096-byte stack 0x[0-9a-f]+ freed as "
               "2097152");
}

TEST(MisuseDeathTest, NilIntoANonEmptyCache) {
  MISUSE(
      {
        void* a = stackalloc(4096);
        stackfree(a, 4096);  // The cache is not empty now.
        stackfree(nullptr, 4096);
      },
      4096, "fatal error: stackfree: nil stack");
}

// A nil freed into a non-empty cache: checked builds die at the call; the
// default build hands it out again as if memory were refused, as the
// README says (its fast path affords no more than the repeat check).
TEST(MisuseDeathTest, NilFreedIntoANonEmptyCache) {
  auto misuse = [] {
    void* a = stackalloc(4096);
    stackfree(a, 4096);
    stackfree(nullptr, 4096);  // The bug (dies here when checked).
    exit(stackalloc(4096) == nullptr ? 3 : 4);
  };
  if (kChecked) {
    EXPECT_DEATH(misuse(), "fatal error: stackfree: nil stack");
  } else {
    EXPECT_EXIT(misuse(), testing::ExitedWithCode(3), "");
  }
}

// --- Checked builds, signals, sanitizers ---

TEST(MisuseDeathTest, CheckedBuildsCatchEveryMisuseAtTheCall) {
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

TEST(MisuseDeathTest, ReentryFromASignalHandlerDies) {
  EXPECT_DEATH(
      {
        signal(SIGUSR1, &ReenteringHandler);
        M* m = getm();
        SlowPathGate gate(m);  // As if interrupted inside stackalloc.
        raise(SIGUSR1);
      },
      "fatal error: stackalloc: re-entered from a signal handler");
}

// The same with a call the fast path could serve: a stack of an order
// whose cache holds one, in the default build too. The slow path closes
// the thread's caches while it holds its gate, so the handler's call falls
// to the slow path and dies there.
// Regression: in the default build the handler's call was served from the
// cache the interrupted slow path was refilling or trimming (the test above
// asked for 0 bytes to reach the gate).
void ReenteringFastHandler(int) {
  void* v = stackalloc(kFixedStack);
  stackfree(v, kFixedStack);
  _exit(3);  // Served: the slow path's state was the handler's to corrupt.
}

TEST(MisuseDeathTest, ReentryFromASignalHandlerDiesOnTheFastPathToo) {
  EXPECT_DEATH(
      {
        signal(SIGUSR1, &ReenteringFastHandler);
        stackfree(stackalloc(kFixedStack), kFixedStack);  // One cached.
        M* m = getm();
        SlowPathGate gate(m);  // As if interrupted inside stackalloc.
        raise(SIGUSR1);
      },
      "fatal error: stackalloc: re-entered from a signal handler");
}

#ifdef ABSL_HAVE_ADDRESS_SANITIZER
TEST(MisuseDeathTest, UseAfterStackfreeIsReportedUnderAsan) {
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
