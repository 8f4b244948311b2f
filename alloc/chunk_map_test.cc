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

// A walk in address order finds each chunk at its first granule, skips the
// rest of it when told to (from = its end rounded up to a granule), and
// passes over roots that have no leaf.
// The first granule after r's chunk.
uintptr_t End(const ChunkRecord& r) {
  return (r.base + r.bytes + kChunkGranule - 1) & ~(kChunkGranule - 1);
}

TEST(ChunkMapTest, NextEntryWalksEveryChunkInAddressOrder) {
  static ChunkMap map;
  static ChunkRecord a, b, c;
  const uintptr_t leaf0 = uintptr_t{0x5100} << 32;
  Fill(&a, leaf0, 40);                     // Three granules.
  Fill(&b, leaf0 + 3 * kChunkGranule, 8);  // Right after a.
  Fill(&c, uintptr_t{0x5300} << 32, 2);    // Under another root entry.
  int64_t meta = 0;
  for (ChunkRecord* r : {&c, &a, &b}) ASSERT_TRUE(map.Set(r, &meta));
  std::vector<const ChunkRecord*> seen;
  std::vector<uintptr_t> at;
  uintptr_t from = 0, g = 0;
  while (const ChunkRecord* r = map.NextEntry(from, &g)) {
    seen.push_back(r);
    at.push_back(g);
    from = End(*r);
  }
  EXPECT_EQ(seen, (std::vector<const ChunkRecord*>{&a, &b, &c}));
  EXPECT_EQ(at, (std::vector<uintptr_t>{a.base, b.base, c.base}));
  // From inside a chunk: its next granule.
  EXPECT_EQ(map.NextEntry(a.base + kChunkGranule + 5, &g), &a);
  EXPECT_EQ(g, a.base + kChunkGranule);
  EXPECT_EQ(map.NextEntry(End(c), &g), nullptr);
  map.Clear(&b);
  EXPECT_EQ(map.NextEntry(End(a), &g), &c);
  map.Clear(&a);
  map.Clear(&c);
}

TEST(ChunkRecordTest, ReadLayoutCopiesALaidOutRecordOnly) {
  ChunkRecord rec;
  ChunkRecord::Layout l;
  uint32_t seq;
  EXPECT_FALSE(rec.ReadLayout(&l, &seq));  // Never laid out.
  Fill(&rec, 0x100000, 4);
  rec.order = 0;
  ASSERT_TRUE(rec.ReadLayout(&l, &seq));
  EXPECT_EQ(l.base, 0x100000u);
  EXPECT_EQ(l.bytes, 4u * 8192);
  EXPECT_EQ(l.StackAt(3), rec.StackAt(3));
  EXPECT_TRUE(rec.StillLaidOut(seq));
  rec.BeginRewrite();  // Odd: a reader takes nothing now.
  EXPECT_FALSE(rec.StillLaidOut(seq));
  EXPECT_FALSE(rec.ReadLayout(&l, &seq));
  rec.EndRewrite();
  ASSERT_TRUE(rec.ReadLayout(&l, &seq));
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
