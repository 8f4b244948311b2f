#include "base/mutex.h"

#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "gtest/gtest.h"

namespace stackalloc {
namespace {

struct Counter {
  Mutex mu;
  CondVar cv;
  int n ABSL_GUARDED_BY(mu) = 0;
};

// Threads that add under MutexLock lose no update (TSan checks the same).
TEST(MutexTest, MutexLockExcludes) {
  Counter c;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c] {
      for (int i = 0; i < 10000; ++i) {
        MutexLock l(&c.mu);
        ++c.n;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  MutexLock l(&c.mu);
  EXPECT_EQ(c.n, 40000);
}

// Turns taken in strict alternation: each side waits in a loop for its own.
TEST(MutexTest, CondVarHandsOff) {
  constexpr int kRounds = 1000;
  Counter c;
  std::thread odd([&c] {
    for (int i = 0; i < kRounds; ++i) {
      MutexLock l(&c.mu);
      while (c.n % 2 == 0) c.cv.Wait(&c.mu);
      ++c.n;
      c.cv.SignalAll();
    }
  });
  for (int i = 0; i < kRounds; ++i) {
    MutexLock l(&c.mu);
    while (c.n % 2 == 1) c.cv.Wait(&c.mu);
    ++c.n;
    c.cv.Signal();
  }
  odd.join();
  MutexLock l(&c.mu);
  EXPECT_EQ(c.n, 2 * kRounds);
}

}  // namespace
}  // namespace stackalloc
