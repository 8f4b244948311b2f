// README "Failure": "When the OS refuses memory, stackalloc returns nullptr
// and no stack statistic changes (stacks_meta_sys may have grown by records
// obtained before the refusal, which stay for later use)". Random refusal of
// chunks, pool nodes and chunk records, every order and large stacks, one
// thread and several, then memory returns and everything must work and add
// up; real refusal (RLIMIT_AS) of a thread's first call; and the chunk map
// leaves a refused chunk left mapped, counted.

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "alloc/sys_alloc.h"
#include "base/sanitizers.h"
#include "gtest/gtest.h"
#include "sched/m.h"
#include "stack/test_peer.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/process_info.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace {

using internal::StackallocTestPeer;
using testing_util::DescribeWaitStatus;
using testing_util::FirstInexactPool;
using testing_util::RunInChild;
using testing_util::RunThreads;
using testing_util::StackStatsDiff;
using testing_util::VmSize;

std::atomic<int> refuse_percent{0};
thread_local std::mt19937 rng(12345);

bool Refuse() { return static_cast<int>(rng() % 100) < refuse_percent.load(); }
void* Chunks(size_t n) {
  return Refuse() ? nullptr : SysAllocAligned(n, kChunkGranule);
}
void* Nodes(size_t n) { return Refuse() ? nullptr : SysAlloc(n); }
void* Records(size_t n) { return Refuse() ? nullptr : SysAlloc(n); }

size_t Pick(std::mt19937& r) {
  const int k = static_cast<int>(r() % 11);
  if (k == 10) return kMaxOrderStack + 1 + r() % (1 << 20);
  if (k == 9) return kFixedStack;
  return OrderStackSize(k) - r() % (OrderStackSize(k) / 2);
}

TEST(RefusalTest, SingleThreadEveryRefusalLeavesStatsAlone) {
  StackallocTestPeer::SetChunkSource(&Chunks);
  StackallocTestPeer::SetNodeSource(&Nodes);
  StackallocTestPeer::SetRecordSource(&Records);
  std::mt19937 r(7);
  struct H {
    void* v;
    size_t n;
  };
  std::vector<H> held;
  int refused = 0, bad = 0;
  for (int i = 0; i < 200000; ++i) {
    refuse_percent.store(i < 150000 ? static_cast<int>(r() % 60) : 0);
    if (r() % 2 == 0 || held.empty()) {
      const size_t n = Pick(r);
      const MemStats before = ReadMemStats();
      void* v = stackalloc(n);
      if (v == nullptr) {
        ++refused;
        const std::string diff = StackStatsDiff(before, ReadMemStats());
        if (!diff.empty() && bad++ < 5) {
          fprintf(stderr, "refusal of %zu changed %s\n", n, diff.c_str());
        }
        continue;
      }
      held.push_back({v, n});
    } else {
      const size_t j = r() % held.size();
      stackfree(held[j].v, held[j].n);
      held[j] = held.back();
      held.pop_back();
    }
    if (i % 1000 == 0) ScavengeStacks();
  }
  fprintf(stderr, "%d refused\n", refused);
  EXPECT_EQ(bad, 0);
  EXPECT_GT(refused, 0);
  // Memory is back: everything works; distinct stacks; exact.
  std::set<void*> seen;
  uint64_t bytes = 0;
  for (const H& h : held) {
    EXPECT_TRUE(seen.insert(h.v).second);
    bytes += StackBytes(h.n);
  }
  EXPECT_EQ(ReadMemStats().stacks_inuse, bytes);
  for (int i = 0; i < 2000; ++i) {
    const size_t n = Pick(r);
    void* v = stackalloc(n);
    ASSERT_NE(v, nullptr);
    EXPECT_TRUE(seen.insert(v).second) << "handed out twice: " << v;
    held.push_back({v, n});
  }
  // Stranded stacks are counted as pooled: the pool holds them.
  EXPECT_EQ(FirstInexactPool(), -1);
  for (const H& h : held) stackfree(h.v, h.n);
  EXPECT_EQ(ReadMemStats().stacks_inuse, 0u);
  StackallocTestPeer::SetChunkSource(nullptr);
  StackallocTestPeer::SetNodeSource(nullptr);
  StackallocTestPeer::SetRecordSource(nullptr);
}

TEST(RefusalTest, ThreadsUnderRefusalThenExact) {
  StackallocTestPeer::SetChunkSource(&Chunks);
  StackallocTestPeer::SetNodeSource(&Nodes);
  StackallocTestPeer::SetRecordSource(&Records);
  refuse_percent.store(getenv("PCT") ? atoi(getenv("PCT")) : 30);
  std::atomic<uint64_t> live_bytes{0};
  std::vector<std::vector<std::pair<void*, size_t>>> kept(4);
  RunThreads(4, [&kept, &live_bytes](int t) {
    std::mt19937 r(t + 100);
    std::vector<std::pair<void*, size_t>> held;
    for (int i = 0; i < 50000; ++i) {
      if (r() % 2 == 0 || held.empty()) {
        const size_t n = Pick(r);
        if (void* v = stackalloc(n)) held.emplace_back(v, n);
      } else {
        const size_t j = r() % held.size();
        stackfree(held[j].first, held[j].second);
        held[j] = held.back();
        held.pop_back();
      }
      if (t == 0 && i % 500 == 0) ScavengeStacks();
    }
    uint64_t b = 0;
    for (auto& h : held) b += StackBytes(h.second);
    live_bytes.fetch_add(b);
    kept[t] = std::move(held);
  });
  refuse_percent.store(0);
  EXPECT_EQ(ReadMemStats().stacks_inuse, live_bytes.load());
  for (auto& h : kept) {
    for (auto& p : h) stackfree(p.first, p.second);
  }
  const MemStats m = ReadMemStats();
  EXPECT_EQ(m.stacks_inuse, 0u);
  EXPECT_EQ(m.large_stacks_inuse, 0u);
  for (int k = 0; k < kNumStackOrders; ++k)
    EXPECT_EQ(m.orders[k].inuse, 0u) << k;
  ScavengeStacks();
  EXPECT_EQ(FirstInexactPool(), -1);
  StackallocTestPeer::SetChunkSource(nullptr);
  StackallocTestPeer::SetNodeSource(nullptr);
  StackallocTestPeer::SetRecordSource(nullptr);
}

// Real refusal (RLIMIT_AS), on a thread whose first call it is: binding the
// M needs `new M` (operator new, which threw std::bad_alloc out of
// stackalloc) and pthread_getattr_np (which allocates; on failure getm()
// died "cannot read the thread's stack bounds"). Neither returned nullptr.
//
// In a child: a thread is created first (its stack mapped), then the
// address space is capped just above what is mapped, then the thread makes
// its first stackalloc call. Returns 1 for nullptr, 2 for a stack, 3 if it
// threw std::bad_alloc. The idle Ms earlier tests left are held by threads
// meanwhile, so the call must make a new M, as a process's first one does.
int FirstCallUnderRlimit(size_t headroom) {
  std::atomic<int> go{0};
  std::atomic<int> result{-1};
  std::atomic<int> holding{0};
  const int idle = idle_m_count();
  std::vector<std::thread> holders;
  for (int i = 0; i < idle; ++i) {
    holders.emplace_back([&] {
      getm();
      holding.fetch_add(1);
      while (go.load() != 2) std::this_thread::yield();
    });
  }
  while (holding.load() != idle) std::this_thread::yield();
  std::thread t([&] {
    while (go.load() == 0) {
    }
    try {
      void* v = stackalloc(kFixedStack);
      result.store(v == nullptr ? 1 : 2);
    } catch (const std::bad_alloc&) {
      result.store(3);
    }
  });
  // Make malloc's arenas exist and then keep nothing spare.
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = VmSize() + headroom;
  setrlimit(RLIMIT_AS, &rl);
  go.store(1);
  t.join();
  go.store(2);
  for (std::thread& h : holders) h.join();
  return result.load();
}

TEST(RlimitTest, FirstCallOnAThreadUnderRefusalReturnsNullOrAStack) {
  if (sanitizer::kTsan)
    GTEST_SKIP() << "TSan needs memory of its own that RLIMIT_AS refuses";
  for (size_t headroom :
       {size_t{0}, size_t{16} << 10, size_t{64} << 10, size_t{256} << 10}) {
    const int st =
        RunInChild([headroom] { return FirstCallUnderRlimit(headroom); });
    const char* what = !WIFEXITED(st)         ? "died (fatal error / terminate)"
                       : WEXITSTATUS(st) == 1 ? "nullptr"
                       : WEXITSTATUS(st) == 2 ? "a stack"
                       : WEXITSTATUS(st) == 3 ? "threw std::bad_alloc"
                                              : "?";
    EXPECT_TRUE(WIFEXITED(st) && (WEXITSTATUS(st) == 1 || WEXITSTATUS(st) == 2))
        << "headroom " << (headroom >> 10) << " KiB: " << what << " ("
        << DescribeWaitStatus(st) << ")";
  }
}

// stacks_meta_sys: "the allocator's own records: pool batch nodes, chunk
// records, chunk map leaves" (docs/stats.md). ChunkMap::Set() maps every
// leaf a chunk needs first and reports the bytes through *meta_sys; when a
// later leaf cannot be mapped it returns false, leaving the earlier new
// leaves installed (they stay, by design). NewChunk() then dropped the
// `meta` it collected, so those leaves were never counted, now or later:
// stacks_meta_sys undercounted by 512 KiB per leaf.
//
// Repro: a chunk that straddles an 8 GiB leaf boundary in address space no
// leaf covers yet (a chunk source returning it), with RLIMIT_AS leaving
// room for one leaf and not two.

constexpr uintptr_t kLeafSpan = uintptr_t{1} << 33;     // 8 GiB per leaf.
constexpr size_t kLeafBytes = size_t{1} << 19;          // 2^16 pointers.
constexpr uintptr_t kBoundary = uintptr_t{0x5a} << 40;  // A multiple of it.
static_assert(kBoundary % kLeafSpan == 0);

void* chunk_mem = nullptr;
size_t chunk_len = 0;
void* Fixed(size_t n) { return n <= chunk_len ? chunk_mem : nullptr; }

TEST(MetaLeafDeathTest, LeavesMappedByAFailedSetAreCounted) {
  if (sanitizer::kTsan)
    GTEST_SKIP() << "TSan needs memory of its own that RLIMIT_AS refuses";
  EXPECT_EXIT(
      {
        const size_t n = kMaxOrderStack;  // Order 8: 2 MiB + 8 KiB chunks.
        // Warm this M: a record chunk, the overflow handler, order 0.
        stackfree(stackalloc(4096), 4096);
        chunk_len = StackallocTestPeer::ChunkBytes(8);
        const uintptr_t at = kBoundary - (1 << 20);  // Straddles it.
        chunk_mem =
            mmap(reinterpret_cast<void*>(at), chunk_len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (chunk_mem != reinterpret_cast<void*>(at)) exit(10);
        StackallocTestPeer::SetChunkSource(&Fixed);
        const MemStats st0 = ReadMemStats();
        // Room for one 512 KiB leaf, not two.
        struct rlimit rl;
        getrlimit(RLIMIT_AS, &rl);
        const rlim_t old = rl.rlim_cur;
        rl.rlim_cur = VmSize() + kLeafBytes + (256 << 10);
        setrlimit(RLIMIT_AS, &rl);
        void* v = stackalloc(n);  // Leaf 1 mapped, leaf 2 refused.
        if (v != nullptr) exit(11);
        rl.rlim_cur = old;
        setrlimit(RLIMIT_AS, &rl);
        v = stackalloc(n);  // Leaf 2 mapped now; the chunk is ours.
        if (v == nullptr) exit(12);
        const MemStats st1 = ReadMemStats();
        const uint64_t meta = st1.stacks_meta_sys - st0.stacks_meta_sys;
        fprintf(stderr,
                "two new leaves (%zu bytes) serve the chunk; "
                "stacks_meta_sys grew by %llu\n",
                2 * kLeafBytes, static_cast<unsigned long long>(meta));
        exit(meta >= 2 * kLeafBytes ? 0 : 1);
      },
      testing::ExitedWithCode(0),
      "two new leaves \\(1048576 bytes\\) serve the chunk; stacks_meta_sys "
      "grew by [0-9]+");
}

}  // namespace
}  // namespace stackalloc
