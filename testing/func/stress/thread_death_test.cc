// Threads that die mid-use: pthread_exit() from deep in a call while the
// thread holds stacks, pthread_cancel() at a cancellation point between
// its calls (unwinding frees what its frames held), and a scavenger on a
// thread with no M meanwhile. The stacks a dead thread held stay in use,
// exactly, until someone frees them; its M goes idle, caches intact; no
// stack is handed out twice; contents stay intact.

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "sched/m.h"
#include "stackalloc.h"
#include "stats/mstats.h"

namespace stackalloc {
namespace {

constexpr size_t kSize = 16 << 10;

struct Held {
  std::vector<void*> stacks;
};

[[noreturn]] void ExitFromDeepInside(Held* held, int depth) {
  if (depth > 0) ExitFromDeepInside(held, depth - 1);
  for (int i = 0; i < 10; ++i) {
    void* v = stackalloc(kSize);
    memset(v, 0x40 + i, kSize);
    held->stacks.push_back(v);
  }
  pthread_exit(nullptr);
}

void* ExitingThread(void* arg) {
  ExitFromDeepInside(static_cast<Held*>(arg), 8);
}

TEST(ThreadDeathTest, PthreadExitWhileHoldingStacks) {
  const uint64_t inuse0 = ReadMemStats().stacks_inuse;
  Held held;
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, nullptr, &ExitingThread, &held), 0);
  ASSERT_EQ(pthread_join(t, nullptr), 0);
  ASSERT_EQ(held.stacks.size(), 10u);
  // Still the dead thread's: in use, exactly.
  EXPECT_EQ(ReadMemStats().stacks_inuse - inuse0, 10 * kSize);
  for (size_t i = 0; i < held.stacks.size(); ++i) {
    const auto* p = static_cast<const unsigned char*>(held.stacks[i]);
    EXPECT_EQ(p[0], 0x40 + i);
    EXPECT_EQ(p[kSize - 1], 0x40 + i);
  }
  // Another thread's stacks now: this one frees them.
  std::set<void*> live(held.stacks.begin(), held.stacks.end());
  std::vector<void*> more;
  for (int i = 0; i < 50; ++i) {
    void* v = stackalloc(kSize);
    EXPECT_TRUE(live.insert(v).second) << "handed out twice: " << v;
    more.push_back(v);
  }
  for (void* v : held.stacks) stackfree(v, kSize);
  for (void* v : more) stackfree(v, kSize);
  EXPECT_EQ(ReadMemStats().stacks_inuse, inuse0);
}

// Deferred cancellation: the thread is cancelled at usleep(), between its
// calls; unwinding runs its destructors, which free what they held.
struct Stack {
  void* v = stackalloc(kSize);
  ~Stack() { stackfree(v, kSize); }
};

std::atomic<int> rounds{0};
void* CancelledThread(void*) {
  for (;;) {
    Stack a, b;
    memset(a.v, 1, 64);
    memset(b.v, 2, 64);
    rounds.fetch_add(1);
    usleep(100);  // A cancellation point.
  }
}

TEST(ThreadDeathTest, PthreadCancelUnwindsAndFrees) {
  const MemStats st0 = ReadMemStats();
  for (int i = 0; i < 20; ++i) {
    rounds = 0;
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, nullptr, &CancelledThread, nullptr), 0);
    while (rounds.load() < 3) usleep(50);
    ASSERT_EQ(pthread_cancel(t), 0);
    void* ret = nullptr;
    ASSERT_EQ(pthread_join(t, &ret), 0);
    EXPECT_EQ(ret, PTHREAD_CANCELED);
  }
  EXPECT_EQ(ReadMemStats().stacks_inuse, st0.stacks_inuse);
}

// ScavengeStacks() from a thread with no M while others churn and die:
// every stack comes back, the counters add up, and no M stays borrowed.
TEST(ThreadDeathTest, ScavengerWithoutAnMWhileThreadsChurnAndDie) {
  const uint64_t inuse0 = ReadMemStats().stacks_inuse;
  std::atomic<bool> stop{false};
  std::thread scavenger([&] {
    while (!stop.load()) {
      ScavengeStacks();
      EXPECT_EQ(internal::tls_m, internal::UnboundM());
    }
  });
  for (int round = 0; round < 40; ++round) {
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i) {
      ts.emplace_back([i] {
        std::vector<void*> vs;
        for (int k = 0; k < 64; ++k) {
          void* v = stackalloc(kSize << (k % 3));
          *static_cast<uintptr_t*>(v) = reinterpret_cast<uintptr_t>(v);
          vs.push_back(v);
        }
        for (int k = 0; k < 64; ++k) {
          ASSERT_EQ(*static_cast<uintptr_t*>(vs[k]),
                    reinterpret_cast<uintptr_t>(vs[k]));
          stackfree(vs[k], kSize << (k % 3));
        }
        if (i == 0) pthread_exit(nullptr);
      });
    }
    for (std::thread& t : ts) t.join();
  }
  stop = true;
  scavenger.join();
  ScavengeStacks();
  const MemStats st = ReadMemStats();
  EXPECT_EQ(st.stacks_inuse, inuse0);
  EXPECT_EQ(st.stacks_cached, 0u);
}

}  // namespace
}  // namespace stackalloc
