// Every size boundary, literally (README "Sizes"), with exact statistics
// deltas for each call; on g0, after set_curg back to g0, and on a thread
// whose first call it is.

#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "sched/m.h"
#include "stack/test_peer.h"
#include "stackalloc.h"
#include "stats/mstats.h"

namespace stackalloc {
namespace {

using internal::StackallocTestPeer;

size_t Expected(size_t n) {
  if (n <= kMaxOrderStack) return OrderStackSize(StackOrder(n));
  return (n + 4095) & ~size_t{4095};
}

std::vector<size_t> Sizes() {
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

void CheckOne(size_t n) {
  const MemStats before = ReadMemStats();
  void* v = stackalloc(n);
  ASSERT_NE(v, nullptr) << n;
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v) % 4096, 0u) << n;
  const ChunkRecord* rec = StackallocTestPeer::ChunkOf(v);
  ASSERT_NE(rec, nullptr) << n;
  EXPECT_EQ(rec->stack_size, Expected(n)) << n;
  // The whole stack is writable; the page below is a guard (not tested
  // here: overflow tests do).
  static_cast<volatile char*>(v)[0] = 1;
  static_cast<volatile char*>(v)[Expected(n) - 1] = 1;
  const MemStats mid = ReadMemStats();
  EXPECT_EQ(mid.stacks_inuse - before.stacks_inuse, Expected(n)) << n;
  if (n > kMaxOrderStack) {
    EXPECT_EQ(mid.large_stacks_inuse - before.large_stacks_inuse, Expected(n))
        << n;
    EXPECT_EQ(mid.stacks_sys - before.stacks_sys, Expected(n)) << n;
  }
  stackfree(v, n);
  const MemStats after = ReadMemStats();
  EXPECT_EQ(after.stacks_inuse, before.stacks_inuse) << n;
  EXPECT_EQ(after.large_stacks_inuse, before.large_stacks_inuse) << n;
  // "any n of the same order will do"
  if (n <= kMaxOrderStack) {
    void* w = stackalloc(n);
    stackfree(w, Expected(n));
    void* x = stackalloc(Expected(n));
    stackfree(x, Expected(n) / 2 + 1 > 4096 ? Expected(n) / 2 + 1 : 1);
  }
}

TEST(SizesTest, EveryBoundaryOnG0) {
  for (size_t n : Sizes()) CheckOne(n);
}

TEST(SizesTest, EveryBoundaryAfterAGRoundTrip) {
  G g;
  getm()->set_curg(&g);
  getm()->set_curg(getm()->g0());
  for (size_t n : Sizes()) CheckOne(n);
}

TEST(SizesTest, EveryBoundaryOnFreshThreads) {
  for (size_t n : Sizes()) std::thread([n] { CheckOne(n); }).join();
}

TEST(SizesTest, UnmappableSizesAreRefusedWithNoStatisticChanged) {
  for (size_t n : {(size_t{1} << 40) + 1, SIZE_MAX, SIZE_MAX - 4095,
                   SIZE_MAX / 2, size_t{1} << 47, size_t{1} << 40}) {
    const MemStats before = ReadMemStats();
    void* v = stackalloc(n);
    const MemStats after = ReadMemStats();
    if (v != nullptr) {
      fprintf(stderr, "size %zu: got %p\n", n, v);
      stackfree(v, n);
      continue;
    }
    EXPECT_EQ(after.stacks_inuse, before.stacks_inuse) << n;
    EXPECT_EQ(after.stacks_sys, before.stacks_sys) << n;
    EXPECT_EQ(after.stacks_guard, before.stacks_guard) << n;
  }
}

TEST(SizesTest, FixedStackWhileMallocingAndGcing) {
  M* m = getm();
  m->set_mallocing(1);
  std::vector<void*> v;
  for (int i = 0; i < 100; ++i) v.push_back(stackalloc(kFixedStack));
  for (void* p : v) stackfree(p, kFixedStack);
  m->set_mallocing(0);
  m->set_gcing(1);
  v.clear();
  for (int i = 0; i < 100; ++i) v.push_back(stackalloc(kFixedStack));
  for (void* p : v) stackfree(p, kFixedStack);
  m->set_gcing(0);
}

}  // namespace
}  // namespace stackalloc
