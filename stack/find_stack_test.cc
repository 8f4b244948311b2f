// FindStack(p, &lo, &size) (stackalloc.h), literally: garbage (the thread's
// own stack among it: FindStack knows only our stacks), every order at every
// edge, large stacks, unguarded chunks, stacks of a chunk released whole,
// and answers while another thread frees and reuses large stacks (a freed
// large stack's record is rewritten for the next: an answer may be stale,
// never one whose bounds miss p, and TSan must see no race; FindStack once
// returned bounds that missed p, and TSan saw the race).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "stack/test_peer.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace {

using internal::StackallocTestPeer;

bool Find(const void* p, void** lo, size_t* size) {
  *lo = reinterpret_cast<void*>(0xdead);
  *size = 12345;
  return FindStack(p, lo, size);
}

TEST(FindStackTest, Garbage) {
  void* lo;
  size_t size;
  for (uintptr_t a :
       {uintptr_t{0}, uintptr_t{1}, uintptr_t{4096}, uintptr_t{0x7fffffffffff},
        uintptr_t{0x800000000000}, ~uintptr_t{0}, ~uintptr_t{0} - 4096,
        uintptr_t{0xffff800000000000}}) {
    EXPECT_FALSE(Find(reinterpret_cast<void*>(a), &lo, &size)) << a;
  }
  int local;
  EXPECT_FALSE(Find(&local, &lo, &size));
  static int global;
  EXPECT_FALSE(Find(&global, &lo, &size));
  std::vector<char> heap(1 << 20);
  EXPECT_FALSE(Find(heap.data() + 1000, &lo, &size));
}

// s's bounds from its first, second, middle and last byte; its guard page
// (the page below) is no stack.
void ExpectFoundAtEveryEdge(char* s, size_t bytes) {
  void* lo;
  size_t size;
  for (size_t off : {size_t{0}, size_t{1}, bytes / 2, bytes - 1}) {
    ASSERT_TRUE(Find(s + off, &lo, &size)) << bytes << " " << off;
    EXPECT_EQ(lo, s);
    EXPECT_EQ(size, bytes);
  }
  EXPECT_FALSE(Find(s - 1, &lo, &size)) << bytes;
  EXPECT_FALSE(Find(s - 4096, &lo, &size)) << bytes;
}

TEST(FindStackTest, EveryOrderEveryEdge) {
  const MemStats before = ReadMemStats();
  for (size_t n = 4096; n <= (size_t{1} << 20); n *= 2) {
    std::vector<char*> v;
    for (int i = 0; i < 40; ++i) v.push_back(static_cast<char*>(stackalloc(n)));
    for (char* s : v) {
      ExpectFoundAtEveryEdge(s, n);
      void* lo;
      size_t size;
      // Just past the top: the next slot's guard, or past the chunk.
      bool past = Find(s + n, &lo, &size);
      if (past) {
        EXPECT_NE(lo, s) << n;
        EXPECT_TRUE(s + n >= lo && s + n < static_cast<char*>(lo) + size);
      }
    }
    for (char* s : v) stackfree(s, n);
    // Freed (in a cache or pool): still ours, per the header.
    void* lo;
    size_t size;
    EXPECT_TRUE(Find(v[0] + 5, &lo, &size)) << n;
  }
  const MemStats after = ReadMemStats();
  EXPECT_EQ(after.stacks_inuse, before.stacks_inuse);
}

TEST(FindStackTest, LargeStacks) {
  const MemStats before = ReadMemStats();
  for (size_t n :
       {(size_t{1} << 20) + 1, size_t{3} << 20, (size_t{5} << 20) + 12345}) {
    const size_t rounded = StackBytes(n);
    char* s = static_cast<char*>(stackalloc(n));
    ASSERT_NE(s, nullptr);
    ExpectFoundAtEveryEdge(s, rounded);
    void* lo;
    size_t size;
    EXPECT_FALSE(Find(s + rounded, &lo, &size)) << n;
    EXPECT_EQ(ReadMemStats().large_stacks_inuse, rounded);  // bytes
    stackfree(s, n);
    EXPECT_FALSE(Find(s, &lo, &size)) << n;
    EXPECT_FALSE(Find(s + 100, &lo, &size)) << n;
  }
  const MemStats after = ReadMemStats();
  EXPECT_EQ(after.stacks_inuse, before.stacks_inuse);
  EXPECT_EQ(after.large_stacks_inuse, 0u);
}

TEST(FindStackTest, Unguarded) {
  const bool old = SetStackGuards(false);
  for (size_t n : {size_t{8192}, size_t{2} << 20}) {
    char* s = static_cast<char*>(stackalloc(n));
    void* lo;
    size_t size;
    ASSERT_TRUE(Find(s, &lo, &size)) << n;
    EXPECT_EQ(lo, s);
    EXPECT_EQ(size, n);
    ASSERT_TRUE(Find(s + n - 1, &lo, &size)) << n;
    EXPECT_EQ(lo, s);
    stackfree(s, n);
  }
  SetStackGuards(old);
}

// A free stack of a chunk that ScavengeStacks released whole is uncarved
// again, not a stack (false); handed out again, it is found again.
TEST(FindStackTest, StacksOfAChunkReleasedWhole) {
  constexpr size_t kSize = 16384;
  constexpr int kOrder = 2;
  std::vector<void*> v;
  std::thread t([&] {
    // Several chunks' worth, freed on a thread that then exits, so its
    // cache goes to the pool.
    for (int i = 0; i < 64; ++i) v.push_back(stackalloc(kSize));
    for (void* s : v) stackfree(s, kSize);
  });
  t.join();
  ASSERT_GT(ScavengeStacks(), 0u);
  ASSERT_GT(StackallocTestPeer::PoolReleasedChunks(kOrder), 0);
  // Per chunk, the stacks of v still found and those lost with it.
  std::map<const ChunkRecord*, std::pair<int, int>> found_lost;
  int lost = 0;
  for (void* s : v) {
    void* lo;
    size_t size;
    auto& fl = found_lost[StackallocTestPeer::ChunkOf(s)];
    if (Find(static_cast<char*>(s) + 10, &lo, &size)) {
      EXPECT_EQ(lo, s);
      EXPECT_EQ(size, kSize);
      ++fl.first;
    } else {
      ++fl.second;
      ++lost;
    }
  }
  // Whole chunks only: no chunk lost some of v's stacks and kept others.
  EXPECT_GT(lost, 0);
  for (const auto& [rec, fl] : found_lost) {
    EXPECT_TRUE(fl.first == 0 || fl.second == 0)
        << fl.first << " found, " << fl.second << " lost in one chunk";
  }
  std::vector<void*> again;
  for (int i = 0; i < 64; ++i) again.push_back(stackalloc(kSize));
  for (void* s : again) {
    void* lo;
    size_t size;
    ASSERT_TRUE(Find(static_cast<char*>(s) + kSize - 1, &lo, &size));
    EXPECT_EQ(lo, s);
    EXPECT_EQ(size, kSize);
  }
  for (void* s : again) stackfree(s, kSize);
}

TEST(FindStackTest, LargeStacksFreedAndReusedMeanwhile) {
  std::atomic<char*> published{nullptr};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> wrong{0}, hits{0}, calls{0};
  const MemStats before = ReadMemStats();
  std::thread freer([&] {
    const size_t sizes[] = {(size_t{1} << 20) + 4096, size_t{4} << 20,
                            (size_t{2} << 20) + 8192, 8192};
    for (int64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
      const size_t n = sizes[i % 4];
      char* s = static_cast<char*>(stackalloc(n));
      if (n > (size_t{1} << 20)) published.store(s + 4096 * (i % 7));
      for (volatile int k = 0; k < 50; ++k) {
      }
      stackfree(s, n);
    }
  });
  // Two seconds, and longer (up to 30) until a look found a stack live: on
  // a loaded machine the two threads may seldom run at once.
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::seconds(2);
  const auto last = start + std::chrono::seconds(30);
  for (auto now = start; now < end || (hits.load() == 0 && now < last);
       now = std::chrono::steady_clock::now()) {
    char* p = published.load();
    if (p == nullptr) continue;
    void* lo;
    size_t size;
    calls.fetch_add(1, std::memory_order_relaxed);
    if (FindStack(p, &lo, &size)) {
      hits.fetch_add(1, std::memory_order_relaxed);
      char* l = static_cast<char*>(lo);
      if (p < l || p >= l + size) {
        if (wrong.fetch_add(1) < 5) {
          fprintf(stderr, "FindStack(%p) = true, [%p, %p) does not hold it\n",
                  static_cast<void*>(p), lo, static_cast<void*>(l + size));
        }
      }
    }
  }
  stop = true;
  freer.join();
  printf("calls %lld, true %lld, inconsistent %lld\n",
         static_cast<long long>(calls.load()),
         static_cast<long long>(hits.load()),
         static_cast<long long>(wrong.load()));
  EXPECT_GT(hits.load(), 0);  // The race was run, not missed.
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(ReadMemStats().stacks_inuse, before.stacks_inuse);
  EXPECT_EQ(ReadMemStats().large_stacks_inuse, 0u);
}

}  // namespace
}  // namespace stackalloc
