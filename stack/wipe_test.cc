// Wiping stacks between users (SetStackWipe): a stack handed out reads as
// zero wherever its previous user wrote, for every order and above 1 MiB,
// on the thread that freed it and on another; the pages no one touched stay
// untouched; with wiping off the bytes stay (the tests can fail); the
// caches are bypassed only while wiping is on, and threads already running
// follow at their next G switch; the statistics stay exact.

#include "stack/wipe.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "alloc/sys_alloc.h"
#include "gtest/gtest.h"
#include "sched/m.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace {

using testing_util::ReturnPages;
using testing_util::RunThreads;

constexpr unsigned char kPattern = 0xa5;

size_t Pages(size_t size) { return size / kPageSize; }

// The pages a user writes (from the bottom of the stack, 0-based): the top
// page, every one if few, else a sparse set that leaves gaps (the wipe must
// find each run of them).
std::vector<size_t> UserPages(size_t size) {
  const size_t pages = Pages(size);
  if (pages <= 4) {
    std::vector<size_t> all;
    for (size_t i = 0; i < pages; ++i) all.push_back(i);
    return all;
  }
  return {0, 1, pages / 2, pages - 2, pages - 1};
}

void Write(void* v, size_t size, unsigned char value = kPattern) {
  for (size_t i : UserPages(size)) {
    memset(static_cast<char*>(v) + i * kPageSize, value, kPageSize);
  }
}

// The bytes of [v, v + size) that are not zero.
size_t NonZero(const void* v, size_t size) {
  const auto* p = static_cast<const unsigned char*>(v);
  size_t n = 0;
  for (size_t i = 0; i < size; ++i) n += p[i] != 0;
  return n;
}

std::set<size_t> ResidentPages(void* v, size_t size) {
  std::vector<unsigned char> vec(Pages(size));
  EXPECT_TRUE(SysResidency(v, size, vec.data()));
  std::set<size_t> pages;
  for (size_t i = 0; i < vec.size(); ++i) {
    if (vec[i] != 0) pages.insert(i);
  }
  return pages;
}

class WipeTest : public ::testing::Test {
 protected:
  void TearDown() override { SetStackWipe(false); }
};

// Every order: a user writes into some pages of its stack (from a clean
// start: its pages returned) and frees it; the same stack, handed out
// again on this M, reads as zero, and only the pages the user touched are
// resident. The same with wiping off leaves the user's bytes.
TEST_F(WipeTest, EveryOrderReadsZeroAfterAPreviousUserWrote) {
  for (bool wipe : {true, false}) {
    EXPECT_EQ(SetStackWipe(wipe), !wipe);
    EXPECT_EQ(StackWipe(), wipe);
    for (int k = 0; k < kNumStackOrders; ++k) {
      const size_t size = OrderStackSize(k);
      SCOPED_TRACE(std::to_string(size) + (wipe ? " wiped" : " not wiped"));
      void* v = stackalloc(size);
      ASSERT_NE(v, nullptr);
      ReturnPages(v, size);
      Write(v, size);
      stackfree(v, size);
      void* again = stackalloc(size);
      ASSERT_EQ(again, v)
          << "not the stack just freed: the test proves nothing";
      const std::vector<size_t> user = UserPages(size);
      if (wipe) {
        // Residency first: reading a page maps one (the zero page).
        EXPECT_EQ(ResidentPages(again, size),
                  std::set<size_t>(user.begin(), user.end()));
        EXPECT_EQ(NonZero(again, size), 0u);
      } else {
        EXPECT_EQ(NonZero(again, size), user.size() * kPageSize);
      }
      stackfree(again, size);
    }
  }
}

// A stack of several users: each later one finds nothing of the earlier
// ones, however deep they went.
TEST_F(WipeTest, SeveralUsersOfOneStack) {
  SetStackWipe(true);
  constexpr size_t kSize = 64 << 10;
  void* v = stackalloc(kSize);
  for (size_t depth : {16, 1, 8, 3}) {
    SCOPED_TRACE(depth);
    auto* top = static_cast<char*>(v) + kSize - depth * kPageSize;
    memset(top, static_cast<int>(depth), depth * kPageSize);
    stackfree(v, kSize);
    void* again = stackalloc(kSize);
    ASSERT_EQ(again, v);
    EXPECT_EQ(NonZero(again, kSize), 0u);
  }
  stackfree(v, kSize);
}

// Above 1 MiB every stack is a fresh mapping: zero, wiping or not.
TEST_F(WipeTest, LargeStacksReadZero) {
  constexpr size_t kSize = 2 * kMaxOrderStack + kPageSize;
  for (bool wipe : {true, false}) {
    SetStackWipe(wipe);
    for (int i = 0; i < 4; ++i) {
      void* v = stackalloc(kSize);
      ASSERT_NE(v, nullptr);
      EXPECT_EQ(NonZero(v, kSize), 0u) << i;
      memset(v, kPattern, kSize);
      stackfree(v, kSize);
    }
  }
}

// Stacks written and freed on other threads, then handed out here (through
// the pools): every one reads as zero.
TEST_F(WipeTest, StacksFreedOnOtherThreads) {
  SetStackWipe(true);
  for (int k : {0, 2, 5}) {
    const size_t size = OrderStackSize(k);
    SCOPED_TRACE(size);
    // Enough that most of them pass through the pool to this thread.
    const int per_thread = 4 * kStackCacheMax;
    std::vector<std::vector<void*>> freed(4);
    RunThreads(4, [&](int t) {
      for (int i = 0; i < per_thread; ++i) {
        void* v = stackalloc(size);
        ASSERT_NE(v, nullptr);
        Write(v, size);
        freed[t].push_back(v);
      }
      for (void* v : freed[t]) stackfree(v, size);
    });
    std::set<void*> theirs;
    for (const auto& f : freed) theirs.insert(f.begin(), f.end());
    std::vector<void*> mine;
    int reused = 0;
    for (int i = 0; i < 4 * per_thread; ++i) {
      void* v = stackalloc(size);
      ASSERT_NE(v, nullptr);
      reused += theirs.count(v);
      EXPECT_EQ(NonZero(v, size), 0u) << v;
      mine.push_back(v);
    }
    EXPECT_GE(reused, per_thread / 2) << "too few of their stacks came here";
    for (void* v : mine) stackfree(v, size);
  }
}

// The fast paths are bypassed while wiping is on, and only then; a thread
// already bound to an M follows at its next G switch.
TEST_F(WipeTest, CachesBypassedOnlyWhileWiping) {
  M* m = getm();
  EXPECT_EQ(internal::tls_stackcache, &m->mcache.stackcache);
  std::atomic<int> step{0};
  std::thread other([&] {
    M* om = getm();
    void* v = stackalloc(kFixedStack);  // Its cache warm.
    stackfree(v, kFixedStack);
    EXPECT_EQ(internal::tls_stackcache, &om->mcache.stackcache);
    step = 1;
    while (step != 2) std::this_thread::yield();
    G g;  // What a runtime's switch to a G and back does.
    om->set_curg(&g);
    om->set_curg(om->g0());
    EXPECT_EQ(internal::tls_stackcache, ClosedStackCaches());
    v = stackalloc(kFixedStack);
    Write(v, kFixedStack);
    stackfree(v, kFixedStack);
    void* again = stackalloc(kFixedStack);
    EXPECT_EQ(again, v);
    EXPECT_EQ(NonZero(again, kFixedStack), 0u);
    stackfree(again, kFixedStack);
  });
  while (step != 1) std::this_thread::yield();
  SetStackWipe(true);
  EXPECT_EQ(internal::tls_stackcache, ClosedStackCaches());
  step = 2;
  other.join();
  SetStackWipe(false);
  EXPECT_EQ(internal::tls_stackcache, &m->mcache.stackcache);
}

// A thread already running takes wiping up at its next slow path, and keeps
// it after that call. Regression: the slow path's gate put back the caches
// the thread saw before the call, open, and stacks freed into them before
// wiping was turned on came out with their old bytes.
TEST_F(WipeTest, TheSlowPathAdoptsWipingForAThreadAlreadyRunning) {
  std::atomic<int> step{0};
  std::thread other([&] {
    void* v = stackalloc(kFixedStack);
    Write(v, kFixedStack);
    stackfree(v, kFixedStack);  // In the cache, with its bytes.
    step = 1;
    while (step != 2) std::this_thread::yield();
    void* w = stackalloc(2 * kFixedStack);  // An empty cache: the slow path.
    EXPECT_EQ(internal::tls_stackcache, ClosedStackCaches());
    stackfree(w, 2 * kFixedStack);
    void* again = stackalloc(kFixedStack);
    EXPECT_EQ(NonZero(again, kFixedStack), 0u);
    stackfree(again, kFixedStack);
  });
  while (step != 1) std::this_thread::yield();
  SetStackWipe(true);
  step = 2;
  other.join();
}

// Every call on the slow path keeps the statistics exact: stacks of every
// order held, then freed, with wiping on.
TEST_F(WipeTest, StatisticsStayExact) {
  SetStackWipe(true);
  const MemStats before = ReadMemStats();
  std::vector<std::pair<void*, size_t>> held;
  for (int k = 0; k < kNumStackOrders; ++k) {
    for (int i = 0; i < 3 * kStackCacheMax; ++i) {
      held.emplace_back(stackalloc(OrderStackSize(k)), OrderStackSize(k));
    }
  }
  const MemStats during = ReadMemStats();
  uint64_t bytes = 0;
  for (const auto& [v, size] : held) bytes += size;
  EXPECT_EQ(during.stacks_inuse - before.stacks_inuse, bytes);
  for (const auto& [v, size] : held) stackfree(v, size);
  EXPECT_EQ(testing_util::StackStatsDiff(before, ReadMemStats()).find("inuse"),
            std::string::npos);
  EXPECT_EQ(ReadMemStats().stacks_inuse, before.stacks_inuse);
}

// WipeStack alone: only resident pages are written, and each is zero after.
TEST(WipeStackTest, ZeroesResidentPagesOnly) {
  constexpr size_t kSize = 256 << 10;
  void* v = SysAlloc(kSize);
  ASSERT_NE(v, nullptr);
  Write(v, kSize);
  internal::WipeStack(v, kSize);
  // Residency first: reading a page maps one (the zero page).
  const std::vector<size_t> user = UserPages(kSize);
  EXPECT_EQ(ResidentPages(v, kSize),
            std::set<size_t>(user.begin(), user.end()));
  EXPECT_EQ(NonZero(v, kSize), 0u);
  ASSERT_TRUE(SysFree(v, kSize));
}

}  // namespace
}  // namespace stackalloc
