// The scheduler loop (schedule.cc) and the G lifecycle it drives
// (lifecycle.cc): work stealing, exact statistics at scale, fairness of
// Gosched, Wait/Stop with Gs on every queue, spawning without allocation,
// closures inline and on the heap.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <new>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "proc/proc.h"
#include "proc/runq.h"
#include "sched/m.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/test_helpers.h"

// Every operator new of the binary, counted: spawning must not allocate.
std::atomic<int64_t> news{0};

void* operator new(size_t n) {
  news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { free(p); }
void operator delete(void* p, size_t) noexcept { free(p); }

namespace stackalloc {
namespace proc {
namespace {

class ScheduleTest : public ::testing::Test {
 protected:
  void SetUp() override { inuse_ = ReadMemStats().stacks_inuse; }
  void TearDown() override {
    Stop();
    EXPECT_EQ(ReadMemStats().stacks_inuse, inuse_);  // Every stack back.
  }
  static void StartRuntime(int procs) {
    Options o;
    o.gomaxprocs = procs;
    Start(o);
  }
  // The id of the M running the caller.
  static int64_t MId() { return getm()->id(); }

  uint64_t inuse_ = 0;
};

void Spin(std::chrono::microseconds d) {
  auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

// One G spawns them all on its M; other Ms steal and run some of them.
// Fewer Gs than a local run queue holds, so none overflows to the global
// queue: a G that ran on another M got there only by being stolen. (With
// 1,000 Gs the overflow went to the global queue, other Ms took it from
// there, and a run could end with Gs elsewhere but none stolen.)
TEST_F(ScheduleTest, GsSpawnedOnOneMRunOnOthers) {
  constexpr int kGs = 200;
  static_assert(kGs < internal::LocalRunq::kSize,
                "no G may overflow to the global queue");
  StartRuntime(4);
  std::vector<std::atomic<int>> runs(kGs);
  std::vector<std::atomic<int64_t>> ran_on(kGs);
  std::atomic<int64_t> spawner_m{-1};
  std::atomic<int> stolen_runs{0};
  Go([&] {
    spawner_m.store(MId());
    for (int i = 0; i < kGs; ++i) {
      Go([&, i] {
        runs[i].fetch_add(1);
        ran_on[i].store(MId());
        if (MId() != spawner_m.load()) stolen_runs.fetch_add(1);
        Spin(std::chrono::microseconds(100));
      });
    }
    // Keep the spawner's M busy: the Gs it queued run elsewhere only if
    // other Ms wake and steal them (else they run after it returns). At
    // least 50 ms, and on until one has (a minute at most: when a woken M
    // gets a CPU is the OS's choice).
    Spin(std::chrono::milliseconds(50));
    testing_util::WaitUntil([&] { return stolen_runs.load() > 0; });
  });
  Wait();
  std::set<int64_t> ms;
  int elsewhere = 0;
  for (int i = 0; i < kGs; ++i) {
    EXPECT_EQ(runs[i].load(), 1) << "G " << i;
    ms.insert(ran_on[i].load());
    if (ran_on[i].load() != spawner_m.load()) ++elsewhere;
  }
  EXPECT_GE(ms.size(), 2u);
  EXPECT_GT(elsewhere, 0);
  // Every G elsewhere was stolen at least once (a stolen G can be stolen
  // again, so the count may be larger).
  EXPECT_GE(ReadProcStats().gs_stolen, static_cast<uint64_t>(elsewhere));
  Stop();
  EXPECT_EQ(ReadProcStats().gs_finished, uint64_t{kGs + 1});
}

// 1,000 Gs spawned from main each spawn 99: 100,000 Gs on 4 Ms.
TEST_F(ScheduleTest, HundredThousandGsOnFourMsExactStatistics) {
  constexpr int kParents = 1000;
  constexpr int kChildren = 99;
  constexpr int kGs = kParents * (1 + kChildren);
  StartRuntime(4);
  std::unique_ptr<std::atomic<uint8_t>[]> runs(new std::atomic<uint8_t>[kGs]);
  for (int i = 0; i < kGs; ++i) runs[i] = 0;
  std::atomic<int64_t> goid_sum{0};
  for (int p = 0; p < kParents; ++p) {
    Go([&, p] {
      const int base = p * (1 + kChildren);
      for (int c = 1; c <= kChildren; ++c) {
        Go([&, base, c] {
          runs[base + c].fetch_add(1);
          goid_sum.fetch_add(getm()->curg()->goid);
        });
      }
      runs[base].fetch_add(1);
      goid_sum.fetch_add(getm()->curg()->goid);
    });
  }
  Wait();
  for (int i = 0; i < kGs; ++i) ASSERT_EQ(runs[i].load(), 1) << "G " << i;
  ProcStats st = ReadProcStats();  // Exact once Wait has returned.
  EXPECT_EQ(st.gs_started, uint64_t{kGs});
  EXPECT_EQ(st.gs_finished, uint64_t{kGs});
  // Records were reused (how many lived at once depends on the schedule).
  EXPECT_LT(st.g_allocs, uint64_t{kGs} / 2);
  // goids are unique: 1..kGs when every M's batch of 16 was used up, and in
  // any case their sum is at least that of 1..kGs.
  EXPECT_GE(goid_sum.load(), int64_t{kGs} * (kGs + 1) / 2);
}

// A G that spawns and yields in a loop, on one M: the G queued before it
// still runs, long before the loop would end.
TEST_F(ScheduleTest, SpawnAndYieldLoopCannotStarveOthers) {
  constexpr int kMaxTurns = 100000;
  for (int procs : {1, 2}) {
    StartRuntime(procs);
    std::atomic<bool> other_ran{false};
    std::atomic<int> turns_until_seen{-1};
    std::atomic<int> children{0};
    // Spawned together from one G, so the other is queued when the loop
    // starts (from main, it could arrive any number of turns later).
    Go([&] {
      Go([&] { other_ran.store(true); });
      Go([&] {
        int turn = 0;
        while (!other_ran.load() && turn < kMaxTurns) {
          Go([&children] { children.fetch_add(1); });
          Gosched();
          ++turn;
        }
        turns_until_seen.store(turn);
      });
    });
    Wait();
    EXPECT_TRUE(other_ran.load());
    EXPECT_GE(turns_until_seen.load(), 0);
    // One M: the other G runs right after the first yield. Two: it may have
    // been stolen, and then waits for the thief to wake.
    if (procs == 1) {
      EXPECT_EQ(turns_until_seen.load(), 1);
    }
    EXPECT_LT(turns_until_seen.load(), kMaxTurns / 10);
    EXPECT_EQ(children.load(), turns_until_seen.load());
    Stop();
  }
}

// Gs that spawn Gs without yielding keep their M's local queue full; the
// global queue is still served (every 61st schedule looks there first).
TEST_F(ScheduleTest, LocalWorkCannotStarveTheGlobalQueue) {
  StartRuntime(1);
  std::atomic<bool> global_ran{false};
  std::atomic<int64_t> local_runs{0};
  std::atomic<int64_t> runs_when_seen{-1};
  // A self-renewing tree of local work: each G spawns two until the yielded
  // G has run (or a bound is hit).
  struct Tree {
    static void Grow(std::atomic<bool>* stop, std::atomic<int64_t>* runs) {
      if (stop->load() || runs->fetch_add(1) > 1000000) return;
      Go([stop, runs] { Grow(stop, runs); });
      Go([stop, runs] { Grow(stop, runs); });
    }
  };
  Go([&] {
    Go([&] { Tree::Grow(&global_ran, &local_runs); });
    Gosched();  // To the global queue, behind nothing, while the tree grows.
    runs_when_seen.store(local_runs.load());
    global_ran.store(true);
  });
  Wait();
  EXPECT_TRUE(global_ran.load());
  EXPECT_GE(runs_when_seen.load(), 0);
  EXPECT_LT(runs_when_seen.load(), 1000);
}

// Both Ms run a G that spins (never yields) after spawning 300 Gs: each M
// holds a runnext G, a full ring, and the overflow is on the global queue.
// Wait and Stop block until every one of them has run.
TEST_F(ScheduleTest, WaitAndStopWithGsOnEveryQueue) {
  constexpr int kSpinners = 2;
  constexpr int kEach = 300;  // > the ring's 256: runnext, ring and global.
  for (bool stop_directly : {false, true}) {
    StartRuntime(kSpinners);
    std::atomic<bool> spawn{false};
    std::atomic<bool> release{false};
    std::atomic<int> spinning{0};
    std::atomic<int> spawned{0};
    std::atomic<int> ran{0};
    for (int s = 0; s < kSpinners; ++s) {
      Go([&] {
        spinning.fetch_add(1);
        while (!spawn.load()) {
        }
        for (int i = 0; i < kEach; ++i) Go([&ran] { ran.fetch_add(1); });
        spawned.fetch_add(1);
        while (!release.load()) {
        }
      });
      // One spinner per M: the next is spawned once this one holds its M.
      while (spinning.load() < s + 1) std::this_thread::yield();
    }
    spawn.store(true);
    std::thread releaser([&] {
      while (spawned.load() < kSpinners) std::this_thread::yield();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      EXPECT_EQ(ran.load(), 0);  // Every M is busy: all still queued.
      release.store(true);
    });
    if (!stop_directly) {
      Wait();
      EXPECT_EQ(ran.load(), kSpinners * kEach);
    }
    Stop();
    releaser.join();
    EXPECT_EQ(ran.load(), kSpinners * kEach);
    ProcStats st = ReadProcStats();
    EXPECT_EQ(st.gs_started, uint64_t{kSpinners * (kEach + 1)});
    EXPECT_EQ(st.gs_finished, uint64_t{kSpinners * (kEach + 1)});
  }
}

// After warm-up, a chain of spawns makes no G record and calls no operator
// new: records, stacks and closures all come from the M's free list.
TEST_F(ScheduleTest, SteadyStateSpawnAllocatesNothing) {
  constexpr int64_t kChain = 10000;
  StartRuntime(1);
  struct Chain {
    static void Step(int64_t n, std::atomic<int64_t>* done) {
      if (n == 0) return;
      done->fetch_add(1);
      Go([n, done] { Step(n - 1, done); });
    }
  };
  std::atomic<int64_t> done{0};
  std::atomic<int64_t> news_in_chain{-1};
  std::atomic<int64_t> records_in_chain{-1};
  // All inside one G: a spawn from an ordinary thread takes its record from
  // the global free list, not an M's.
  Go([&] {
    auto chain = [&] {
      const int64_t target = done.load() + kChain;
      Chain::Step(kChain, &done);
      while (done.load() < target) Gosched();
    };
    chain();  // Warm-up.
    const int64_t news_before = news.load();
    const uint64_t records_before = ReadProcStats().g_allocs;
    chain();
    records_in_chain.store(ReadProcStats().g_allocs - records_before);
    news_in_chain.store(news.load() - news_before);
  });
  Wait();
  EXPECT_EQ(done.load(), 2 * kChain);
  EXPECT_EQ(records_in_chain.load(), 0);
  EXPECT_EQ(news_in_chain.load(), 0);
}

// Closures: inline ones and those too large to be, each destroyed once.
TEST_F(ScheduleTest, ClosuresInlineAndOnTheHeapAreDestroyedOnce) {
  static std::atomic<int> alive{0};
  static std::atomic<int> calls{0};
  struct Counted {
    Counted() { alive.fetch_add(1); }
    Counted(const Counted&) { alive.fetch_add(1); }
    ~Counted() { alive.fetch_sub(1); }
  };
  StartRuntime(2);
  for (int i = 0; i < 100; ++i) {
    Counted c;
    char big[256] = {1};
    Go([c] { calls.fetch_add(1); });
    Go([c, big] { calls.fetch_add(big[0]); });
  }
  Wait();
  EXPECT_EQ(calls.load(), 200);
  EXPECT_EQ(alive.load(), 0);
}

// A closure whose copy throws: the exception reaches the spawner, and the
// record goes back (the runtime keeps working).
TEST_F(ScheduleTest, ClosureCopyThatThrowsReachesTheSpawner) {
  struct Throws {
    Throws() = default;
    Throws(const Throws&) { throw 7; }
    void operator()() const {}
  };
  StartRuntime(1);
  Throws t;
  EXPECT_THROW(Go(t), int);
  std::atomic<int> ran{0};
  Go([&ran] { ran.fetch_add(1); });
  Wait();
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(ReadProcStats().gs_started, 1u);
}

}  // namespace
}  // namespace proc
}  // namespace stackalloc
