// stacks_meta_sys: "the allocator's own records: pool batch nodes, chunk
// records, chunk map leaves" (docs/stats.md). ChunkMap::Set() maps every
// leaf a chunk needs first and reports the bytes through *meta_sys; when a
// later leaf cannot be mapped it returns false, leaving the earlier new
// leaves installed (they stay, by design) -- but NewChunk() (stack_heap.cc)
// then drops the local `meta` it collected, so those leaves are never
// counted, now or later. stacks_meta_sys undercounts by 512 KiB per leaf.
//
// Repro: a chunk that straddles an 8 GiB leaf boundary in address space no
// leaf covers yet (a chunk source returning it), with RLIMIT_AS leaving
// room for one leaf and not two.

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "base/sanitizers.h"
#include "gtest/gtest.h"
#include "stack/test_peer.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/process_info.h"

namespace stackalloc {
namespace {

using internal::StackallocTestPeer;

constexpr uintptr_t kLeafSpan = uintptr_t{1} << 33;     // 8 GiB per leaf.
constexpr size_t kLeafBytes = size_t{1} << 19;          // 2^16 pointers.
constexpr uintptr_t kBoundary = uintptr_t{0x5a} << 40;  // A multiple of it.
static_assert(kBoundary % kLeafSpan == 0, "");

void* chunk_mem = nullptr;
size_t chunk_len = 0;
void* Fixed(size_t n) { return n <= chunk_len ? chunk_mem : nullptr; }

using testing_util::VmSize;

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
      testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace stackalloc
