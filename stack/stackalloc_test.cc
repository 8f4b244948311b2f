#include "stackalloc.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/config.h"
#include "alloc/chunk.h"
#include "alloc/sys_alloc.h"
#include "gtest/gtest.h"
#include "sched/m.h"
#include "stack/test_peer.h"
#include "stats/mstats.h"
#include "testing/test_helpers.h"

// Built twice (BUILD): with guard pages (the default) and without.
#ifndef STACKALLOC_TEST_GUARDS
#define STACKALLOC_TEST_GUARDS 1
#endif

namespace stackalloc {
namespace {

using internal::StackallocTestPeer;
using testing_util::MarkedStack;
using testing_util::StackStatsDiff;

constexpr bool kGuards = STACKALLOC_TEST_GUARDS;

class GuardsEnvironment : public testing::Environment {
 public:
  void SetUp() override { SetStackGuards(kGuards); }
};
[[maybe_unused]] testing::Environment* const guards_environment =
    testing::AddGlobalTestEnvironment(new GuardsEnvironment);

// Counts chunks and can refuse them, like an OS out of address space.
std::atomic<int64_t> chunks{0};
std::atomic<bool> refuse{false};
void* CountingChunkSource(size_t n) {
  if (refuse.load()) return nullptr;
  void* v = SysAllocAligned(n, kChunkGranule);
  if (v != nullptr) chunks.fetch_add(1);
  return v;
}

size_t Size(int order) { return OrderStackSize(order); }
// Stack bytes of one chunk of `order` (what stacks_sys counts of it).
int64_t ChunkStackBytes(int order) {
  return StackallocTestPeer::ChunkStacks(order) *
         static_cast<int64_t>(Size(order));
}
// Enough stacks of `order` to span three chunks and a bit.
int Several(int order) {
  return 3 * StackallocTestPeer::ChunkStacks(order) + 5;
}

class StackallocTest : public testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    refuse = false;
    StackallocTestPeer::SetChunkSource(&CountingChunkSource);
    before_ = ReadMemStats();
    chunks_before_ = chunks.load();
  }
  void TearDown() override { StackallocTestPeer::SetChunkSource(nullptr); }

  int order() const { return GetParam(); }

  int64_t InuseDelta() const {
    return static_cast<int64_t>(ReadMemStats().stacks_inuse) -
           static_cast<int64_t>(before_.stacks_inuse);
  }
  // Change in stack memory mapped: in use by stacks (stacks_sys) or released
  // to the OS but still mapped for reuse (stacks_released).
  int64_t MappedDelta() const {
    MemStats st = ReadMemStats();
    return static_cast<int64_t>(st.stacks_sys + st.stacks_released) -
           static_cast<int64_t>(before_.stacks_sys + before_.stacks_released);
  }
  int64_t NewChunks() const { return chunks.load() - chunks_before_; }

  MemStats before_;
  int64_t chunks_before_ = 0;
};

TEST_P(StackallocTest, StacksAreDistinctAlignedAndKeepTheirContents) {
  std::vector<MarkedStack> held;
  const int n = Several(order());
  for (int i = 0; i < n; ++i) {  // Several chunks, several refills.
    auto* p = static_cast<unsigned char*>(stackalloc(Size(order())));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kStackMin, 0u);
    held.push_back({p, Size(order()), static_cast<unsigned char>(i * 7 + 1)});
    held.back().Mark();
  }
  std::set<unsigned char*> distinct;
  for (const MarkedStack& h : held) distinct.insert(h.p);
  EXPECT_EQ(distinct.size(), held.size());
  for (const MarkedStack& h : held) {
    EXPECT_TRUE(h.Intact()) << "stack contents changed: " << h.p;
  }
  EXPECT_EQ(InuseDelta(), n * static_cast<int64_t>(Size(order())));
  EXPECT_EQ(
      ReadMemStats().orders[order()].inuse - before_.orders[order()].inuse,
      n * Size(order()));
  EXPECT_EQ(MappedDelta(), NewChunks() * ChunkStackBytes(order()));
  EXPECT_EQ(ReadMemStats().stacks_guard - before_.stacks_guard,
            kGuards ? NewChunks() * StackallocTestPeer::ChunkStacks(order()) *
                          kPageSize
                    : 0u);
  for (const MarkedStack& h : held) stackfree(h.p, h.n);
  EXPECT_EQ(InuseDelta(), 0);
}

// Each stack has its guard immediately below it (or, without guards, the
// seed's layout: neighbours touch).
TEST_P(StackallocTest, ChunkLayout) {
  std::vector<void*> v;
  for (int i = 0; i < Several(order()); ++i) {
    v.push_back(stackalloc(Size(order())));
  }
  int checked = 0;
  for (void* p : v) {
    const ChunkRecord* rec = StackallocTestPeer::ChunkOf(p);
    ASSERT_NE(rec, nullptr);
    EXPECT_EQ(rec->order, order());
    EXPECT_EQ(rec->stack_size, Size(order()));
    const int slot = rec->SlotOfStack(reinterpret_cast<uintptr_t>(p));
    ASSERT_GE(slot, 0);
    if (rec->guard == 0) continue;  // A chunk from before the switch.
    ++checked;
    EXPECT_EQ(rec->guard, kPageSize);
    EXPECT_EQ(rec->SlotOfGuard(reinterpret_cast<uintptr_t>(p) - 1), slot);
    EXPECT_NE(rec->Flags(slot) & kSlotGuarded, 0);
  }
  if (kGuards) {
    EXPECT_GT(checked, 0);
  }
  if (!kGuards && order() == 0) {
    EXPECT_EQ(StackallocTestPeer::ChunkStacks(0), 32);  // The seed's layout.
    EXPECT_EQ(StackallocTestPeer::ChunkBytes(0), size_t{128} << 10);
  }
  for (void* p : v) stackfree(p, Size(order()));
}

TEST_P(StackallocTest, FreedStackIsReusedLifo) {
  void* a = stackalloc(Size(order()));
  void* b = stackalloc(Size(order()));
  stackfree(a, Size(order()));
  stackfree(b, Size(order()));
  EXPECT_EQ(stackalloc(Size(order())), b);
  EXPECT_EQ(stackalloc(Size(order())), a);
  stackfree(a, Size(order()));
  stackfree(b, Size(order()));
}

// A size between orders is served by the next order up, and freed with the
// same size.
TEST_P(StackallocTest, SizesBetweenOrdersRoundUp) {
  const size_t n = order() == 0 ? 1 : Size(order() - 1) + 1;
  auto* p = static_cast<unsigned char*>(stackalloc(n));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(StackallocTestPeer::ChunkOf(p)->order, order());
  EXPECT_EQ(InuseDelta(), static_cast<int64_t>(Size(order())));
  memset(p + Size(order()) - 4096, 0x11, 4096);  // All of it is ours.
  stackfree(p, n);
  EXPECT_EQ(InuseDelta(), 0);
  EXPECT_EQ(stackalloc(Size(order())), p);  // Back in the same cache.
  stackfree(p, Size(order()));
}

TEST_P(StackallocTest, CacheOverflowAndUnderflowKeepCountersExact) {
  M* m = getm();
  const StackCache& c = m->mcache.stackcache.c[order()];
  const int64_t cached0 = c.stats.cached.value();
  const int limit = DefaultStackCacheLimit(order());
  std::vector<void*> v;
  for (int i = 0; i < 5 * limit + 3; ++i) {
    v.push_back(stackalloc(Size(order())));
    ASSERT_NE(v.back(), nullptr);
  }
  for (void* p : v) stackfree(p, Size(order()));
  EXPECT_LE(c.stats.cached.value(), limit);
  EXPECT_EQ(InuseDelta(), 0);
  // Other Ms' caches did not change: the global figure moved with ours.
  MemStats st = ReadMemStats();
  EXPECT_EQ(
      st.stacks_cached - before_.stacks_cached,
      static_cast<uint64_t>(c.stats.cached.value() - cached0) * Size(order()));
  EXPECT_EQ(MappedDelta(), NewChunks() * ChunkStackBytes(order()));
  // Everything comes back from the cache and the global pool: no new chunk.
  int64_t n = NewChunks();
  for (void*& p : v) p = stackalloc(Size(order()));
  EXPECT_EQ(NewChunks(), n);
  EXPECT_EQ(std::set<void*>(v.begin(), v.end()).size(), v.size());
  for (void* p : v) stackfree(p, Size(order()));
}

TEST_P(StackallocTest, RefusedChunkReturnsNullAndLeavesCountersExact) {
  std::thread([&] {
    // With the OS refusing chunks, take every free stack there is (this M's
    // cache, the global pool, its FixAlloc's current chunk) until stackalloc
    // has to ask for a chunk.
    refuse = true;
    std::vector<void*> drained;
    while (void* p = stackalloc(Size(order()))) drained.push_back(p);
    MemStats st0 = ReadMemStats();
    EXPECT_EQ(st0.stacks_inuse - before_.stacks_inuse,
              drained.size() * Size(order()));
    EXPECT_EQ(stackalloc(Size(order())), nullptr);
    MemStats st1 = ReadMemStats();
    EXPECT_EQ(st1.stacks_inuse, st0.stacks_inuse);
    EXPECT_EQ(st1.stacks_sys, st0.stacks_sys);
    EXPECT_EQ(st1.stacks_cached, st0.stacks_cached);
    EXPECT_EQ(st1.stacks_pooled, st0.stacks_pooled);
    EXPECT_EQ(st1.stacks_meta_sys, st0.stacks_meta_sys);
    EXPECT_EQ(NewChunks(), 0);
    // The OS relents: exactly one new chunk, and it works.
    refuse = false;
    auto* p = static_cast<unsigned char*>(stackalloc(Size(order())));
    ASSERT_NE(p, nullptr);
    memset(p, 0x3c, Size(order()));
    EXPECT_EQ(NewChunks(), 1);
    EXPECT_EQ(static_cast<int64_t>(ReadMemStats().stacks_sys - st1.stacks_sys),
              ChunkStackBytes(order()));
    EXPECT_EQ(InuseDelta(),
              static_cast<int64_t>((drained.size() + 1) * Size(order())));
    stackfree(p, Size(order()));
    for (void* d : drained) stackfree(d, Size(order()));
    EXPECT_EQ(InuseDelta(), 0);
  }).join();
}

TEST_P(StackallocTest, CacheLimitIsTunableAndEnforced) {
  const size_t s = Size(order());
  EXPECT_FALSE(SetStackCacheLimit(0, s));
  EXPECT_FALSE(SetStackCacheLimit(7, s));
  EXPECT_FALSE(SetStackCacheLimit(kStackCacheMax + 2, s));
  EXPECT_FALSE(SetStackCacheLimit(8, kMaxOrderStack + 1));
  ASSERT_TRUE(SetStackCacheLimit(4, s));
  const StackCache& c = getm()->mcache.stackcache.c[order()];
  std::vector<void*> v;
  for (int i = 0; i < 40; ++i) v.push_back(stackalloc(s));
  for (void* p : v) {
    stackfree(p, s);
    ASSERT_LE(c.stats.cached.value(), c.limit);
  }
  EXPECT_EQ(c.limit, 4);
  ASSERT_TRUE(SetStackCacheLimit(kStackCacheMax, s));
  for (void*& p : v) p = stackalloc(s);
  for (void* p : v) stackfree(p, s);
  EXPECT_EQ(c.limit, kStackCacheMax);
  EXPECT_GT(c.stats.cached.value(), 4);
  ASSERT_TRUE(SetStackCacheLimit(DefaultStackCacheLimit(order()), s));
  EXPECT_EQ(InuseDelta(), 0);
}

INSTANTIATE_TEST_SUITE_P(EveryOrder, StackallocTest,
                         testing::Range(0, kNumStackOrders),
                         [](const testing::TestParamInfo<int>& order) {
                           return std::to_string(Size(order.param) >> 10) +
                                  "KiB";
                         });

using StackallocOrder0Test = StackallocTest;

TEST_P(StackallocOrder0Test, MsBoundBeforeTheirFirstStackUseTheChunkSource) {
  std::thread([&] {
    getm();  // Bound by the runtime before any stackalloc.
    refuse = true;
    std::vector<void*> drained;
    while (void* p = stackalloc(kFixedStack)) drained.push_back(p);
    refuse = false;
    const int64_t chunks0 = NewChunks();
    void* p = stackalloc(kFixedStack);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(NewChunks(), chunks0 + 1)
        << "chunk not from the installed source";
    EXPECT_EQ(MappedDelta(), NewChunks() * ChunkStackBytes(0));
    stackfree(p, kFixedStack);
    for (void* d : drained) stackfree(d, kFixedStack);
  }).join();
  EXPECT_EQ(InuseDelta(), 0);
}

// Above the largest order: a mapping of its own, with its guard, counted.
TEST_P(StackallocOrder0Test, LargeStacksGetAMappingOfTheirOwn) {
  constexpr size_t kBig = 3 * kMaxOrderStack + 100;
  constexpr size_t kRounded = 3 * kMaxOrderStack + kPageSize;
  auto* p = static_cast<unsigned char*>(stackalloc(kBig));
  ASSERT_NE(p, nullptr);
  memset(p, 0x77, kRounded);
  const MemStats st = ReadMemStats();
  EXPECT_EQ(st.large_stacks_inuse - before_.large_stacks_inuse, kRounded);
  EXPECT_EQ(InuseDelta(), static_cast<int64_t>(kRounded));
  EXPECT_EQ(st.stacks_sys - before_.stacks_sys, kRounded);
  EXPECT_EQ(st.stacks_guard - before_.stacks_guard, kGuards ? kPageSize : 0);
  EXPECT_EQ(NewChunks(), 0);
  const ChunkRecord* rec = StackallocTestPeer::ChunkOf(p);
  ASSERT_NE(rec, nullptr);
  EXPECT_EQ(rec->order, ChunkRecord::kLargeOrder);
  EXPECT_EQ(rec->stack_size, kRounded);
  if (kGuards) {
    EXPECT_EQ(rec->SlotOfGuard(reinterpret_cast<uintptr_t>(p) - 1), 0);
  }
  stackfree(p, kBig);
  EXPECT_EQ(StackallocTestPeer::ChunkOf(p), nullptr);  // Unmapped.
  EXPECT_EQ(ReadMemStats().large_stacks_inuse, before_.large_stacks_inuse);
  EXPECT_EQ(InuseDelta(), 0);
  EXPECT_EQ(ReadMemStats().stacks_guard, before_.stacks_guard);
  EXPECT_EQ(stackalloc(SIZE_MAX / 2), nullptr);  // Refused, not served short.
  EXPECT_EQ(InuseDelta(), 0);
}

TEST_P(StackallocOrder0Test, InMallocFixedStackUsesTheMPool) {
  M* m = getm();
  m->set_mallocing(1);
  void* p = stackalloc(kFixedStack);
  EXPECT_NE(p, nullptr);
  EXPECT_EQ(InuseDelta(), static_cast<int64_t>(kFixedStack));
  stackfree(p, kFixedStack);
  m->set_mallocing(0);
  EXPECT_EQ(InuseDelta(), 0);
}

INSTANTIATE_TEST_SUITE_P(FixedStack, StackallocOrder0Test, testing::Values(0));

// Every size boundary, literally (README "Sizes"), with exact statistics
// deltas for each call: on g0, after set_curg back to g0, and on a thread
// whose first call it is.
std::vector<size_t> BoundarySizes() {
  std::vector<size_t> s = {1, 2, 100, 4095, 4096, 4097, 5000};
  for (int k = 1; k < kNumStackOrders; ++k) {
    const size_t b = OrderStackSize(k);
    s.push_back(b - 1);
    s.push_back(b);
    s.push_back(b + 1);
  }
  for (size_t n :
       {kMaxOrderStack + 4095, kMaxOrderStack + 4096, kMaxOrderStack + 4097,
        size_t{2} << 20, (size_t{3} << 20) + 1, size_t{64} << 20}) {
    s.push_back(n);
  }
  return s;
}

void CheckSize(size_t n) {
  const MemStats before = ReadMemStats();
  void* v = stackalloc(n);
  ASSERT_NE(v, nullptr) << n;
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v) % 4096, 0u) << n;
  const ChunkRecord* rec = StackallocTestPeer::ChunkOf(v);
  ASSERT_NE(rec, nullptr) << n;
  EXPECT_EQ(rec->stack_size, StackBytes(n)) << n;
  // The whole stack is writable; the page below is a guard (not tested
  // here: overflow tests do).
  static_cast<volatile char*>(v)[0] = 1;
  static_cast<volatile char*>(v)[StackBytes(n) - 1] = 1;
  const MemStats mid = ReadMemStats();
  EXPECT_EQ(mid.stacks_inuse - before.stacks_inuse, StackBytes(n)) << n;
  if (n > kMaxOrderStack) {
    EXPECT_EQ(mid.large_stacks_inuse - before.large_stacks_inuse, StackBytes(n))
        << n;
    EXPECT_EQ(mid.stacks_sys - before.stacks_sys, StackBytes(n)) << n;
  }
  stackfree(v, n);
  const MemStats after = ReadMemStats();
  EXPECT_EQ(after.stacks_inuse, before.stacks_inuse) << n;
  EXPECT_EQ(after.large_stacks_inuse, before.large_stacks_inuse) << n;
  // "any n of the same order will do"
  if (n <= kMaxOrderStack) {
    void* w = stackalloc(n);
    stackfree(w, StackBytes(n));
    void* x = stackalloc(StackBytes(n));
    stackfree(x, StackBytes(n) / 2 + 1 > 4096 ? StackBytes(n) / 2 + 1 : 1);
    EXPECT_EQ(ReadMemStats().stacks_inuse, before.stacks_inuse) << n;
  }
}

TEST(SizesTest, EveryBoundaryOnG0) {
  for (size_t n : BoundarySizes()) CheckSize(n);
}

TEST(SizesTest, EveryBoundaryAfterAGRoundTrip) {
  G g;
  getm()->set_curg(&g);
  getm()->set_curg(getm()->g0());
  for (size_t n : BoundarySizes()) CheckSize(n);
}

TEST(SizesTest, EveryBoundaryOnFreshThreads) {
  for (size_t n : BoundarySizes()) std::thread([n] { CheckSize(n); }).join();
}

// Above the largest request, nullptr and no statistic changed; the largest
// itself is served, or refused by the OS (a mapping of 1 TiB) the same way.
TEST(SizesTest, UnmappableSizesAreRefusedWithNoStatisticChanged) {
  for (size_t n : {kMaxStackRequest + 1, SIZE_MAX, SIZE_MAX - 4095,
                   SIZE_MAX / 2, size_t{1} << 47, kMaxStackRequest}) {
    const MemStats before = ReadMemStats();
    void* v = stackalloc(n);
    const MemStats after = ReadMemStats();
    if (n > kMaxStackRequest) {
      EXPECT_EQ(v, nullptr) << n;
    } else if (v != nullptr) {
      EXPECT_EQ(after.stacks_inuse - before.stacks_inuse, StackBytes(n));
      stackfree(v, n);
      continue;
    }
    EXPECT_EQ(StackStatsDiff(before, after), "") << n;
  }
}

// In malloc or GC (the seed's flags), kFixedStack is served, every time.
TEST(SizesTest, FixedStackWhileMallocingAndGcing) {
  M* m = getm();
  for (bool gc : {false, true}) {
    const auto set_flag = [m, gc](int v) {
      gc ? m->set_gcing(v) : m->set_mallocing(v);
    };
    const uint64_t inuse = ReadMemStats().stacks_inuse;
    set_flag(1);
    std::set<void*> v;
    for (int i = 0; i < 100; ++i) {
      void* p = stackalloc(kFixedStack);
      ASSERT_NE(p, nullptr) << i;
      EXPECT_TRUE(v.insert(p).second) << "handed out twice: " << p;
    }
    EXPECT_EQ(ReadMemStats().stacks_inuse - inuse, 100 * kFixedStack);
    for (void* p : v) stackfree(p, kFixedStack);
    set_flag(0);
    EXPECT_EQ(ReadMemStats().stacks_inuse, inuse)
        << (gc ? "gcing" : "mallocing");
  }
}

}  // namespace
}  // namespace stackalloc
