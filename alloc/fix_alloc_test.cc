#include "alloc/fix_alloc.h"

#include <cstdint>
#include <cstring>
#include <set>
#include <vector>

#include "alloc/sys_alloc.h"
#include "gtest/gtest.h"

namespace stackalloc {
namespace {

// A chunk source that records every chunk and can be told to fail.
struct Chunks {
  static std::vector<void*> given;
  static int fail_after;  // Chunks still allowed; -1 = unlimited.

  static void* Source(void*, size_t n) {
    EXPECT_EQ(n, FixAlloc::kChunk);
    if (fail_after == 0) return nullptr;
    if (fail_after > 0) --fail_after;
    void* v = SysAlloc(n);
    given.push_back(v);
    return v;
  }
  static void Reset() {
    for (void* v : given) EXPECT_TRUE(SysFree(v, FixAlloc::kChunk));
    given.clear();
    fail_after = -1;
  }
};
std::vector<void*> Chunks::given;
int Chunks::fail_after = -1;

class FixAllocTest : public testing::Test {
 protected:
  void SetUp() override { Chunks::Reset(); }
  void TearDown() override { Chunks::Reset(); }
};

constexpr size_t kSize = 4096;
constexpr size_t kPerChunk = FixAlloc::kChunk / kSize;  // 32

TEST_F(FixAllocTest, CarvesAChunkInAddressOrder) {
  FixAlloc f(kSize, &Chunks::Source);
  EXPECT_EQ(f.inuse(), 0u);
  EXPECT_EQ(f.sys(), 0u);
  auto* first = static_cast<char*>(f.Alloc());
  ASSERT_EQ(Chunks::given.size(), 1u);
  EXPECT_EQ(first, Chunks::given[0]);
  for (size_t i = 1; i < kPerChunk; ++i) {
    EXPECT_EQ(f.Alloc(), first + i * kSize) << i;
  }
  EXPECT_EQ(Chunks::given.size(), 1u);
  EXPECT_EQ(f.inuse(), kPerChunk * kSize);
  EXPECT_EQ(f.sys(), FixAlloc::kChunk);
}

TEST_F(FixAllocTest, ChunkBoundaryTakesANewChunkAndWastesTheTail) {
  // 3 KiB objects: 42 fit in 128 KiB, leaving a 2 KiB tail unused.
  constexpr size_t kOdd = 3072;
  FixAlloc f(kOdd, &Chunks::Source);
  const size_t per_chunk = FixAlloc::kChunk / kOdd;
  ASSERT_EQ(per_chunk, 42u);
  for (size_t i = 0; i < per_chunk; ++i) ASSERT_NE(f.Alloc(), nullptr);
  EXPECT_EQ(Chunks::given.size(), 1u);
  void* next = f.Alloc();
  ASSERT_EQ(Chunks::given.size(), 2u);
  EXPECT_EQ(next, Chunks::given[1]);
  EXPECT_EQ(f.sys(), 2 * FixAlloc::kChunk);
  EXPECT_EQ(f.inuse(), (per_chunk + 1) * kOdd);
}

TEST_F(FixAllocTest, FreeIsReusedLifoBeforeCarving) {
  FixAlloc f(kSize, &Chunks::Source);
  void* a = f.Alloc();
  void* b = f.Alloc();
  void* c = f.Alloc();
  f.Free(a);
  f.Free(c);
  EXPECT_EQ(f.inuse(), kSize);
  EXPECT_EQ(f.Alloc(), c);
  EXPECT_EQ(f.Alloc(), a);
  // List empty again: carving resumes right after c.
  EXPECT_EQ(f.Alloc(), static_cast<char*>(c) + kSize);
  EXPECT_EQ(f.inuse(), 4 * kSize);
  EXPECT_EQ(f.sys(), FixAlloc::kChunk);
  (void)b;
}

TEST_F(FixAllocTest, ObjectsAreDistinctAndKeepTheirContents) {
  FixAlloc f(kSize, &Chunks::Source);
  std::vector<unsigned char*> objs;
  for (size_t i = 0; i < 3 * kPerChunk + 5; ++i) {
    auto* p = static_cast<unsigned char*>(f.Alloc());
    ASSERT_NE(p, nullptr);
    memset(p, static_cast<int>(i & 0xff), kSize);
    objs.push_back(p);
  }
  EXPECT_EQ(std::set<unsigned char*>(objs.begin(), objs.end()).size(),
            objs.size());
  for (size_t i = 0; i < objs.size(); ++i) {
    for (size_t j = 0; j < kSize; ++j) {
      ASSERT_EQ(objs[i][j], i & 0xff) << i << " " << j;
    }
  }
  EXPECT_EQ(f.sys(), 4 * FixAlloc::kChunk);
  EXPECT_EQ(Chunks::given.size(), 4u);
}

TEST_F(FixAllocTest, ChunkFailureReturnsNullAndChangesNothing) {
  Chunks::fail_after = 1;
  FixAlloc f(kSize, &Chunks::Source);
  for (size_t i = 0; i < kPerChunk; ++i) ASSERT_NE(f.Alloc(), nullptr);
  const size_t inuse = f.inuse(), sys = f.sys();
  EXPECT_EQ(f.Alloc(), nullptr);
  EXPECT_EQ(f.Alloc(), nullptr);
  EXPECT_EQ(f.inuse(), inuse);
  EXPECT_EQ(f.sys(), sys);
  // Frees still work, and freed objects are served without a chunk.
  void* p = Chunks::given[0];
  f.Free(p);
  EXPECT_EQ(f.Alloc(), p);
  // Once the source recovers, carving resumes on a fresh chunk.
  Chunks::fail_after = -1;
  void* q = f.Alloc();
  ASSERT_EQ(Chunks::given.size(), 2u);
  EXPECT_EQ(q, Chunks::given[1]);
  EXPECT_EQ(f.sys(), 2 * FixAlloc::kChunk);
}

TEST_F(FixAllocTest, FirstUseHookRunsOncePerObject) {
  struct Hook {
    std::vector<void*> seen;
    static void Call(void* arg, void* p) {
      static_cast<Hook*>(arg)->seen.push_back(p);
    }
  } hook;
  FixAlloc f(kSize, &Chunks::Source, &Hook::Call, &hook);
  void* a = f.Alloc();
  void* b = f.Alloc();
  f.Free(a);
  EXPECT_EQ(f.Alloc(), a);  // Reuse: no second first-use call.
  EXPECT_EQ(hook.seen, (std::vector<void*>{a, b}));
}

// The chunk source is told whose chunk it gives (Go's FixAlloc passes the
// FixAlloc's arg the same way).
TEST_F(FixAllocTest, TheSourceSeesItsArgument) {
  struct Seen {
    void* arg = nullptr;
    size_t n = 0;
    std::vector<void*> chunks;
  } seen;
  auto source = +[](void* arg, size_t n) -> void* {
    auto* s = static_cast<Seen*>(arg);
    s->arg = arg;
    s->n = n;
    s->chunks.push_back(SysAlloc(n));
    return s->chunks.back();
  };
  FixAlloc f(kSize, source, nullptr, &seen);
  auto* first = static_cast<char*>(f.Alloc());
  EXPECT_EQ(seen.arg, &seen);
  EXPECT_EQ(seen.n, FixAlloc::kChunk);
  ASSERT_EQ(seen.chunks.size(), 1u);
  EXPECT_EQ(first, seen.chunks[0]);
  EXPECT_EQ(f.Alloc(), first + kSize);
  for (void* c : seen.chunks) EXPECT_TRUE(SysFree(c, FixAlloc::kChunk));
}

TEST(FixAllocDeathTest, BadSizesDie) {
  FixAlloc f;
  auto os = +[](void*, size_t n) { return SysAlloc(n); };
  EXPECT_DEATH(f.Init(4, os), "FixAlloc_Init: bad object size");
  EXPECT_DEATH(f.Init(FixAlloc::kChunk + 8, os),
               "FixAlloc_Init: bad object size");
  EXPECT_DEATH(f.Init(64, nullptr), "FixAlloc_Init: no chunk source");
  EXPECT_DEATH(f.Alloc(), "FixAlloc: Alloc before Init");
}

}  // namespace
}  // namespace stackalloc
