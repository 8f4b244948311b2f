#include "alloc/stack_pool.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "alloc/fix_alloc.h"
#include "alloc/sys_alloc.h"
#include "gtest/gtest.h"

namespace stackalloc {
namespace {

constexpr size_t kStack = 4096;
constexpr size_t kChunk = FixAlloc::kChunk;
constexpr int kPerChunk = kChunk / kStack;

// Aligned chunks cut into stacks, unmapped at the end of the test.
class Chunks {
 public:
  ~Chunks() {
    for (char* c : chunks_) SysFree(c, kChunk);
  }
  std::vector<void*> NewChunk() {
    char* c = static_cast<char*>(SysAllocAligned(kChunk, kChunk));
    EXPECT_NE(c, nullptr);
    chunks_.push_back(c);
    std::vector<void*> stacks;
    for (int i = 0; i < kPerChunk; ++i) stacks.push_back(c + i * kStack);
    return stacks;
  }

 private:
  std::vector<char*> chunks_;
};

std::atomic<bool> refuse_nodes{false};
void* NodeSource(size_t n) { return refuse_nodes ? nullptr : SysAlloc(n); }

TEST(StackPoolTest, BatchesGoInAndComeOutWhole) {
  StackPool pool(kStack, kChunk, &NodeSource);
  Chunks chunks;
  std::vector<void*> a = chunks.NewChunk();
  int64_t meta = 0;
  ASSERT_TRUE(pool.Put(a.data(), 16, &meta));
  ASSERT_TRUE(pool.Put(a.data() + 16, 5, &meta));
  EXPECT_EQ(meta, static_cast<int64_t>(StackPool::kNodeChunk));  // One.
  EXPECT_EQ(pool.stacks(), 21);
  void* out[StackPool::kMaxBatch];
  ASSERT_EQ(pool.Get(out), 5);  // LIFO batches.
  EXPECT_TRUE(std::equal(out, out + 5, a.begin() + 16));
  ASSERT_EQ(pool.Get(out), 16);
  EXPECT_TRUE(std::equal(out, out + 16, a.begin()));
  EXPECT_EQ(pool.Get(out), 0);
  EXPECT_EQ(pool.stacks(), 0);
  // Nodes are recycled: no more node memory for more batches.
  ASSERT_TRUE(pool.Put(a.data(), 16, &meta));
  EXPECT_EQ(meta, static_cast<int64_t>(StackPool::kNodeChunk));
}

TEST(StackPoolTest, NoNodeMemoryTakesNothing) {
  refuse_nodes = true;
  StackPool pool(kStack, kChunk, &NodeSource);
  Chunks chunks;
  std::vector<void*> a = chunks.NewChunk();
  int64_t meta = 0;
  EXPECT_FALSE(pool.Put(a.data(), 16, &meta));
  EXPECT_EQ(meta, 0);
  EXPECT_EQ(pool.stacks(), 0);
  refuse_nodes = false;
  EXPECT_TRUE(pool.Put(a.data(), 16, &meta));
  EXPECT_EQ(pool.stacks(), 16);
}

TEST(StackPoolTest, ScavengeReleasesExactlyTheWhollyFreeChunks) {
  StackPool pool(kStack, kChunk, &NodeSource);
  Chunks chunks;
  std::vector<void*> a = chunks.NewChunk();  // All 32 stacks free.
  std::vector<void*> b = chunks.NewChunk();  // 31 of 32 free.
  for (void* s : a) memset(s, 0xa5, kStack);
  int64_t meta = 0;
  // Interleave the two chunks' stacks across batches.
  std::vector<void*> mixed;
  for (int i = 0; i < kPerChunk; ++i) {
    mixed.push_back(a[i]);
    if (i != 7) mixed.push_back(b[i]);
  }
  for (size_t i = 0; i < mixed.size(); i += 16) {
    ASSERT_TRUE(
        pool.Put(&mixed[i], std::min<int>(16, mixed.size() - i), &meta));
  }
  ASSERT_EQ(pool.stacks(), 63);

  StackPool::ScavengeResult r = pool.Scavenge();
  EXPECT_EQ(r.chunks_released, 1);
  EXPECT_EQ(r.stacks_examined, 63);
  EXPECT_EQ(pool.stacks(), 31);
  EXPECT_EQ(pool.released_chunks(), 1);

  // The released chunk's pages read as zero, stay mapped, and come back.
  auto* chunk = static_cast<unsigned char*>(pool.TakeReleasedChunk());
  ASSERT_EQ(chunk, a[0]);
  EXPECT_EQ(pool.TakeReleasedChunk(), nullptr);
  EXPECT_EQ(pool.released_chunks(), 0);
  for (size_t i = 0; i < kChunk; i += 512) ASSERT_EQ(chunk[i], 0) << i;
  memset(chunk, 1, kChunk);  // Writable again.

  // What stays is exactly chunk b's free stacks, nothing lost or doubled.
  std::multiset<void*> left;
  void* out[StackPool::kMaxBatch];
  while (int n = pool.Get(out)) left.insert(out, out + n);
  std::multiset<void*> want(b.begin(), b.end());
  want.erase(b[7]);
  EXPECT_EQ(left, want);
}

TEST(StackPoolTest, ScavengeOfAnEmptyPoolDoesNothing) {
  StackPool pool(kStack, kChunk, &NodeSource);
  StackPool::ScavengeResult r = pool.Scavenge();
  EXPECT_TRUE(r.ran);
  EXPECT_EQ(r.chunks_released, 0);
  EXPECT_EQ(r.stacks_examined, 0);
}

TEST(StackPoolDeathTest, BatchLargerThanAChunkDies) {
  // Scavenge() counts on every batch fitting in a chunk.
  StackPool pool(kStack, 4 * kStack, &NodeSource);
  void* stacks[5] = {};
  int64_t meta = 0;
  EXPECT_DEATH(pool.Put(stacks, 5, &meta), "StackPool::Put: bad batch size");
  EXPECT_DEATH(pool.Put(stacks, 0, &meta), "StackPool::Put: bad batch size");
}

TEST(StackPoolDeathTest, DoubleFreeIsCaught) {
  StackPool pool(kStack, kChunk, &NodeSource);
  Chunks chunks;
  std::vector<void*> a = chunks.NewChunk();
  int64_t meta = 0;
  ASSERT_TRUE(pool.Put(a.data(), 4, &meta));
  ASSERT_TRUE(pool.Put(a.data() + 3, 1, &meta));
  EXPECT_DEATH(pool.Scavenge(), "stackfree: stack freed twice");
}

// Threads cycle batches through the pool while a scavenger keeps releasing
// whatever chunk becomes wholly free and the threads take released chunks
// back. At the end every stack is in exactly one place.
TEST(StackPoolTest, ConcurrentPutGetScavengeConservesStacks) {
  constexpr int kThreads = 4;
  constexpr int kChunksPerThread = 4;
  constexpr int kIters = 3000;
  StackPool pool(kStack, kChunk, &NodeSource);
  Chunks chunks;
  std::vector<std::vector<void*>> initial(kThreads);
  for (auto& v : initial) {
    for (int c = 0; c < kChunksPerThread; ++c) {
      std::vector<void*> s = chunks.NewChunk();
      v.insert(v.end(), s.begin(), s.end());
    }
  }
  std::vector<std::vector<void*>> held(kThreads);
  std::atomic<bool> done{false};
  std::thread scavenger([&] {
    while (!done.load()) pool.Scavenge();
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<void*>& mine = held[t];
      mine = initial[t];
      int64_t meta = 0;
      void* out[StackPool::kMaxBatch];
      for (int i = 0; i < kIters; ++i) {
        if (mine.size() >= 16 && i % 2 == 0) {
          ASSERT_TRUE(pool.Put(&mine[mine.size() - 16], 16, &meta));
          mine.resize(mine.size() - 16);
        } else if (int n = pool.Get(out)) {
          mine.insert(mine.end(), out, out + n);
        } else if (void* c = pool.TakeReleasedChunk()) {
          for (int s = 0; s < kPerChunk; ++s) {
            mine.push_back(static_cast<char*>(c) + s * kStack);
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  done.store(true);
  scavenger.join();

  // Hand everything back: now every chunk is wholly free, and one more
  // scavenge must release all of them and leave the pool empty.
  int64_t meta = 0;
  for (auto& v : held) {
    for (size_t i = 0; i < v.size(); i += 16) {
      ASSERT_TRUE(pool.Put(&v[i], std::min<int>(16, v.size() - i), &meta));
    }
  }
  pool.Scavenge();
  EXPECT_EQ(pool.stacks(), 0);
  EXPECT_EQ(pool.released_chunks(), kThreads * kChunksPerThread);

  std::multiset<void*> seen;
  while (void* c = pool.TakeReleasedChunk()) {
    for (int s = 0; s < kPerChunk; ++s) {
      seen.insert(static_cast<char*>(c) + s * kStack);
    }
  }
  std::multiset<void*> want;
  for (auto& v : initial) want.insert(v.begin(), v.end());
  EXPECT_EQ(seen, want) << "stacks lost or duplicated";
}

}  // namespace
}  // namespace stackalloc
