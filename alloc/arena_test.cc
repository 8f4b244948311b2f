#include "alloc/arena.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "alloc/chunk.h"
#include "base/sanitizers.h"
#include "gtest/gtest.h"
#include "testing/process_info.h"

namespace stackalloc {
namespace {

using testing_util::MapsLines;

TEST(StackArenaTest, ChunksAreAlignedZeroedDistinctAndShareMappings) {
  static StackArena arena;
  const int lines0 = MapsLines();
  std::vector<char*> chunks;
  for (int i = 0; i < 1000; ++i) {  // 1000 x 256 KiB: four reservations.
    auto* c = static_cast<char*>(arena.Alloc(256 << 10));
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(c) % kChunkGranule, 0u);
    EXPECT_EQ(c[0], 0);
    EXPECT_EQ(c[(256 << 10) - 1], 0);
    memset(c, 0x5a, 256 << 10);
    chunks.push_back(c);
  }
  std::sort(chunks.begin(), chunks.end());
  for (size_t i = 1; i < chunks.size(); ++i) {
    EXPECT_GE(chunks[i] - chunks[i - 1], 256 << 10) << "chunks overlap";
  }
  EXPECT_EQ(arena.reserved(), 4 * StackArena::kArenaBytes);
  // Four reservations, not a thousand chunks, in /proc/self/maps. (The
  // sanitizers map memory of their own meanwhile: not ours to count.)
  if (!sanitizer::kAsan && !sanitizer::kTsan) {
    EXPECT_LE(MapsLines() - lines0, 4);
  }
}

TEST(StackArenaTest, RoundsUpToTheGranuleAndRefusesTheImpossible) {
  static StackArena arena;
  auto* a = static_cast<char*>(arena.Alloc(1));
  auto* b = static_cast<char*>(arena.Alloc(1));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b - a, static_cast<ptrdiff_t>(kChunkGranule));
  EXPECT_EQ(arena.Alloc(0), nullptr);
  EXPECT_EQ(arena.Alloc(StackArena::kArenaBytes), nullptr);
  EXPECT_EQ(arena.Alloc(SIZE_MAX), nullptr);
}

TEST(StackArenaTest, ConcurrentCarvesNeverOverlap) {
  static StackArena arena;
  constexpr int kThreads = 8;
  constexpr int kEach = 300;  // 2400 x 128 KiB: several reservations.
  std::vector<std::vector<uintptr_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto* c = static_cast<char*>(arena.Alloc(kChunkGranule));
        ASSERT_NE(c, nullptr);
        c[0] = static_cast<char>(t);  // Touch: it is really ours.
        got[t].push_back(reinterpret_cast<uintptr_t>(c));
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<uintptr_t> all;
  for (auto& v : got) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
  for (size_t i = 1; i < all.size(); ++i) {
    ASSERT_GE(all[i] - all[i - 1], kChunkGranule);
  }
}

}  // namespace
}  // namespace stackalloc
