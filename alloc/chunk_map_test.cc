#include "alloc/chunk_map.h"

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "alloc/chunk.h"
#include "alloc/sys_alloc.h"
#include "gtest/gtest.h"

namespace stackalloc {
namespace {

// A record for [base, base + bytes) cut into `nslots` slots of 8 KiB: a 4 KiB
// guard, then a 4 KiB stack.
void Fill(ChunkRecord* r, uintptr_t base, int nslots) {
  r->base = base;
  r->stack_size = 4096;
  r->guard = 4096;
  r->slot_size = 8192;
  r->nslots = nslots;
  r->bytes = r->slot_size * nslots;
}

TEST(ChunkMapTest, FindsTheChunkFromAnyAddressInItAndNothingOutside) {
  static ChunkMap map;
  // 40 slots of 8 KiB = 320 KiB: three granules, the last one in part.
  const uintptr_t base = uintptr_t{0x7f12} << 32;
  static ChunkRecord rec;
  Fill(&rec, base, 40);
  int64_t meta = 0;
  ASSERT_TRUE(map.Set(&rec, &meta));
  EXPECT_EQ(meta, static_cast<int64_t>(sizeof(std::atomic<void*>) << 16));
  for (uintptr_t a = base; a < base + rec.bytes; a += 4093) {
    EXPECT_EQ(map.Lookup(a), &rec) << std::hex << a;
  }
  EXPECT_EQ(map.Lookup(base + rec.bytes - 1), &rec);
  EXPECT_EQ(map.Lookup(base + rec.bytes), nullptr);  // Same granule, past.
  EXPECT_EQ(map.Lookup(base - 1), nullptr);
  EXPECT_EQ(map.Lookup(0), nullptr);
  EXPECT_EQ(map.Lookup(~uintptr_t{0}), nullptr);  // Beyond 47 bits.
  map.Clear(&rec);
  EXPECT_EQ(map.Lookup(base), nullptr);
  EXPECT_EQ(map.Lookup(base + rec.bytes - 1), nullptr);
}

TEST(ChunkRecordTest, SlotsAndGuardsFromAddresses) {
  ChunkRecord rec;
  Fill(&rec, 0x100000, 4);
  EXPECT_EQ(rec.StackAt(0), 0x101000u);
  EXPECT_EQ(rec.StackAt(3), 0x107000u);
  EXPECT_EQ(rec.SlotOfStack(0x101000), 0);
  EXPECT_EQ(rec.SlotOfStack(0x107000), 3);
  EXPECT_EQ(rec.SlotOfStack(0x101010), -1);  // Inside, not a stack start.
  EXPECT_EQ(rec.SlotOfStack(0x100000), -1);  // A guard.
  EXPECT_EQ(rec.SlotOfStack(0x109000), -1);  // Past the chunk.
  EXPECT_EQ(rec.SlotOfGuard(0x100000), 0);
  EXPECT_EQ(rec.SlotOfGuard(0x100fff), 0);
  EXPECT_EQ(rec.SlotOfGuard(0x106abc), 3);
  EXPECT_EQ(rec.SlotOfGuard(0x101000), -1);  // A stack.
  EXPECT_EQ(rec.SlotHolding(0x101000), 0);   // A stack's first byte,
  EXPECT_EQ(rec.SlotHolding(0x101fff), 0);   // its last,
  EXPECT_EQ(rec.SlotHolding(0x107abc), 3);   // and inside.
  EXPECT_EQ(rec.SlotHolding(0x102000), -1);  // A guard.
  EXPECT_EQ(rec.SlotHolding(0x108000), -1);  // Past the last slot.
  EXPECT_EQ(rec.SlotHolding(0x0fffff), -1);  // Below the chunk.
  ChunkRecord bare;
  Fill(&bare, 0x100000, 4);
  bare.guard = 0;
  EXPECT_EQ(bare.SlotOfGuard(0x100000), -1);
  EXPECT_EQ(bare.SlotHolding(0x100000), 0);
}

TEST(ChunkRecordTest, TransitionsKeepFlagsAndReportWhatTheyFound) {
  ChunkRecord rec;
  Fill(&rec, 0x100000, 2);
  SlotState found;
  rec.AddFlags(1, kSlotGuarded);
  EXPECT_TRUE(
      rec.Transition(1, SlotState::kUncarved, SlotState::kTaken, &found));
  EXPECT_EQ(rec.State(1), SlotState::kTaken);
  EXPECT_EQ(rec.Flags(1), kSlotGuarded);
  EXPECT_FALSE(
      rec.Transition(1, SlotState::kUncarved, SlotState::kPooled, &found));
  EXPECT_EQ(found, SlotState::kTaken);
  EXPECT_EQ(rec.State(0), SlotState::kUncarved);
}

// Many threads map and unmap their own chunks while readers look up every
// chunk: a reader never sees another chunk's record for an address.
TEST(ChunkMapTest, ConcurrentSetClearAndLookup) {
  static ChunkMap map;
  constexpr int kThreads = 4;
  constexpr int kRounds = 2000;
  static ChunkRecord recs[kThreads];
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    Fill(&recs[t], (uintptr_t{0x6000} + t) << 32, 16);
    threads.emplace_back([t] {
      for (int i = 0; i < kRounds; ++i) {
        int64_t meta = 0;
        ASSERT_TRUE(map.Set(&recs[t], &meta));
        ASSERT_EQ(map.Lookup(recs[t].base + 5000), &recs[t]);
        map.Clear(&recs[t]);
      }
    });
  }
  std::thread reader([&] {
    while (!done.load()) {
      for (const ChunkRecord& rec : recs) {
        const ChunkRecord* r = map.Lookup(rec.base + 70000);
        ASSERT_TRUE(r == nullptr || r == &rec);
      }
    }
  });
  for (auto& th : threads) th.join();
  done = true;
  reader.join();
}

}  // namespace
}  // namespace stackalloc
