// The census (ReadStackUsage) and its advice (FormatStackUsage): exact
// depths of stacks touched to known depths in every order, sparse and
// dense; handed_out and stacks against the statistics; stacks whose pages
// ScavengeStacks() returned counted from 0; stacks above 1 MiB; guard pages
// never counted, whatever made them; a refused mincore() leaves every count
// right; system calls per chunk run, not per stack; the census while other
// threads allocate, in a signal handler and in a forked child; the table.
//
// The census covers the whole process, and each test leaves stacks behind
// in caches and pools, so a test compares two censuses around what it did.

#include "stack/usage.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/attributes.h"
#include "alloc/guard.h"
#include "base/sanitizers.h"
#include "gtest/gtest.h"
#include "sched/mcache.h"
#include "stack/test_peer.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace {

using internal::StackallocTestPeer;
using testing_util::ReturnPages;
using testing_util::RunInChild;
using testing_util::RunThreads;
using testing_util::TouchTopPages;

size_t Pages(int order) { return OrderStackSize(order) / kPageSize; }

// b - a, per depth, of one order.
std::vector<int64_t> DepthDelta(const StackOrderUsage& a,
                                const StackOrderUsage& b, size_t pages) {
  std::vector<int64_t> d(pages + 1);
  for (size_t i = 0; i <= pages; ++i) {
    d[i] = static_cast<int64_t>(b.depth[i]) - static_cast<int64_t>(a.depth[i]);
  }
  return d;
}

// Each order's counts hold together: every stack is in one depth or unread,
// near_overflow is the deepest depth, none is handed out that does not
// exist, and no depth past the order's pages is used.
void ExpectConsistent(const StackUsage& u) {
  for (int k = 0; k < kNumStackOrders; ++k) {
    const StackOrderUsage& o = u.orders[k];
    SCOPED_TRACE("order " + std::to_string(k));
    EXPECT_EQ(o.stack_size, OrderStackSize(k));
    uint64_t sum = o.unread;
    for (size_t i = 0; i <= Pages(k); ++i) sum += o.depth[i];
    EXPECT_EQ(sum, o.stacks);
    EXPECT_EQ(o.near_overflow, o.depth[Pages(k)]);
    EXPECT_LE(o.handed_out, o.stacks);
    for (size_t i = Pages(k) + 1; i <= kMaxStackPages; ++i) {
      EXPECT_EQ(o.depth[i], 0u) << i;
    }
  }
  EXPECT_EQ(u.large.handed_out, u.large.stacks);
  EXPECT_LE(u.large.near_overflow + u.large.unread, u.large.stacks);
}

class CensusTest : public testing::TestWithParam<int> {};

// Stacks touched to every depth of their order, densely (every page from
// the top down) and sparsely (only the deepest page): each is counted at
// exactly its depth, and near_overflow is those that reached the bottom.
// Handed out, then free: a free stack keeps its depth.
TEST_P(CensusTest, EveryStackIsCountedAtTheDepthItsUserReached) {
  const int order = GetParam();
  const size_t size = OrderStackSize(order);
  const size_t pages = Pages(order);
  const int n = static_cast<int>(2 * pages + 2);  // Each depth twice.
  std::vector<void*> stacks;
  for (int i = 0; i < n; ++i) {
    stacks.push_back(stackalloc(size));
    ASSERT_NE(stacks.back(), nullptr);
    ReturnPages(stacks.back(), size);
  }
  const StackUsage before = ReadStackUsage();
  std::vector<int64_t> want(pages + 1);
  for (int i = 0; i < n; ++i) {
    const size_t d = static_cast<size_t>(i) % (pages + 1);
    if (i % 2 == 0 || d == 0) {
      TouchTopPages(stacks[i], size, d);
    } else {  // Only the deepest page: a frame that skipped the ones above.
      static_cast<volatile char*>(stacks[i])[size - d * kPageSize] = 1;
    }
    ++want[d];
  }
  want[0] -= n;
  const StackUsage after = ReadStackUsage();
  ExpectConsistent(after);
  const StackOrderUsage& a = before.orders[order];
  const StackOrderUsage& b = after.orders[order];
  EXPECT_EQ(DepthDelta(a, b, pages), want);
  EXPECT_EQ(b.near_overflow - a.near_overflow,
            static_cast<uint64_t>(want[pages]));
  EXPECT_EQ(b.stacks, a.stacks);
  EXPECT_EQ(b.handed_out, a.handed_out);
  EXPECT_EQ(b.unread, 0u);

  for (void* p : stacks) stackfree(p, size);
  const StackUsage freed = ReadStackUsage();
  ExpectConsistent(freed);
  const StackOrderUsage& f = freed.orders[order];
  EXPECT_EQ(b.handed_out - f.handed_out, static_cast<uint64_t>(n));
  // Freed stacks exist still, at their depths (some may have left the
  // cache for the pool: nothing about them changes).
  EXPECT_EQ(f.stacks, b.stacks);
  EXPECT_EQ(DepthDelta(b, f, pages), std::vector<int64_t>(pages + 1));
}

INSTANTIATE_TEST_SUITE_P(EveryOrder, CensusTest,
                         testing::Range(0, kNumStackOrders));

// stacks and handed_out are the statistics' figures, in stacks: handed out
// is inuse; stacks are every carved slot, free ones in caches and pools
// (those whose pages went back one at a time among them).
TEST(CensusTest, CountsAgreeWithTheStatistics) {
  std::vector<std::pair<void*, size_t>> held;
  for (int k = 0; k < kNumStackOrders; ++k) {
    for (int i = 0; i < 3 + k; ++i) {
      held.emplace_back(stackalloc(OrderStackSize(k)), OrderStackSize(k));
    }
  }
  for (int pass = 0; pass < 2; ++pass) {
    const StackUsage u = ReadStackUsage();
    const MemStats st = ReadMemStats();
    ExpectConsistent(u);
    for (int k = 0; k < kNumStackOrders; ++k) {
      SCOPED_TRACE("order " + std::to_string(k));
      const StackOrderStats& s = st.orders[k];
      const uint64_t size = OrderStackSize(k);
      EXPECT_EQ(u.orders[k].handed_out, s.inuse / size);
      EXPECT_EQ(u.orders[k].stacks,
                (s.inuse + s.cached + s.pooled) / size +
                    StackallocTestPeer::PoolReleasedStacks(k));
    }
    if (pass == 1) break;
    // Then with the half of them freed.
    for (size_t i = 0; i < held.size(); i += 2) {
      stackfree(held[i].first, held[i].second);
      held[i].first = nullptr;
    }
  }
  for (auto& [p, size] : held) {
    if (p != nullptr) stackfree(p, size);
  }
}

// Pages that ScavengeStacks() returns count as untouched: a free 1 MiB
// stack's own (kept, at depth 0), and a whole chunk's (its stacks are no
// more). A stack handed out again after that starts from 0.
TEST(CensusTest, ReturnedPagesCountFromZeroAgain) {
  constexpr int kOrder = kNumStackOrders - 1;  // 1 MiB: stacks go one by one.
  constexpr size_t kSize = OrderStackSize(kOrder);
  // Every free 1 MiB stack is left untouched, or gone with its chunk.
  ScavengeStacks();
  const StackOrderUsage clean = ReadStackUsage().orders[kOrder];
  EXPECT_LE(clean.stacks - clean.depth[0], clean.handed_out);
  void* a = stackalloc(kSize);
  void* b = stackalloc(kSize);
  ReturnPages(a, kSize);
  ReturnPages(b, kSize);
  TouchTopPages(a, kSize, 10);
  TouchTopPages(b, kSize, 20);
  stackfree(b, kSize);
  const StackOrderUsage before = ReadStackUsage().orders[kOrder];
  EXPECT_EQ(before.depth[10] - clean.depth[10], 1u);
  EXPECT_EQ(before.depth[20] - clean.depth[20], 1u);
  ScavengeStacks();
  const StackUsage all = ReadStackUsage();
  ExpectConsistent(all);
  const StackOrderUsage& after = all.orders[kOrder];
  // b's pages went back (alone, or with its chunk); a, handed out, kept its
  // depth; every free stack left is untouched.
  EXPECT_EQ(after.depth[20], clean.depth[20]);
  EXPECT_EQ(after.depth[10] - clean.depth[10], 1u);
  EXPECT_EQ(after.handed_out, clean.handed_out + 1);
  EXPECT_LE(after.stacks - after.depth[0], after.handed_out);
  // The next user of a returned stack starts from 0.
  void* again = stackalloc(kSize);
  const StackOrderUsage handed = ReadStackUsage().orders[kOrder];
  EXPECT_EQ(handed.depth[20], clean.depth[20]);
  EXPECT_EQ(handed.depth[10], after.depth[10]);
  EXPECT_EQ(handed.handed_out, after.handed_out + 1);
  stackfree(again, kSize);
  stackfree(a, kSize);
}

// Above 1 MiB: each stack is counted while it is handed out, near overflow
// once its lowest page is touched, and no more once freed.
TEST(CensusTest, LargeStacks) {
  constexpr size_t kSize = 2 * kMaxOrderStack + kPageSize;
  const StackUsage before = ReadStackUsage();
  void* a = stackalloc(kSize);
  void* b = stackalloc(kSize);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  TouchTopPages(b, kSize, 3);
  static_cast<volatile char*>(a)[0] = 1;  // The page next to the guard.
  const StackUsage held = ReadStackUsage();
  ExpectConsistent(held);
  EXPECT_EQ(held.large.stacks, before.large.stacks + 2);
  EXPECT_EQ(held.large.handed_out, before.large.handed_out + 2);
  EXPECT_EQ(held.large.near_overflow, before.large.near_overflow + 1);
  EXPECT_EQ(held.large.unread, 0u);
  stackfree(a, kSize);
  stackfree(b, kSize);
  const StackUsage after = ReadStackUsage();
  EXPECT_EQ(after.large.stacks, before.large.stacks);
  EXPECT_EQ(after.large.near_overflow, before.large.near_overflow);
}

// The census reads only a stack's own pages, never the guard below it or
// above it, whatever made the guard: stacks of fresh chunks with the
// kernel's guard markers, with mprotect'ed guards, and with none, touched
// at their top page only, are at depth 1 and (above 4 KiB) not near
// overflow.
TEST(CensusTest, GuardPagesAreNeverCounted) {
  constexpr int kOrder = 2;  // 16 KiB: 7 slots and guards a chunk.
  constexpr size_t kSize = OrderStackSize(kOrder);
  const int per_chunk = StackallocTestPeer::ChunkStacks(kOrder);
  for (int mode = 0; mode < 3; ++mode) {
    SCOPED_TRACE("mode " + std::to_string(mode));
    internal::ForceGuardFallback(mode == 1);
    const bool was = SetStackGuards(mode != 2);
    // Enough to carve new chunks of the mode (beyond what caches and pools
    // hold).
    std::vector<void*> stacks;
    for (int i = 0; i < 6 * per_chunk + 2 * kStackCacheMax; ++i) {
      stacks.push_back(stackalloc(kSize));
      ReturnPages(stacks.back(), kSize);
    }
    const StackUsage before = ReadStackUsage();
    for (void* p : stacks) TouchTopPages(p, kSize, 1);
    const StackUsage after = ReadStackUsage();
    ExpectConsistent(after);
    std::vector<int64_t> want(Pages(kOrder) + 1);
    want[0] = -static_cast<int64_t>(stacks.size());
    want[1] = static_cast<int64_t>(stacks.size());
    EXPECT_EQ(
        DepthDelta(before.orders[kOrder], after.orders[kOrder], Pages(kOrder)),
        want);
    EXPECT_EQ(after.orders[kOrder].near_overflow,
              before.orders[kOrder].near_overflow);
    for (void* p : stacks) stackfree(p, kSize);
    SetStackGuards(was);
  }
  internal::ForceGuardFallback(false);
}

// A refused mincore() never leaves a count wrong: the stacks it was for
// are counted, as unread, in no depth.
std::atomic<int> refusals{0};
bool Refuse(const void*, size_t, unsigned char*) {
  refusals.fetch_add(1);
  return false;
}

TEST(CensusTest, ARefusedReadLeavesStacksUnreadNotMiscounted) {
  void* p = stackalloc(kFixedStack);
  void* large = stackalloc(2 * kMaxOrderStack);
  const StackUsage good = ReadStackUsage();
  StackallocTestPeer::SetResidencySource(&Refuse);
  const StackUsage u = ReadStackUsage();
  StackallocTestPeer::SetResidencySource(nullptr);
  ExpectConsistent(u);
  EXPECT_EQ(static_cast<uint64_t>(refusals.load()), u.system_calls);
  for (int k = 0; k < kNumStackOrders; ++k) {
    SCOPED_TRACE("order " + std::to_string(k));
    EXPECT_EQ(u.orders[k].stacks, good.orders[k].stacks);
    EXPECT_EQ(u.orders[k].handed_out, good.orders[k].handed_out);
    EXPECT_EQ(u.orders[k].unread, u.orders[k].stacks);
    EXPECT_EQ(u.orders[k].near_overflow, 0u);
  }
  EXPECT_GE(u.orders[0].stacks, 1u);
  EXPECT_EQ(u.large.stacks, good.large.stacks);
  EXPECT_EQ(u.large.unread, u.large.stacks);
  stackfree(large, 2 * kMaxOrderStack);
  stackfree(p, kFixedStack);
}

// One system call reads a run of neighbouring chunks: 20,000 live 4 KiB
// stacks (1,250 chunks) take a few dozen calls, not one per chunk.
TEST(CensusTest, SystemCallsGrowWithRunsOfChunksNotStacks) {
  constexpr int kStacks = 20000;
  std::vector<void*> stacks(kStacks);
  for (void*& p : stacks) p = stackalloc(kFixedStack);
  const StackUsage u = ReadStackUsage();
  EXPECT_GE(u.chunks, static_cast<uint64_t>(
                          kStacks / StackallocTestPeer::ChunkStacks(0)));
  // A window holds 16 MiB, 128 chunks of 128 KiB; a call more for each
  // arena reservation (64 MiB) a run starts in, and for each large stack.
  EXPECT_LE(u.system_calls, u.chunks / 32 + 32) << u.chunks << " chunks";
  for (void* p : stacks) stackfree(p, kFixedStack);
}

// A chunk ScavengeStacks() released whole holds no stack: the census
// neither reads nor counts it (before, every released chunk cost a place in
// a run and counted in chunks).
TEST(CensusTest, ChunksReleasedWholeAreNotRead) {
  constexpr int kOrder = 2;
  constexpr size_t kSize = OrderStackSize(kOrder);
  constexpr int kChunks = 40;
  const int per_chunk = StackallocTestPeer::ChunkStacks(kOrder);
  ScavengeStacks();  // The pool empty: what follows is carved anew.
  std::vector<void*> stacks(kChunks * per_chunk + 2 * kStackCacheMax);
  for (void*& p : stacks) p = stackalloc(kSize);
  const StackUsage held = ReadStackUsage();
  for (void* p : stacks) stackfree(p, kSize);
  ScavengeStacks();
  const StackUsage after = ReadStackUsage();
  ExpectConsistent(after);
  // Every full chunk went back but the carver's, which is partly carved.
  EXPECT_GE(held.chunks - after.chunks, static_cast<uint64_t>(kChunks - 1));
  EXPECT_LE(after.orders[kOrder].stacks + kChunks * per_chunk,
            held.orders[kOrder].stacks);
}

// Threads allocate, touch and free stacks of every order while others take
// censuses: each census holds together, and once they stop it is exact.
TEST(CensusTest, WhileOtherThreadsAllocateAndFree) {
  std::atomic<bool> stop{false};
  std::atomic<int> censuses{0};
  std::thread reader([&] {
    while (!stop.load()) {
      ExpectConsistent(ReadStackUsage());
      censuses.fetch_add(1);
    }
  });
  // The reader is taking censuses before the threads start.
  EXPECT_TRUE(testing_util::WaitUntil([&] { return censuses.load() > 0; }));
  RunThreads(4, [](int t) {
    std::vector<std::pair<void*, size_t>> held;
    for (int i = 0; i < 3000; ++i) {
      const size_t size = i % 97 == 0
                              ? 2 * kMaxOrderStack
                              : OrderStackSize((i + t) % kNumStackOrders);
      void* p = stackalloc(size);
      TouchTopPages(p, size, std::min<size_t>(1 + i % 3, size / kPageSize));
      held.emplace_back(p, size);
      if (held.size() > 8) {
        stackfree(held.front().first, held.front().second);
        held.erase(held.begin());
      }
    }
    for (auto& [p, size] : held) stackfree(p, size);
  });
  stop = true;
  reader.join();
  EXPECT_GT(censuses.load(), 0);
  const StackUsage u = ReadStackUsage();
  const MemStats st = ReadMemStats();
  ExpectConsistent(u);
  for (int k = 0; k < kNumStackOrders; ++k) {
    EXPECT_EQ(u.orders[k].handed_out, st.orders[k].inuse / OrderStackSize(k));
  }
}

// In a signal handler (on this thread's stack, interrupting nothing of
// ours), and in a forked child: the same answer.
StackUsage* handler_usage;
void TakeCensusHere(int) { *handler_usage = ReadStackUsage(); }

TEST(CensusTest, InASignalHandlerAndInAForkedChild) {
  void* p = stackalloc(8 * kPageSize);
  TouchTopPages(p, 8 * kPageSize, 5);
  static StackUsage in_handler;
  handler_usage = &in_handler;
  struct sigaction sa {
  }, old;
  sa.sa_handler = &TakeCensusHere;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR2, &sa, &old), 0);
  ASSERT_EQ(raise(SIGUSR2), 0);
  ASSERT_EQ(sigaction(SIGUSR2, &old, nullptr), 0);
  const StackUsage here = ReadStackUsage();
  for (int k = 0; k < kNumStackOrders; ++k) {
    EXPECT_EQ(
        memcmp(&here.orders[k], &in_handler.orders[k], sizeof(StackOrderUsage)),
        0)
        << k;
  }
  // The child inherits every stack and its pages.
  const int status = RunInChild([&here] {
    const StackUsage c = ReadStackUsage();
    for (int k = 0; k < kNumStackOrders; ++k) {
      if (memcmp(&here.orders[k], &c.orders[k], sizeof(StackOrderUsage)) != 0) {
        return 1;
      }
    }
    return 0;
  });
  EXPECT_EQ(status, 0) << testing_util::DescribeWaitStatus(status);
  stackfree(p, 8 * kPageSize);
}

// On a signal stack of 32 KiB (ASan's size, with a guard page below), a
// handler takes the census, or the census and its table: the stack each
// used, read from the paint it left, is what the docs say, in every build.
// Regression: TakeCensus built a second 19 KiB result on the stack in
// unoptimised builds; a census took 45 KiB and ran past such a stack.
constexpr size_t kCensusStack = 32 << 10;
constexpr unsigned char kPaint = 0xa5;
uintptr_t census_handler_frame;
bool census_table;  // Which of the two the handler runs.
char census_text[4096];
ABSL_ATTRIBUTE_NOINLINE void Census() {
  static StackUsage u;
  u = ReadStackUsage();  // The result's 19 KiB are in this frame.
}
ABSL_ATTRIBUTE_NOINLINE void CensusAndTable() {
  FormatStackUsage(census_text, sizeof census_text);
}
void CensusInHandler(int) {
  census_handler_frame =
      reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  (census_table ? CensusAndTable : Census)();
}

// The bytes of a painted 32 KiB signal stack below the handler's frame
// that a handler (census_table says which) wrote.
size_t CensusStackUse(bool table) {
  auto* mem = static_cast<unsigned char*>(
      mmap(nullptr, kCensusStack + kPageSize, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  EXPECT_NE(mem, MAP_FAILED);
  EXPECT_EQ(mprotect(mem, kPageSize, PROT_NONE), 0);  // A fault, not a write.
  unsigned char* stack = mem + kPageSize;
  memset(stack, kPaint, kCensusStack);
  stack_t ss{}, old_ss{};
  ss.ss_sp = stack;
  ss.ss_size = kCensusStack;
  EXPECT_EQ(sigaltstack(&ss, &old_ss), 0);
  struct sigaction sa {
  }, old;
  sa.sa_handler = &CensusInHandler;
  sa.sa_flags = SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  census_table = table;
  EXPECT_EQ(sigaction(SIGUSR2, &sa, &old), 0);
  EXPECT_EQ(raise(SIGUSR2), 0);
  EXPECT_EQ(sigaction(SIGUSR2, &old, nullptr), 0);
  EXPECT_EQ(sigaltstack(&old_ss, nullptr), 0);
  size_t lowest = 0;
  while (lowest < kCensusStack && stack[lowest] == kPaint) ++lowest;
  const size_t used =
      census_handler_frame - reinterpret_cast<uintptr_t>(stack + lowest);
  EXPECT_EQ(munmap(mem, kCensusStack + kPageSize), 0);
  return used;
}

TEST(CensusTest, FitsTheStackItsDocsPromiseInASignalHandler) {
  void* p = stackalloc(8 * kPageSize);
  TouchTopPages(p, 8 * kPageSize, 3);
  // README: 26 KiB, the result included; 28.5 KiB under ASan.
  const size_t budget = sanitizer::kAsan ? (57 << 10) / 2 : 26 << 10;
  const size_t census = CensusStackUse(/*table=*/false);
  const size_t table = CensusStackUse(/*table=*/true);
  printf("in a handler: census %zu bytes, census and table %zu\n", census,
         table);
  EXPECT_LE(census, budget);
  EXPECT_LE(table, budget);
  EXPECT_NE(strstr(census_text, "stack usage"), nullptr) << census_text;
  stackfree(p, 8 * kPageSize);
}

// --- The advice ---

TEST(UsageAdviceTest, PercentilesAndTheOrderThatHolds) {
  StackOrderUsage o;
  o.stack_size = 16 * kPageSize;
  EXPECT_EQ(internal::DepthPercentile(o, 500), 0u);  // None touched.
  o.depth[0] = 50;  // Untouched: not in the percentiles.
  o.depth[1] = 500;
  o.depth[2] = 489;
  o.depth[5] = 10;
  o.depth[16] = 1;
  EXPECT_EQ(internal::DepthPercentile(o, 500), 1u);
  EXPECT_EQ(internal::DepthPercentile(o, 501), 2u);
  EXPECT_EQ(internal::DepthPercentile(o, 989), 2u);
  EXPECT_EQ(internal::DepthPercentile(o, 990), 5u);
  EXPECT_EQ(internal::DepthPercentile(o, 999), 5u);
  EXPECT_EQ(internal::DepthPercentile(o, 1000), 16u);
  EXPECT_EQ(internal::OrderHolding(1), 0);
  EXPECT_EQ(internal::OrderHolding(2), 1);
  EXPECT_EQ(internal::OrderHolding(3), 2);
  EXPECT_EQ(internal::OrderHolding(256), 8);
  EXPECT_EQ(internal::OrderHolding(257), -1);
}

TEST(UsageAdviceTest, TheTable) {
  StackUsage u;
  StackOrderUsage& small = u.orders[0];
  small.stack_size = kFixedStack;
  small.stacks = 1000;
  small.handed_out = 900;
  small.depth[0] = 10;
  small.depth[1] = 990;
  small.near_overflow = 990;
  StackOrderUsage& mid = u.orders[4];  // 64 KiB.
  mid.stack_size = 64 << 10;
  mid.stacks = 2000;
  mid.handed_out = 2000;
  mid.depth[2] = 1000;
  mid.depth[3] = 980;
  mid.depth[5] = 19;
  mid.depth[9] = 1;
  mid.unread = 0;
  u.large.stacks = u.large.handed_out = 2;
  u.large.near_overflow = 1;
  char buf[2048];
  const size_t n = FormatStackUsage(u, buf, sizeof(buf));
  EXPECT_EQ(n, strlen(buf));
  EXPECT_EQ(std::string(buf),
            "stack usage: depth = pages touched below each stack's top since "
            "its memory was last returned\n"
            "   stack    stacks  handed out   touched  p50 KiB  p99 KiB  max "
            "KiB  near overflow  fits p99.9   fits max\n"
            "   4 KiB      1000         900       990        4        4        "
            "4            990      8 KiB*     8 KiB*\n"
            "  64 KiB      2000        2000      2000        8       12       "
            "36              0     32 KiB     64 KiB\n"
            " > 1 MiB         2           2                                    "
            "               1\n"
            "* the deepest of these stacks reached the page next to the guard: "
            "they may need more\n");
  // Cut short: NUL-terminated, the full length returned.
  char small_buf[40];
  EXPECT_EQ(FormatStackUsage(u, small_buf, sizeof(small_buf)), n);
  EXPECT_EQ(strlen(small_buf), sizeof(small_buf) - 1);
  EXPECT_EQ(FormatStackUsage(u, nullptr, 0), n);
}

TEST(UsageAdviceTest, OfTheLiveCensus) {
  void* p = stackalloc(32 << 10);
  TouchTopPages(p, 32 << 10, 8);  // All 8 pages: at the guard.
  char buf[4096];
  const size_t n = FormatStackUsage(buf, sizeof(buf));
  ASSERT_LT(n, sizeof(buf));
  const std::string text(buf);
  EXPECT_NE(text.find("  32 KiB"), std::string::npos) << text;
  EXPECT_NE(text.find("64 KiB*"), std::string::npos) << text;
  stackfree(p, 32 << 10);
}

}  // namespace
}  // namespace stackalloc
