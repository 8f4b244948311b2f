#include "proc/proc.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>

#include "base/stack_sizes.h"
#include "gtest/gtest.h"
#include "sched/m.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace proc {
namespace {

using testing_util::AllocAndFreeEveryOrder;

// A stack pool over stackalloc that records what the runtime asks of it, and
// whether it asks on g0. Reset by the fixture.
struct PoolLog {
  std::atomic<int64_t> allocs{0};
  std::atomic<int64_t> frees{0};
  std::atomic<int64_t> large_allocs{0};
  std::atomic<int64_t> large_frees{0};
  std::atomic<int64_t> off_g0{0};       // Calls made off the scheduler stack.
  std::atomic<int64_t> outstanding{0};  // allocs - frees...
  std::atomic<int64_t> max_outstanding{0};  // ...and its maximum.
  std::atomic<uintptr_t> last_alloc{0};
  std::atomic<size_t> last_alloc_size{0};
};
PoolLog pool_log;

bool OnG0() {
  M* m = getm();
  return m->curg() == m->g0();
}

void* LoggingAlloc(size_t n) {
  if (!OnG0()) pool_log.off_g0.fetch_add(1);
  void* v = stackalloc(n);
  pool_log.allocs.fetch_add(1);
  if (n != kFixedStack) pool_log.large_allocs.fetch_add(1);
  int64_t out = pool_log.outstanding.fetch_add(1) + 1;
  int64_t max = pool_log.max_outstanding.load();
  while (out > max &&
         !pool_log.max_outstanding.compare_exchange_weak(max, out)) {
  }
  pool_log.last_alloc.store(reinterpret_cast<uintptr_t>(v));
  pool_log.last_alloc_size.store(n);
  return v;
}

void LoggingFree(void* v, size_t n) {
  if (!OnG0()) pool_log.off_g0.fetch_add(1);
  pool_log.frees.fetch_add(1);
  if (n != kFixedStack) pool_log.large_frees.fetch_add(1);
  pool_log.outstanding.fetch_sub(1);
  stackfree(v, n);
}

constexpr StackSource kLoggingSource = {&LoggingAlloc, &LoggingFree};

class ProcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_log.allocs = 0;
    pool_log.frees = 0;
    pool_log.large_allocs = 0;
    pool_log.large_frees = 0;
    pool_log.off_g0 = 0;
    pool_log.outstanding = 0;
    pool_log.max_outstanding = 0;
    start_ = ReadMemStats();
  }
  void TearDown() override { Stop(); }

  static void StartRuntime(int gomaxprocs) {
    Options o;
    o.gomaxprocs = gomaxprocs;
    o.stack_source = kLoggingSource;
    Start(o);
  }

  // Every stack the runtime took went back, on g0, and the global
  // statistics are where they started.
  void ExpectAllStacksBack() {
    EXPECT_EQ(pool_log.off_g0.load(), 0);
    EXPECT_EQ(pool_log.frees.load(), pool_log.allocs.load());
    EXPECT_EQ(pool_log.large_frees.load(), pool_log.large_allocs.load());
    MemStats now = ReadMemStats();
    EXPECT_EQ(now.stacks_inuse, start_.stacks_inuse);
    EXPECT_EQ(now.large_stacks_inuse, start_.large_stacks_inuse);
  }

  MemStats start_;
};

TEST_F(ProcTest, GRunsOnTheStackItWasGiven) {
  StartRuntime(1);
  std::atomic<uintptr_t> local_addr{0};
  std::atomic<bool> curg_is_g{false};
  std::atomic<bool> curg_has_local{false};
  Go([&] {
    int local = 0;
    local_addr.store(reinterpret_cast<uintptr_t>(&local));
    M* m = getm();
    curg_is_g.store(m->curg() != m->g0());
    curg_has_local.store(m->curg()->OnStack(&local));
  });
  Wait();
  ASSERT_EQ(pool_log.allocs.load(), 1);
  uintptr_t lo = pool_log.last_alloc.load();
  EXPECT_EQ(pool_log.last_alloc_size.load(), kFixedStack);
  EXPECT_GE(local_addr.load(), lo);
  EXPECT_LT(local_addr.load(), lo + kFixedStack);
  EXPECT_TRUE(curg_is_g.load());
  EXPECT_TRUE(curg_has_local.load());
  Stop();
  ProcStats st = ReadProcStats();
  EXPECT_EQ(st.gs_started, 1u);
  EXPECT_EQ(st.gs_finished, 1u);
  EXPECT_EQ(st.segments, 0u);
  ExpectAllStacksBack();
}

// A G writes into the bottom of its stack (below every frame) and ends;
// the next G spawned on its M takes its record, and the same stack. With stacks
// wiped (StackWipe() at Start) it finds zeros there: the stack went back to
// stackalloc at the first G's exit and came out wiped. Without, the bytes are
// still there (the record kept its stack): the test can fail.
TEST_F(ProcTest, WipedStacksReachTheNextGZeroed) {
  constexpr size_t kBytes = 64;
  for (bool wipe : {false, true}) {
    SCOPED_TRACE(wipe ? "wiped" : "not wiped");
    const bool was = SetStackWipe(wipe);
    StartRuntime(1);
    std::atomic<uintptr_t> first{0}, second{0};
    std::atomic<size_t> nonzero{kBytes + 1};
    std::atomic<bool> written{false};
    // A parent spawns the writer, yields until it has ended, then spawns
    // the reader, which takes the writer's dead record on this M.
    Go([&] {
      Go([&] {
        const G* g = getm()->curg();
        first = g->stack_lo;
        memset(reinterpret_cast<void*>(g->stack_lo), 0xa5, kBytes);
        written = true;
      });
      while (!written) Gosched();
      Gosched();  // The writer's exit is served on g0 before we resume.
      Go([&] {
        const G* g = getm()->curg();
        second = g->stack_lo;
        const auto* p = reinterpret_cast<const unsigned char*>(g->stack_lo);
        size_t n = 0;
        for (size_t i = 0; i < kBytes; ++i) n += p[i] != 0;
        nonzero = n;
      });
      // Alive until the reader has run: this G's own stack must not be
      // the one freed last when the reader's is taken.
      while (nonzero == kBytes + 1) Gosched();
    });
    Wait();
    Stop();
    SetStackWipe(was);
    ASSERT_EQ(second.load(), first.load()) << "not the same stack";
    EXPECT_EQ(nonzero.load(), wipe ? 0 : kBytes);
    // The writer's stack went back at its exit only when wiped.
    EXPECT_EQ(pool_log.allocs.load(), wipe ? 3 : 2);
    ExpectAllStacksBack();
    SetUp();
  }
}

// 100 Gs spawned from main each spawn 99 more from their own stack.
TEST_F(ProcTest, TenThousandGsFreeEveryStackOnG0) {
  constexpr int kParents = 100;
  constexpr int kChildren = 99;
  StartRuntime(2);
  std::atomic<int> ran{0};
  for (int p = 0; p < kParents; ++p) {
    Go([&ran] {
      for (int c = 0; c < kChildren; ++c) Go([&ran] { ran.fetch_add(1); });
      ran.fetch_add(1);
    });
  }
  Wait();
  EXPECT_EQ(ran.load(), kParents * (1 + kChildren));
  ProcStats st = ReadProcStats();
  // Dead Gs' records keep their stacks for the next spawn: one stack per
  // record, and far fewer records than Gs.
  EXPECT_EQ(pool_log.allocs.load(), static_cast<int64_t>(st.g_allocs));
  EXPECT_LT(st.g_allocs, uint64_t{kParents * (1 + kChildren)} / 2);
  Stop();
  st = ReadProcStats();
  EXPECT_EQ(st.gs_started, uint64_t{kParents * (1 + kChildren)});
  EXPECT_EQ(st.gs_finished, uint64_t{kParents * (1 + kChildren)});
  ExpectAllStacksBack();
}

constexpr size_t kRecursePad = 256;

int64_t Recurse(int depth, bool yield);

ABSL_ATTRIBUTE_NOINLINE int64_t RecurseFrame(int depth, bool yield) {
  char pad[kRecursePad];
  memset(pad, depth & 0x7f, sizeof pad);
  asm volatile("" : : "r"(pad) : "memory");  // The frame is really there.
  if (depth == 0) {
    if (yield) Gosched();
    return 0;
  }
  int64_t r = depth + Recurse(depth - 1, yield);
  asm volatile("" : : "r"(pad) : "memory");  // Live across the call.
  return r + pad[0] - (depth & 0x7f);
}

int64_t Recurse(int depth, bool yield) {
  return WithStack(kRecursePad + 128,
                   [depth, yield] { return RecurseFrame(depth, yield); });
}

TEST_F(ProcTest, DeepRecursionAcrossSegments) {
  constexpr int kDepth = 1000;
  StartRuntime(1);
  std::atomic<int64_t> result{-1};
  Go([&result] { result.store(Recurse(kDepth, false)); });
  Wait();
  EXPECT_EQ(result.load(), int64_t{kDepth} * (kDepth + 1) / 2);
  Stop();
  ProcStats st = ReadProcStats();
  // At the bottom the G held its first stack and one segment per few frames
  // (a segment holds no more frames than its bytes).
  EXPECT_GE(
      pool_log.max_outstanding.load(),
      1 + int64_t{kDepth} * kRecursePad / static_cast<int64_t>(SegmentStack()));
  EXPECT_EQ(st.segments, static_cast<uint64_t>(pool_log.allocs.load() - 1));
  EXPECT_EQ(st.large_segments, 0u);
  ExpectAllStacksBack();
}

// Twice down and up 1000 frames: the second descent starts on the G's
// cached segments (entered directly), and on the way up those find the
// cache refilled by the deeper segments, so they return through g0 and are
// freed. Everything adds up, and every stack goes back.
TEST_F(ProcTest, SegmentCacheRefillsAndOverflows) {
  constexpr int kDepth = 1000;
  StartRuntime(1);
  std::atomic<int64_t> first{-1}, second{-1};
  Go([&] {
    first.store(Recurse(kDepth, false));
    second.store(Recurse(kDepth, false));
  });
  Wait();
  EXPECT_EQ(first.load(), int64_t{kDepth} * (kDepth + 1) / 2);
  EXPECT_EQ(second.load(), first.load());
  Stop();
  ProcStats st = ReadProcStats();
  EXPECT_EQ(st.segments_reused, 8u);  // kSegCache
  EXPECT_EQ(st.segments - st.segments_reused,
            static_cast<uint64_t>(pool_log.allocs.load() - 1));
  ExpectAllStacksBack();
}

// The hot split: a G that grows into the same segments again and again
// takes them from its cache, without g0 or the pool.
TEST_F(ProcTest, HotSplitReusesSegmentsDirectly) {
  constexpr int kCalls = 1000;
  // Each level calls WithStack once, so takes at most one new segment: a
  // call needs no more segments than the G's cache holds (8), whatever a
  // segment fits. How many it fits depends on the build's frames and on the
  // machine (the signal frame reserve follows AT_MINSIGSTKSZ): a depth
  // computed from frame sizes needed 10 segments in the checked build on a
  // machine whose reserve left room for three frames a segment. Eight
  // levels of WithStack(kRecursePad + 128) never fit the G's first stack.
  constexpr int kDepth = 8;
  StartRuntime(1);
  std::atomic<int> right{0};
  Go([&] {
    for (int i = 0; i < kCalls; ++i) {
      if (Recurse(kDepth, false) == int64_t{kDepth} * (kDepth + 1) / 2) {
        right.fetch_add(1);
      }
    }
  });
  Wait();
  EXPECT_EQ(right.load(), kCalls);
  const int64_t allocs = pool_log.allocs.load();
  Stop();
  ProcStats st = ReadProcStats();
  const uint64_t per_call = st.segments / kCalls;
  EXPECT_EQ(st.segments % kCalls, 0u);
  EXPECT_GE(per_call, 1u);
  // Only the first call's segments came from the pool.
  EXPECT_EQ(allocs, static_cast<int64_t>(1 + per_call));
  EXPECT_EQ(st.segments_reused, (kCalls - 1) * per_call);
  ExpectAllStacksBack();
}

TEST_F(ProcTest, FrameLargerThanASegmentGetsALargeSegment) {
  constexpr size_t kBig = 3 * kFixedStack;
  StartRuntime(1);
  std::atomic<bool> on_large{false};
  std::atomic<int> sum{0};
  Go([&] {
    WithStack(kBig + 128, [&] {
      char big[kBig];
      memset(big, 1, sizeof big);
      asm volatile("" : : "r"(big) : "memory");
      uintptr_t lo = pool_log.last_alloc.load();
      auto a = reinterpret_cast<uintptr_t>(&big[0]);
      on_large.store(pool_log.last_alloc_size.load() > kBig && lo <= a &&
                     a + kBig <= lo + pool_log.last_alloc_size.load());
      int s = 0;
      for (char c : big) s += c;
      sum.store(s);
    });
  });
  Wait();
  EXPECT_TRUE(on_large.load());
  EXPECT_EQ(sum.load(), static_cast<int>(kBig));
  Stop();
  ProcStats st = ReadProcStats();
  EXPECT_EQ(st.segments, 1u);
  EXPECT_EQ(st.large_segments, 1u);
  EXPECT_EQ(pool_log.large_allocs.load(), 1);
  ExpectAllStacksBack();
}

// A const callable (a lambda captured by copy into another) goes through a
// new segment too, returning a value or not.
TEST_F(ProcTest, ConstCallablesRunOnANewSegment) {
  StartRuntime(1);
  std::atomic<int> ran{0};
  std::atomic<int> returned{0};
  Go([&] {
    const auto void_fn = [&ran] { ran.fetch_add(1); };
    const auto int_fn = [] { return 7; };
    WithStack(2 * kFixedStack, void_fn);
    returned.store(WithStack(2 * kFixedStack, int_fn));
  });
  Wait();
  Stop();
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(returned.load(), 7);
  EXPECT_EQ(ReadProcStats().segments, 2u);
  ExpectAllStacksBack();
}

TEST_F(ProcTest, GoschedInterleavesTwoGsOnOneM) {
  constexpr int kTurns = 4;
  StartRuntime(1);
  char log[2 * kTurns + 1] = {};
  int n = 0;
  // Both Gs are queued before either runs: the parent holds the only M. The
  // last one spawned runs first (runnext); each Gosched queues its G behind
  // the other.
  Go([&] {
    for (char name : {'A', 'B'}) {
      Go([&log, &n, name] {
        for (int i = 0; i < kTurns; ++i) {
          log[n++] = name;
          Gosched();
        }
      });
    }
  });
  Wait();
  EXPECT_STREQ(log, "BABABABA");
  Stop();
  ExpectAllStacksBack();
}

TEST_F(ProcTest, StackallocWorksThroughSystemstack) {
  StartRuntime(1);
  std::atomic<bool> ran_on_g0{false};
  std::atomic<bool> local_on_g0{false};
  std::atomic<uintptr_t> stack{0};
  std::atomic<uint64_t> inuse_while_held{0};
  Go([&] {
    void* v = nullptr;
    Systemstack([&] {
      M* m = getm();
      int local = 0;
      ran_on_g0.store(m->curg() == m->g0());
      local_on_g0.store(m->g0()->OnStack(&local));
      v = stackalloc(kFixedStack);
    });
    stack.store(reinterpret_cast<uintptr_t>(v));
    Systemstack([&] {
      inuse_while_held.store(ReadMemStats().stacks_inuse);
      stackfree(v, kFixedStack);
    });
  });
  Wait();
  EXPECT_TRUE(ran_on_g0.load());
  EXPECT_TRUE(local_on_g0.load());
  ASSERT_NE(stack.load(), 0u);
  EXPECT_EQ(stack.load() % kFixedStack, 0u);
  // The G's own stack and the one it allocated.
  EXPECT_EQ(inuse_while_held.load(), start_.stacks_inuse + 2 * kFixedStack);
  Stop();
  ExpectAllStacksBack();
}

// Gs that yield at the bottom of a deep recursion migrate between Ms with all
// their segments; those are then freed on another M than the one that took
// them.
TEST_F(ProcTest, GsMigrateWithTheirSegments) {
  constexpr int kGs = 16;
  constexpr int kRounds = 10;
  constexpr int kDepth = 100;
  StartRuntime(4);
  std::atomic<int> right{0};
  for (int i = 0; i < kGs; ++i) {
    Go([&right] {
      for (int r = 0; r < kRounds; ++r) {
        if (Recurse(kDepth, true) == int64_t{kDepth} * (kDepth + 1) / 2) {
          right.fetch_add(1);
        }
      }
    });
  }
  Wait();
  EXPECT_EQ(right.load(), kGs * kRounds);
  Stop();
  ProcStats st = ReadProcStats();
  EXPECT_EQ(st.gs_finished, uint64_t{kGs});
  // Every segment not reused from a G's cache came from the pool.
  EXPECT_EQ(st.segments - st.segments_reused,
            static_cast<uint64_t>(pool_log.allocs.load() - kGs));
  EXPECT_GT(st.segments_reused, 0u);
  EXPECT_GE(st.segments,
            uint64_t{kGs * kRounds} * (kDepth * kRecursePad / SegmentStack()));
  ExpectAllStacksBack();
}

// Statistics are readable from a G while the controlling thread waits.
TEST_F(ProcTest, ReadProcStatsFromAGWhileMainWaits) {
  StartRuntime(1);
  std::atomic<uint64_t> started_seen{0};
  std::atomic<uint64_t> finished_seen{1};
  Go([&] {
    Systemstack([&] {
      ProcStats st = ReadProcStats();
      started_seen.store(st.gs_started);
      finished_seen.store(st.gs_finished);
    });
  });
  Wait();
  EXPECT_EQ(started_seen.load(), 1u);
  EXPECT_EQ(finished_seen.load(), 0u);
  Stop();
  EXPECT_EQ(ReadProcStats().gs_finished, 1u);
  ExpectAllStacksBack();
}

// ReadProcStats "may be called from anywhere": also while the controlling
// thread starts and stops runtimes (TSan checks the publication).
TEST_F(ProcTest, ReadProcStatsWhileRuntimesStartAndStop) {
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0};
  std::thread reader([&] {
    while (!done.load()) {
      // Counters of different Ms are read at different moments, so no
      // relation between them holds mid-flight; TSan checks the reads.
      (void)ReadProcStats();
      reads.fetch_add(1);
    }
  });
  // The reader reads before the first Start, not only after the last Stop.
  EXPECT_TRUE(testing_util::WaitUntil([&] { return reads.load() > 0; }));
  for (int round = 0; round < 20; ++round) {
    StartRuntime(4);
    Go([] {});
    Stop();
    EXPECT_EQ(ReadProcStats().gs_finished, 1u);
  }
  done.store(true);
  reader.join();
  EXPECT_GT(reads.load(), 0u);
  ExpectAllStacksBack();
}

// The public calls a fiber's code may make from a G (proc.h: Gs run on 4 KiB
// stacks; stackalloc.h and mstats.h put no "g0 only" on these) run on the
// G's own 4 KiB stack. ScavengeStacks() empties idle Ms' caches and returns
// what it released, exactly.
TEST_F(ProcTest, ScavengeStacksFromAG) {
  // An idle M with full caches of every order, and the pools hold the rest.
  std::thread([] { AllocAndFreeEveryOrder(40); }).join();
  StartRuntime(1);
  std::atomic<bool> running{false};
  std::atomic<bool> go{false};
  std::atomic<size_t> released{0};
  Go([&] {
    running.store(true);
    while (!go.load()) {
    }
    released.store(ScavengeStacks());
  });
  while (!running.load()) std::this_thread::yield();
  const MemStats st0 = ReadMemStats();
  go.store(true);
  Wait();
  const MemStats st1 = ReadMemStats();
  EXPECT_GT(released.load(), 0u);
  EXPECT_EQ(st0.stacks_sys - st1.stacks_sys, released.load());
  EXPECT_EQ(st1.stacks_released - st0.stacks_released, released.load());
  Stop();
  ExpectAllStacksBack();
}

// ReadMemStats() and the knobs, from a G.
TEST_F(ProcTest, ReadMemStatsAndKnobsFromAG) {
  StartRuntime(1);
  std::atomic<uint64_t> inuse{0};
  std::atomic<bool> limit_set{false};
  std::atomic<bool> guards_were_on{false};
  Go([&] {
    inuse.store(ReadMemStats().stacks_inuse);
    limit_set.store(SetStackCacheLimit(8));
    SetScavengeThreshold(0);
    guards_were_on.store(SetStackGuards(true));
  });
  Wait();
  EXPECT_EQ(inuse.load(), start_.stacks_inuse + kFixedStack);  // The G's.
  EXPECT_TRUE(limit_set.load());
  EXPECT_TRUE(guards_were_on.load());  // The default.
  ASSERT_TRUE(SetStackCacheLimit(DefaultStackCacheLimit(0)));
  Stop();
  ExpectAllStacksBack();
}

TEST(ProcWithoutRuntimeTest, HelpersJustCallTheirFunction) {
  int ran = 0;
  Systemstack([&] { ++ran; });
  EXPECT_EQ(WithStack(1 << 20, [&] { return ++ran; }), 2);
  Gosched();  // No G: nothing to do.
  EXPECT_EQ(ran, 2);
}

}  // namespace
}  // namespace proc
}  // namespace stackalloc
