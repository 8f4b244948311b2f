// Boost.Fiber's work_stealing scheduler on 4 threads, every fiber on a
// BoostStackAllocator stack: thousands of fibers that yield, migrate between
// threads, finish wherever they are, and are freed there. A binary of its
// own: work_stealing can be set up only once per process (its threads meet
// at a static barrier and take ids from a static counter).

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "absl/base/config.h"
#include "boost/fiber/all.hpp"
#include "boost_stack_allocator.h"
#include "gtest/gtest.h"
#include "stats/mstats.h"

#ifdef ABSL_HAVE_THREAD_SANITIZER
// ThreadSanitizer's runtime has them; its public header does not declare
// them.
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif

namespace stackalloc {
namespace {

using boost::context::stack_context;

constexpr int kThreads = 4;
constexpr int kFibers = 4000;
constexpr int kYields = 8;
// Fibers that must have moved between threads halfway, and how long fibers
// go on yielding for them at most (the machine may be loaded).
constexpr int kMinMoved = 100;
constexpr auto kMoveTimeout = std::chrono::seconds(60);

// Under ThreadSanitizer, the calling thread's memory accesses go unchecked
// while one lives (its synchronization still counts); elsewhere, nothing.
// For threads that run Boost.Fiber, which TSan cannot follow with Debian's
// Boost (README, "Sanitizers"): its libboost_fiber.so is not instrumented, so
// TSan sees neither its spinlocks nor its run queues and takes every fiber
// that moved to another thread for a race with itself; and its headers hand
// a context's last reference over with atomic_thread_fence, which TSan does
// not model. What TSan can check of our stacks moving between threads, it
// checks in boost_stack_allocator_test (boost::context::fiber, whose every
// handoff there goes through instrumented code).
class UncheckedByTsan {
 public:
  // Empty without TSan, and not "= default" for that.
  // NOLINTBEGIN(modernize-use-equals-default)
  UncheckedByTsan() {
#ifdef ABSL_HAVE_THREAD_SANITIZER
    __tsan_ignore_thread_begin();
#endif
  }
  ~UncheckedByTsan() {
#ifdef ABSL_HAVE_THREAD_SANITIZER
    __tsan_ignore_thread_end();
#endif
  }
  // NOLINTEND(modernize-use-equals-default)
  UncheckedByTsan(const UncheckedByTsan&) = delete;
  UncheckedByTsan& operator=(const UncheckedByTsan&) = delete;
};

// Every stack our allocator handed out in this test, [lo, hi): a fiber
// proves its stack is ours by finding the address of one of its locals in
// one of them.
class Stacks {
 public:
  void Add(const stack_context& sctx) {
    auto hi = reinterpret_cast<uintptr_t>(sctx.sp);
    std::lock_guard<std::mutex> lock(mu_);
    ranges_[hi - sctx.size] = hi;
  }
  bool Contains(uintptr_t a) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = ranges_.upper_bound(a);
    if (it == ranges_.begin()) return false;
    --it;
    return it->first <= a && a < it->second;
  }

 private:
  mutable std::mutex mu_;
  std::map<uintptr_t, uintptr_t> ranges_;
};

// BoostStackAllocator, counting what Boost takes and gives back.
class Counting {
 public:
  Counting(BoostStackAllocator salloc, Stacks* stacks,
           std::atomic<int>* allocated, std::atomic<int>* deallocated)
      : salloc_(salloc),
        stacks_(stacks),
        allocated_(allocated),
        deallocated_(deallocated) {}
  stack_context allocate() {
    stack_context sctx = salloc_.allocate();
    stacks_->Add(sctx);
    allocated_->fetch_add(1);
    return sctx;
  }
  void deallocate(stack_context& sctx) noexcept {
    deallocated_->fetch_add(1);
    salloc_.deallocate(sctx);
  }

 private:
  BoostStackAllocator salloc_;
  Stacks* stacks_;
  std::atomic<int>* allocated_;
  std::atomic<int>* deallocated_;
};

// What one fiber saw; written by the fiber, read after every thread joined.
struct Trace {
  uintptr_t local = 0;      // Address of one of its locals.
  int steps = 0;            // Steps taken (more than kYields when it finished).
  std::set<pid_t> threads;  // Kernel thread ids it ran on.
};

TEST(BoostFiberTest, WorkStealingOnFourThreadsRunsEveryFiberOnOurStacks) {
  const MemStats before = ReadMemStats();
  Stacks stacks;
  std::atomic<int> allocated{0}, deallocated{0}, joined{0};
  // Fibers that ran on two threads or more.
  std::atomic<int> moved{0};
  // The other threads start stealing once every fiber took its first step
  // on the spawning thread: from then on, a stolen fiber is a fiber that
  // moves. (Work stealing takes work only from others when a thread's own
  // queue is empty.)
  std::atomic<bool> steal{false}, done{false};
  std::vector<Trace> traces(kFibers);

  auto thread = [&](int index) {
    UncheckedByTsan unchecked;
    // Overflows on fibers that migrate here are reported (see
    // boost_stack_allocator.h).
    BoostStackAllocator::PrepareThread();
    boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(
        kThreads);
    if (index != 0) {
      // Holds the thread (not a fiber wait: its scheduler does not run, so
      // it steals nothing), then steals until the spawner is done.
      while (!steal.load()) std::this_thread::yield();
      while (!done.load()) {
        boost::this_fiber::sleep_for(std::chrono::microseconds(100));
      }
      return;
    }
    const BoostStackAllocator salloc(16 << 10);
    const auto give_up = std::chrono::steady_clock::now() + kMoveTimeout;
    std::vector<boost::fibers::fiber> fibers;
    for (int i = 0; i < kFibers; ++i) {
      Trace* trace = &traces[i];
      fibers.emplace_back(
          std::allocator_arg,
          Counting(salloc, &stacks, &allocated, &deallocated),
          [trace, &moved, give_up] {
            int local = 0;
            trace->local = reinterpret_cast<uintptr_t>(&local);
            const pid_t first = gettid();
            bool moved_here = false;
            for (;;) {
              // gettid(), not std::this_thread::get_id(): glibc declares
              // pthread_self() const, so the compiler may read it once per
              // function, before the fiber moves.
              const pid_t now = gettid();
              trace->threads.insert(now);
              if (!moved_here && now != first) {
                moved_here = true;
                moved.fetch_add(1);
              }
              // kYields yields at least; then a fiber that moved is done,
              // and the others go on yielding until kMinMoved fibers
              // moved (or the deadline passed), so the other threads, whose
              // queues empty as their fibers finish, keep stealing.
              if (++trace->steps > kYields &&
                  (moved_here || moved.load() >= kMinMoved ||
                   std::chrono::steady_clock::now() > give_up)) {
                break;
              }
              boost::this_fiber::yield();
            }
          });
    }
    // Every fiber's first step, here: this fiber goes to the back of the
    // queue, behind all of them.
    boost::this_fiber::yield();
    steal.store(true);
    for (auto& f : fibers) {
      f.join();
      joined.fetch_add(1);
    }
    done.store(true);
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(thread, i);
  for (std::thread& t : threads) t.join();

  // Every fiber ran to its end on a stack of ours, and was joined; every
  // stack went back (each thread's scheduler frees what finished there, at
  // the latest when the thread exits).
  EXPECT_EQ(joined.load(), kFibers);
  EXPECT_EQ(allocated.load(), kFibers);
  EXPECT_EQ(deallocated.load(), kFibers);
  int migrated = 0;
  std::set<pid_t> ran_on;
  for (int i = 0; i < kFibers; ++i) {
    const Trace& t = traces[i];
    ASSERT_GT(t.steps, kYields) << "fiber " << i;
    ASSERT_TRUE(stacks.Contains(t.local))
        << "fiber " << i << " ran at 0x" << std::hex << t.local;
    if (t.threads.size() > 1) ++migrated;
    ran_on.insert(t.threads.begin(), t.threads.end());
  }
  // Work was stolen: fibers moved from the spawning thread to the others
  // halfway through.
  EXPECT_GE(ran_on.size(), 2u);
  EXPECT_EQ(migrated, moved.load());
  EXPECT_GE(migrated, kMinMoved);

  const MemStats after = ReadMemStats();
  EXPECT_EQ(after.stacks_inuse, before.stacks_inuse);
  for (int k = 0; k < kNumStackOrders; ++k) {
    EXPECT_EQ(after.orders[k].inuse, before.orders[k].inuse) << "order " << k;
  }
  RecordProperty("migrated", migrated);
  RecordProperty("threads", static_cast<int>(ran_on.size()));
}

}  // namespace
}  // namespace stackalloc
