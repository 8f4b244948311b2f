#include "alloc/stack_pool.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "alloc/chunk.h"
#include "alloc/chunk_map.h"
#include "alloc/sys_alloc.h"
#include "gtest/gtest.h"

namespace stackalloc {
namespace {

constexpr size_t kStack = 4096;

std::atomic<bool> refuse_nodes{false};
void* NodeSource(size_t n) { return refuse_nodes ? nullptr : SysAlloc(n); }

// Chunks of order 0 with records in a ChunkMap of the test's own, unmapped at
// the end. A chunk's stacks start kUncarved; Take() hands them out (as a
// cache would) and Give() marks them kPooled, as the entry point does before
// Put().
class Chunks {
 public:
  explicit Chunks(bool guards = false) : guard_(guards ? kPageSize : 0) {}
  ~Chunks() {
    for (auto& r : recs_) {
      map_.Clear(r.get());
      EXPECT_TRUE(SysFree(reinterpret_cast<void*>(r->base.load()), r->bytes));
    }
  }
  ChunkMap* map() { return &map_; }

  // A new chunk of kSlots stacks, all handed out.
  std::vector<void*> NewChunk(StackPool* pool) {
    auto rec = std::make_unique<ChunkRecord>();
    rec->stack_size = kStack;
    rec->guard = guard_;
    rec->slot_size = kStack + guard_;
    rec->nslots = kSlots;
    rec->bytes = rec->slot_size * kSlots;
    rec->order = 0;
    rec->base =
        reinterpret_cast<uintptr_t>(SysAllocAligned(rec->bytes, kChunkGranule));
    EXPECT_NE(rec->base, 0u);
    int64_t meta = 0;
    EXPECT_TRUE(map_.Set(rec.get(), &meta));
    pool->AddChunk(rec.get());
    std::vector<void*> stacks;
    SlotState found;
    for (int i = 0; i < kSlots; ++i) {
      EXPECT_TRUE(
          rec->Transition(i, SlotState::kUncarved, SlotState::kTaken, &found));
      stacks.push_back(reinterpret_cast<void*>(rec->StackAt(i)));
    }
    recs_.push_back(std::move(rec));
    return stacks;
  }

  // Marks stacks (handed out) as pooled, for Put().
  void Give(void* const* stacks, int n, SlotState from = SlotState::kTaken) {
    for (int i = 0; i < n; ++i) Set(stacks[i], from, SlotState::kPooled);
  }
  // Marks stacks that came out of the pool as handed out.
  void Take(void* const* stacks, int n) {
    for (int i = 0; i < n; ++i) {
      ChunkRecord* rec = Rec(stacks[i]);
      const int slot = rec->SlotOfStack(reinterpret_cast<uintptr_t>(stacks[i]));
      SlotState s = rec->State(slot);
      ASSERT_TRUE(s == SlotState::kPooled || s == SlotState::kReleased);
      Set(stacks[i], s, SlotState::kTaken);
    }
  }
  void Set(void* stack, SlotState from, SlotState to) {
    ChunkRecord* rec = Rec(stack);
    SlotState found;
    ASSERT_TRUE(
        rec->Transition(rec->SlotOfStack(reinterpret_cast<uintptr_t>(stack)),
                        from, to, &found));
  }
  ChunkRecord* Rec(void* p) {
    return map_.Lookup(reinterpret_cast<uintptr_t>(p));
  }

  static constexpr int kSlots = 32;

 private:
  const size_t guard_;
  ChunkMap map_;
  std::vector<std::unique_ptr<ChunkRecord>> recs_;
};

TEST(StackPoolTest, BatchesGoInAndComeOutWhole) {
  auto chunks = std::make_unique<Chunks>();
  StackPool pool(0, chunks->map(), &NodeSource);
  std::vector<void*> a = chunks->NewChunk(&pool);
  int64_t meta = 0;
  chunks->Give(a.data(), 21);
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

TEST(StackPoolTest, NoNodeMemoryTakesNothingAndStrandedStacksComeBack) {
  auto chunks = std::make_unique<Chunks>();
  refuse_nodes = true;
  StackPool pool(0, chunks->map(), &NodeSource);
  std::vector<void*> a = chunks->NewChunk(&pool);
  int64_t meta = 0;
  EXPECT_FALSE(pool.Put(a.data(), 16, &meta));
  EXPECT_EQ(meta, 0);
  EXPECT_EQ(pool.stacks(), 0);
  // The caller strands them: the pool owns them without a batch.
  for (int i = 0; i < 16; ++i) {
    chunks->Set(a[i], SlotState::kTaken, SlotState::kStranded);
  }
  pool.Strand(16);
  EXPECT_EQ(pool.stranded(), 16);
  void* out[StackPool::kMaxBatch];
  ASSERT_EQ(pool.RescueStranded(out, 10, SlotState::kTaken), 10);
  EXPECT_EQ(pool.stranded(), 6);
  ASSERT_EQ(pool.RescueStranded(out + 10, 10, SlotState::kTaken), 6);
  EXPECT_EQ(std::set<void*>(out, out + 16),
            std::set<void*>(a.begin(), a.begin() + 16));
  EXPECT_EQ(pool.stranded(), 0);
  refuse_nodes = false;
  chunks->Give(a.data(), 16);
  EXPECT_TRUE(pool.Put(a.data(), 16, &meta));
  EXPECT_EQ(pool.stacks(), 16);
}

// Scavenge() releases every chunk whose slots are all free, counting
// stranded stacks as free, and leaves the others' stacks pooled.
TEST(StackPoolTest, ScavengeReleasesExactlyTheWhollyFreeChunks) {
  auto chunks = std::make_unique<Chunks>(/*guards=*/true);
  StackPool pool(0, chunks->map(), &NodeSource);
  std::vector<void*> a = chunks->NewChunk(&pool);  // All 32 free.
  std::vector<void*> b = chunks->NewChunk(&pool);  // 31 of 32 free.
  std::vector<void*> c = chunks->NewChunk(&pool);  // 31 free, 1 stranded.
  for (void* s : a) memset(s, 0xa5, kStack);
  int64_t meta = 0;
  // Interleave the chunks' stacks across batches.
  std::vector<void*> mixed;
  for (int i = 0; i < Chunks::kSlots; ++i) {
    mixed.push_back(a[i]);
    if (i != 7) mixed.push_back(b[i]);
    if (i != 9) mixed.push_back(c[i]);
  }
  chunks->Give(mixed.data(), static_cast<int>(mixed.size()));
  for (size_t i = 0; i < mixed.size(); i += 16) {
    ASSERT_TRUE(
        pool.Put(&mixed[i], std::min<int>(16, mixed.size() - i), &meta));
  }
  chunks->Set(c[9], SlotState::kTaken, SlotState::kStranded);
  pool.Strand(1);
  ASSERT_EQ(pool.stacks(), 94);

  StackPool::ScavengeResult r = pool.Scavenge(/*release_stacks=*/false);
  EXPECT_TRUE(r.ran);
  EXPECT_EQ(r.chunks_released, 2);
  EXPECT_EQ(r.chunk_stacks, 64);
  EXPECT_EQ(r.stacks_examined, 94);
  EXPECT_EQ(r.stacks_released, 0);
  EXPECT_EQ(pool.stacks(), 31);
  EXPECT_EQ(pool.stranded(), 0);
  EXPECT_EQ(pool.released_chunks(), 2);

  // The released chunks' pages read as zero, stay mapped, every slot is
  // uncarved again, and they come back with guards: only guarded ones.
  EXPECT_EQ(pool.TakeReleasedChunk(/*guarded=*/false), nullptr);
  std::set<ChunkRecord*> released;
  while (ChunkRecord* rec = pool.TakeReleasedChunk(/*guarded=*/true)) {
    released.insert(rec);
    for (int i = 0; i < rec->nslots; ++i) {
      EXPECT_EQ(rec->State(i), SlotState::kUncarved);
    }
  }
  EXPECT_EQ(released,
            (std::set<ChunkRecord*>{chunks->Rec(a[0]), chunks->Rec(c[0])}));
  EXPECT_EQ(pool.released_chunks(), 0);
  for (void* s : a) {
    for (size_t i = 0; i < kStack; i += 512) {
      ASSERT_EQ(static_cast<unsigned char*>(s)[i], 0);
    }
  }
  memset(a[3], 1, kStack);  // Writable again.

  // What stays is exactly chunk b's free stacks, nothing lost or doubled.
  std::multiset<void*> left;
  void* out[StackPool::kMaxBatch];
  while (int n = pool.Get(out)) left.insert(out, out + n);
  std::multiset<void*> want(b.begin(), b.end());
  want.erase(b[7]);
  EXPECT_EQ(left, want);
}

TEST(StackPoolTest, ScavengeReturnsTheTouchedPagesOfSingleStacks) {
  auto chunks = std::make_unique<Chunks>();
  StackPool pool(0, chunks->map(), &NodeSource);
  std::vector<void*> a = chunks->NewChunk(&pool);
  for (void* s : a) memset(s, 0x77, kStack);
  int64_t meta = 0;
  chunks->Give(a.data(), 10);  // 22 stay handed out: no chunk goes whole.
  ASSERT_TRUE(pool.Put(a.data(), 10, &meta));
  StackPool::ScavengeResult r = pool.Scavenge(/*release_stacks=*/true);
  EXPECT_EQ(r.chunks_released, 0);
  EXPECT_EQ(r.stacks_released, 10);
  EXPECT_EQ(pool.released_stacks(), 10);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(static_cast<unsigned char*>(a[i])[100], 0) << i;
    EXPECT_EQ(chunks->Rec(a[i])->State(i), SlotState::kReleased);
  }
  EXPECT_EQ(static_cast<unsigned char*>(a[10])[100], 0x77);  // Not free.
  // A second pass finds nothing left to release.
  EXPECT_EQ(pool.Scavenge(true).stacks_released, 0);
  // When the rest comes back, the chunk goes whole; the pass says how many
  // of its stacks had been released one by one.
  chunks->Give(a.data() + 10, 22);
  ASSERT_TRUE(pool.Put(a.data() + 10, 22, &meta));
  r = pool.Scavenge(true);
  EXPECT_EQ(r.chunks_released, 1);
  EXPECT_EQ(r.chunk_stacks_were_released, 10);
  EXPECT_EQ(pool.released_stacks(), 0);
  EXPECT_EQ(r.stacks_released, 0);
}

// A chunk whose every slot reads as pooled while a refill holds half of
// its stacks on their way out (popped, not yet moved to its cache) does not
// go: the pass holds the other half aside, then puts them back, nothing
// lost or doubled (ChunkRecord::pool_slots is a hint; what the pass holds
// decides).
TEST(StackPoolTest, ScavengeLeavesAChunkARefillHoldsPartOf) {
  auto chunks = std::make_unique<Chunks>();
  StackPool pool(0, chunks->map(), &NodeSource);
  std::vector<void*> a = chunks->NewChunk(&pool);
  int64_t meta = 0;
  chunks->Give(a.data(), Chunks::kSlots);
  ASSERT_TRUE(pool.Put(a.data(), 16, &meta));
  ASSERT_TRUE(pool.Put(a.data() + 16, 16, &meta));
  void* out[StackPool::kMaxBatch];
  ASSERT_EQ(pool.Get(out), 16);  // In flight: its slots still kPooled.
  const std::multiset<void*> in_flight(out, out + 16);

  StackPool::ScavengeResult r = pool.Scavenge(/*release_stacks=*/false);
  EXPECT_EQ(r.chunks_released, 0);
  EXPECT_EQ(r.stacks_examined, 16);
  EXPECT_EQ(pool.stacks(), 16);
  std::multiset<void*> left;
  while (int n = pool.Get(out)) left.insert(out, out + n);
  std::multiset<void*> want(a.begin(), a.end());
  for (void* s : in_flight) want.erase(want.find(s));
  EXPECT_EQ(left, want);
}

TEST(StackPoolTest, ScavengeOfAnEmptyPoolDoesNothing) {
  auto chunks = std::make_unique<Chunks>();
  StackPool pool(0, chunks->map(), &NodeSource);
  StackPool::ScavengeResult r = pool.Scavenge(true);
  EXPECT_TRUE(r.ran);
  EXPECT_EQ(r.chunks_released, 0);
  EXPECT_EQ(r.stacks_examined, 0);
}

TEST(StackPoolDeathTest, BadBatchSizesDie) {
  auto chunks = std::make_unique<Chunks>();
  StackPool pool(0, chunks->map(), &NodeSource);
  void* stacks[StackPool::kMaxBatch + 1] = {};
  int64_t meta = 0;
  EXPECT_DEATH(pool.Put(stacks, StackPool::kMaxBatch + 1, &meta),
               "StackPool::Put: bad batch size");
  EXPECT_DEATH(pool.Put(stacks, 0, &meta), "StackPool::Put: bad batch size");
}

TEST(StackPoolDeathTest, AStackInThePoolTwiceIsCaught) {
  auto chunks = std::make_unique<Chunks>();
  StackPool pool(0, chunks->map(), &NodeSource);
  std::vector<void*> a = chunks->NewChunk(&pool);
  int64_t meta = 0;
  chunks->Give(a.data(), 32);
  ASSERT_TRUE(pool.Put(a.data(), 32, &meta));
  ASSERT_TRUE(pool.Put(a.data() + 3, 1, &meta));  // Bypassing the states.
  EXPECT_DEATH(pool.Scavenge(false), "check failed");
}

// Threads cycle batches through the pool while a scavenger keeps releasing
// whatever chunk becomes wholly free and the threads take released chunks
// back. At the end every stack is in exactly one place.
TEST(StackPoolTest, ConcurrentPutGetScavengeConservesStacks) {
  constexpr int kThreads = 4;
  constexpr int kChunksPerThread = 4;
  constexpr int kIters = 3000;
  auto chunks = std::make_unique<Chunks>();
  StackPool pool(0, chunks->map(), &NodeSource);
  std::vector<std::vector<void*>> initial(kThreads);
  for (auto& v : initial) {
    for (int c = 0; c < kChunksPerThread; ++c) {
      std::vector<void*> s = chunks->NewChunk(&pool);
      v.insert(v.end(), s.begin(), s.end());
    }
  }
  std::vector<std::vector<void*>> held(kThreads);
  std::atomic<bool> done{false};
  std::thread scavenger([&] {
    while (!done.load()) pool.Scavenge(false);
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
          chunks->Give(&mine[mine.size() - 16], 16);
          ASSERT_TRUE(pool.Put(&mine[mine.size() - 16], 16, &meta));
          mine.resize(mine.size() - 16);
        } else if (int n = pool.Get(out)) {
          chunks->Take(out, n);
          mine.insert(mine.end(), out, out + n);
        } else if (ChunkRecord* c = pool.TakeReleasedChunk(false)) {
          for (int s = 0; s < c->nslots; ++s) {
            chunks->Set(reinterpret_cast<void*>(c->StackAt(s)),
                        SlotState::kUncarved, SlotState::kTaken);
            mine.push_back(reinterpret_cast<void*>(c->StackAt(s)));
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
    chunks->Give(v.data(), static_cast<int>(v.size()));
    for (size_t i = 0; i < v.size(); i += 16) {
      ASSERT_TRUE(pool.Put(&v[i], std::min<int>(16, v.size() - i), &meta));
    }
  }
  pool.Scavenge(false);
  EXPECT_EQ(pool.stacks(), 0);
  EXPECT_EQ(pool.released_chunks(), kThreads * kChunksPerThread);

  std::multiset<void*> seen;
  while (ChunkRecord* c = pool.TakeReleasedChunk(false)) {
    for (int s = 0; s < c->nslots; ++s) {
      seen.insert(reinterpret_cast<void*>(c->StackAt(s)));
    }
  }
  std::multiset<void*> want;
  for (auto& v : initial) want.insert(v.begin(), v.end());
  EXPECT_EQ(seen, want) << "stacks lost or duplicated";
}

}  // namespace
}  // namespace stackalloc
