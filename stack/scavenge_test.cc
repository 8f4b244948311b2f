// Returning memory: whole chunks, single stacks of the large orders, the
// policy, stacks stranded for want of pool records, and scavengers racing.

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "alloc/chunk.h"
#include "alloc/sys_alloc.h"
#include "gtest/gtest.h"
#include "sched/m.h"
#include "stack/test_peer.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace {

using internal::StackallocTestPeer;
using testing_util::RunThreads;

// Resident pages of [p, p + n), by mincore.
size_t Resident(const void* p, size_t n) {
  std::vector<unsigned char> vec((n + kPageSize - 1) / kPageSize);
  if (mincore(const_cast<void*>(p), n, vec.data()) != 0) return ~size_t{0};
  size_t r = 0;
  for (unsigned char c : vec) r += c & 1;
  return r;
}

TEST(ScavengeTest, WhollyFreeChunksAreReleasedExactlyAndWorkAgain) {
  ScavengeStacks();  // Start from pools with no wholly free chunk.
  const int per_chunk = StackallocTestPeer::ChunkStacks(0);
  const int n = 10 * per_chunk;
  std::vector<void*> v;
  for (int i = 0; i < n; ++i) v.push_back(stackalloc(kFixedStack));
  for (void* p : v) ASSERT_NE(p, nullptr);
  for (void* p : v) memset(p, 0x42, kFixedStack);
  for (void* p : v) stackfree(p, kFixedStack);
  const MemStats st0 = ReadMemStats();
  const size_t released = ScavengeStacks();
  const MemStats st1 = ReadMemStats();
  const size_t chunk_stacks = per_chunk * kFixedStack;
  ASSERT_GE(released, chunk_stacks);
  EXPECT_EQ(released % chunk_stacks, 0u);
  EXPECT_EQ(st0.stacks_sys - st1.stacks_sys, released);
  EXPECT_EQ(st1.stacks_released - st0.stacks_released, released);
  EXPECT_EQ(st1.orders[0].released - st0.orders[0].released, released);
  // The caller's cache went to the pools first (so did idle Ms'): what left
  // the caches and pools together is what was released.
  EXPECT_EQ((st0.stacks_pooled + st0.stacks_cached) -
                (st1.stacks_pooled + st1.stacks_cached),
            released);
  EXPECT_EQ(getm()->mcache.stackcache.c[0].stats.cached.value(), 0);
  EXPECT_EQ(st1.stacks_inuse, st0.stacks_inuse);
  EXPECT_EQ(st1.stacks_guard, st0.stacks_guard);  // Guards stay.

  // Allocate until a released chunk is taken back: it is reused before
  // anything new is mapped, its pages read as zero, guards still there.
  const int64_t released0 = StackallocTestPeer::PoolReleasedChunks(0);
  const size_t reserved0 = StackallocTestPeer::ArenaReserved();
  std::vector<unsigned char*> held;
  while (StackallocTestPeer::PoolReleasedChunks(0) == released0 &&
         held.size() < 100000) {
    held.push_back(static_cast<unsigned char*>(stackalloc(kFixedStack)));
  }
  ASSERT_LT(StackallocTestPeer::PoolReleasedChunks(0), released0);
  const ChunkRecord* rec = StackallocTestPeer::ChunkOf(held.back());
  for (int i = 0; i < per_chunk - 1; ++i) {  // The rest of its stacks.
    held.push_back(static_cast<unsigned char*>(stackalloc(kFixedStack)));
  }
  for (unsigned char* p : held) {
    if (StackallocTestPeer::ChunkOf(p) != rec) continue;
    EXPECT_EQ(p[0], 0);
    EXPECT_EQ(p[kFixedStack - 1], 0);
    const int slot = rec->SlotOfStack(reinterpret_cast<uintptr_t>(p));
    if (rec->guard != 0) {
      EXPECT_NE(rec->Flags(slot) & kSlotGuarded, 0);
    }
    memset(p, 0x17, kFixedStack);
  }
  EXPECT_EQ(StackallocTestPeer::ArenaReserved(), reserved0);
  const MemStats st2 = ReadMemStats();
  EXPECT_EQ(st2.stacks_sys + st2.stacks_released,
            st1.stacks_sys + st1.stacks_released);
  EXPECT_LT(st2.stacks_released, st1.stacks_released);
  for (unsigned char* p : held) stackfree(p, kFixedStack);
  EXPECT_EQ(ReadMemStats().stacks_inuse, st0.stacks_inuse);
}

// The large orders give back the touched pages of each free stack: a burst
// of deep 1 MiB fibers does not pin its peak.
TEST(ScavengeTest, LargeOrdersReturnTouchedPagesStackByStack) {
  constexpr int kOrder = kNumStackOrders - 1;  // 1 MiB.
  constexpr size_t kSize = kMaxOrderStack;
  constexpr int kN = 6;
  constexpr size_t kPages = kSize / kPageSize;
  ScavengeStacks();
  const MemStats st0 = ReadMemStats();
  std::vector<unsigned char*> v, kept;
  // The burst runs on a thread that then exits: its M goes idle, cache and
  // all, and the scavenger empties idle Ms' caches into the pools. Every
  // other stack stays in use, so no chunk (two stacks) is wholly free: the
  // pages go back one stack at a time.
  std::thread([&] {
    for (int i = 0; i < 2 * kN; ++i) {
      auto* p = static_cast<unsigned char*>(stackalloc(kSize));
      ASSERT_NE(p, nullptr);
      memset(p, 0x5a, kSize);  // A deep fiber.
      EXPECT_EQ(Resident(p, kSize), kPages);
      (i % 2 == 0 ? v : kept).push_back(p);
    }
    for (unsigned char* p : v) stackfree(p, kSize);
  }).join();
  const MemStats st1 = ReadMemStats();
  size_t resident = 0;
  for (unsigned char* p : v) resident += Resident(p, kSize);
  EXPECT_EQ(resident, kN * kPages);  // Free, but still holding their pages.
  const size_t released = ScavengeStacks();
  const MemStats st2 = ReadMemStats();
  resident = 0;
  for (unsigned char* p : v) resident += Resident(p, kSize);
  EXPECT_EQ(resident, 0u);
  EXPECT_EQ(released, kN * kSize);
  EXPECT_EQ(st1.stacks_sys - st2.stacks_sys, released);
  EXPECT_EQ(st2.stacks_released - st1.stacks_released, released);
  EXPECT_EQ(st2.orders[kOrder].released - st1.orders[kOrder].released,
            kN * kSize);
  EXPECT_EQ(st2.orders[kOrder].inuse, st0.orders[kOrder].inuse + kN * kSize);
  for (unsigned char* p : kept) EXPECT_EQ(Resident(p, kSize), kPages);
  EXPECT_EQ(st2.stacks_guard, st1.stacks_guard);
  // Taken back out of the pool, they count as memory again, exactly, and
  // the allocator still writes nothing into them.
  std::vector<void*> again;
  for (int i = 0; i < kN; ++i) again.push_back(stackalloc(kSize));
  const MemStats st3 = ReadMemStats();
  EXPECT_EQ(st3.stacks_sys + st3.stacks_released,
            st2.stacks_sys + st2.stacks_released);
  EXPECT_EQ(st2.orders[kOrder].released - st3.orders[kOrder].released,
            st3.orders[kOrder].sys - st2.orders[kOrder].sys);
  for (void* p : again) {
    if (std::find(v.begin(), v.end(), p) != v.end()) {
      EXPECT_EQ(Resident(p, kSize), 0u);
    }
  }
  EXPECT_EQ(st3.orders[kOrder].released, st1.orders[kOrder].released);
  for (void* p : again) stackfree(p, kSize);
  for (void* p : kept) stackfree(p, kSize);
}

TEST(ScavengeTest, PolicyRunsWhenThePoolPassesTheThreshold) {
  ScavengeStacks();
  const int per_chunk = StackallocTestPeer::ChunkStacks(0);
  // The policy waits for the pools to pass the threshold and to double what
  // the last scavenge left in them: free enough stacks for both.
  const size_t left = ReadMemStats().stacks_pooled / kFixedStack;
  const size_t n = 2 * left + 16 * per_chunk;
  std::vector<void*> v;
  for (size_t i = 0; i < n; ++i) v.push_back(stackalloc(kFixedStack));
  const MemStats st0 = ReadMemStats();
  SetScavengeThreshold(4 * per_chunk * kFixedStack);
  for (void* p : v) stackfree(p, kFixedStack);
  SetScavengeThreshold(0);
  const MemStats st1 = ReadMemStats();
  EXPECT_GT(st1.stacks_released, st0.stacks_released) << "policy never ran";
  EXPECT_EQ(st0.stacks_sys - st1.stacks_sys,
            st1.stacks_released - st0.stacks_released);
  EXPECT_EQ(st1.stacks_inuse, st0.stacks_inuse - n * kFixedStack);
}

// Without memory for pool records, freed stacks stay free and counted, are
// found again by the next refill, and can still go back to the OS.
std::atomic<bool> refuse_nodes{false};
void* NodeSource(size_t n) { return refuse_nodes ? nullptr : SysAlloc(n); }

TEST(ScavengeTest, StacksWithoutPoolRecordsAreStrandedNotLost) {
  StackallocTestPeer::SetNodeSource(&NodeSource);
  const int per_chunk = StackallocTestPeer::ChunkStacks(2);
  constexpr size_t kSize = 16 << 10;
  std::thread([&] {
    // Far more batches than one chunk of spare records holds.
    const int n = 400 * per_chunk;
    std::vector<void*> v;
    for (int i = 0; i < n; ++i) v.push_back(stackalloc(kSize));
    const MemStats st0 = ReadMemStats();
    refuse_nodes = true;
    for (void* p : v) stackfree(p, kSize);
    const MemStats st1 = ReadMemStats();
    EXPECT_GT(StackallocTestPeer::PoolStranded(2), 0);
    // Stranded stacks are free stacks in the pool: counted there, exactly.
    EXPECT_EQ(st1.orders[2].inuse, st0.orders[2].inuse - n * kSize);
    EXPECT_EQ(st1.orders[2].pooled + st1.orders[2].cached,
              st0.orders[2].pooled + st0.orders[2].cached + n * kSize);
    EXPECT_EQ(st1.stacks_sys, st0.stacks_sys);
    // Scavenging returns wholly free chunks even with stranded stacks in
    // them.
    const size_t released = ScavengeStacks();
    EXPECT_GT(released, 0u);
    const MemStats st2 = ReadMemStats();
    EXPECT_EQ(st1.stacks_sys - st2.stacks_sys, released);
    // Allocating again finds the stranded stacks (and released chunks)
    // before mapping any new chunk.
    for (void*& p : v) p = stackalloc(kSize);
    const MemStats st3 = ReadMemStats();
    EXPECT_EQ(st3.stacks_sys + st3.stacks_released,
              st2.stacks_sys + st2.stacks_released);
    EXPECT_EQ(std::set<void*>(v.begin(), v.end()).size(), v.size());
    EXPECT_EQ(StackallocTestPeer::PoolStranded(2), 0);
    refuse_nodes = false;
    for (void* p : v) stackfree(p, kSize);
    EXPECT_EQ(ReadMemStats().orders[2].inuse, st0.orders[2].inuse - n * kSize);
  }).join();
  StackallocTestPeer::SetNodeSource(nullptr);
}

// "ScavengeStacks() returns the bytes released; stacks_sys falls and
// stacks_released rises by exactly that much", with scavengers racing each
// other and the policy; and "stacks_sys + stacks_released changes only when
// a chunk is mapped" per order.
void FillPools() {
  // Threads that free everything and exit: idle Ms' caches, pools.
  RunThreads(3, [](int t) {
    std::vector<std::pair<void*, size_t>> v;
    for (int k = 0; k < kNumStackOrders; ++k) {
      for (int i = 0; i < 70 - 20 * t; ++i) {
        void* p = stackalloc(OrderStackSize(k));
        static_cast<volatile char*>(p)[OrderStackSize(k) - 1] = 1;
        v.emplace_back(p, OrderStackSize(k));
      }
    }
    for (size_t i = 0; i < v.size(); i += 2) stackfree(v[i].first, v[i].second);
    for (size_t i = 1; i < v.size(); i += 2) stackfree(v[i].first, v[i].second);
  });
}

TEST(ScavengeTest, RacingScavengersReturnExactlyWhatMoved) {
  for (int round = 0; round < 50; ++round) {
    FillPools();
    const MemStats before = ReadMemStats();
    std::atomic<size_t> total{0};
    RunThreads(3, [&total](int) { total.fetch_add(ScavengeStacks()); });
    const MemStats after = ReadMemStats();
    EXPECT_EQ(before.stacks_sys - after.stacks_sys, total.load()) << round;
    EXPECT_EQ(after.stacks_released - before.stacks_released, total.load())
        << round;
    for (int k = 0; k < kNumStackOrders; ++k) {
      EXPECT_EQ(before.orders[k].sys + before.orders[k].released,
                after.orders[k].sys + after.orders[k].released)
          << "order " << k << " round " << round;
    }
  }
}

// ScavengeStacks() empties the caches of every idle M and the calling
// thread's own; a thread without an M borrows one for the call and leaves
// without it.
// Regression: a thread without an M bound an idle one for good, then
// emptied every idle M's cache but that one, and never its own (after
// proc::Stop() the dead Gs' stacks sat there).
TEST(ScavengeTest, EmptiesIdleMsAndTheCallersOwnCaches) {
  // A thread that exits leaves its M idle, caches full.
  std::thread([] { testing_util::AllocAndFreeEveryOrder(8); }).join();
  // This thread's own cache holds stacks too.
  testing_util::AllocAndFreeEveryOrder(8);
  ASSERT_GT(getm()->mcache.stackcache.c[0].stats.cached.value(), 0);
  const int32_t ms = mcount();
  std::thread([ms] {
    EXPECT_EQ(internal::tls_m, internal::UnboundM());
    ScavengeStacks();
    EXPECT_EQ(internal::tls_m, internal::UnboundM()) << "left bound";
    EXPECT_EQ(mcount(), ms) << "made an M instead of borrowing an idle one";
  }).join();
  // Every idle M's cache is empty, the borrowed one's included.
  for (M* m = allm(); m != nullptr; m = m->alllink()) {
    if (m->owner.load() != kMIdle) continue;
    for (int k = 0; k < kNumStackOrders; ++k) {
      EXPECT_EQ(m->mcache.stackcache.c[k].stats.cached.value(), 0)
          << "M " << m->id() << " order " << k;
    }
  }
  ScavengeStacks();
  for (int k = 0; k < kNumStackOrders; ++k) {
    EXPECT_EQ(getm()->mcache.stackcache.c[k].stats.cached.value(), 0) << k;
  }
  EXPECT_EQ(ReadMemStats().stacks_cached, 0u);
}

// A stack freed twice, with other frees between (which the default build's
// fast path cannot see), is caught when ScavengeStacks() empties the cache,
// not handed out twice.
TEST(ScavengeDeathTest, ADoubleFreeInTheCallersCacheIsCaught) {
  EXPECT_DEATH(
      {
        void* a = stackalloc(kFixedStack);
        void* b = stackalloc(kFixedStack);
        stackfree(a, kFixedStack);
        stackfree(b, kFixedStack);
        stackfree(a, kFixedStack);  // Caught here in checked builds.
        ScavengeStacks();
      },
      "fatal error: stackfree: 4096-byte stack 0x[0-9a-f]+ freed twice");
}

}  // namespace
}  // namespace stackalloc
