// README "Misuse": in the default optimised build a stack freed twice is
// caught "when the stack leaves its M's cache for the global pool ...
// checked against the chunk records there". The only exception documented
// is a double free whose two copies are both handed out from one M's cache.
//
// Here the two copies sit in two different Ms' caches. The first copy
// leaves (kTaken -> kPooled), a third M takes the batch (kPooled -> kTaken),
// then the second copy leaves: its check kTaken -> kPooled succeeds, because
// in the default build "in some M's cache", "handed out" and "in another M's
// cache" are the same state (kTaken). The stack is now in the pool *and* in
// the third M's cache: it is handed out twice, nothing dies, ever.
//
// Debug / checked builds die at the second stackfree (as promised).

#include <atomic>
#include <cstdio>
#include <set>
#include <thread>
#include <vector>

#include "base/check.h"
#include "gtest/gtest.h"
#include "sched/m.h"
#include "stackalloc.h"
#include "stats/mstats.h"

namespace stackalloc {
namespace {

constexpr bool kChecked = STACKALLOC_DEBUG_CHECKS != 0;
constexpr int kLimit = kStackCacheDefaultLimit;  // 32 stacks of 4 KiB.

// Runs f on a fresh thread (a fresh M: no thread has exited yet here, so
// there is no idle M to take over... except the ones our own joined threads
// left; each helper keeps its M while f runs).
template <typename F>
void OnThread(F f) {
  std::thread t(f);
  t.join();
}

TEST(CrossMDoubleFreeDeathTest, StackFreedOnTwoMsIsEventuallyCaught) {
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
TEST(CrossMDoubleFreeDeathTest, DoubleFreeAfterChunkReleaseIsEventuallyCaught) {
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

}  // namespace
}  // namespace stackalloc
