// BoostStackAllocator under boost::context::fiber and boost::fibers::fiber:
// sizes, failure, fibers on many threads and across threads, deallocation
// on another fiber's stack, and the overflow report. Boost.Fiber's
// work_stealing scheduler can be set up once per process, so its test has a
// binary of its own (boost_fiber_test.cc).

#include "boost_stack_allocator.h"

#include <unistd.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "boost/context/fiber.hpp"
#include "boost/fiber/all.hpp"
#include "gtest/gtest.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace {

using boost::context::fiber;
using boost::context::stack_context;
using testing_util::RecurseUntilOverflow;

// Boost keeps a copy of the allocator in every fiber: it must be small (two
// words, its StackClass) and trivially copyable, so copying costs nothing
// and shares nothing.
static_assert(sizeof(BoostStackAllocator) == 2 * sizeof(size_t));
static_assert(std::is_trivially_copyable_v<BoostStackAllocator>);
static_assert(std::is_nothrow_copy_constructible_v<BoostStackAllocator>);

// The stack statistics a test must leave as it found them.
struct Counts {
  uint64_t inuse;
  uint64_t order_inuse[kNumStackOrders];
  uint64_t large_inuse;
  bool operator==(const Counts& o) const {
    if (inuse != o.inuse || large_inuse != o.large_inuse) return false;
    for (int k = 0; k < kNumStackOrders; ++k) {
      if (order_inuse[k] != o.order_inuse[k]) return false;
    }
    return true;
  }
};

Counts ReadCounts() {
  const MemStats st = ReadMemStats();
  Counts c{st.stacks_inuse, {}, st.large_stacks_inuse};
  for (int k = 0; k < kNumStackOrders; ++k)
    c.order_inuse[k] = st.orders[k].inuse;
  return c;
}

// The cheapest fiber: runs to its end when first resumed.
fiber Return(fiber&& caller) { return std::move(caller); }

TEST(BoostStackAllocatorTest, SizesAreStackallocsOrders) {
  EXPECT_EQ(BoostStackAllocator().size(),
            boost::context::stack_traits::default_size());
  EXPECT_EQ(BoostStackAllocator(4096).size(), 4096u);
  EXPECT_EQ(BoostStackAllocator(4097).size(), 8192u);
  EXPECT_EQ(BoostStackAllocator(100 << 10).size(), 128u << 10);
  EXPECT_EQ(BoostStackAllocator(1 << 20).size(), 1u << 20);
  EXPECT_EQ(BoostStackAllocator((1 << 20) + 1).size(), (1u << 20) + 4096);

  for (size_t asked : {size_t{1}, size_t{5000}, size_t{64} << 10,
                       size_t{1} << 20, (size_t{3} << 20) + 17}) {
    SCOPED_TRACE(asked);
    BoostStackAllocator salloc(asked);
    const Counts before = ReadCounts();
    stack_context sctx = salloc.allocate();
    ASSERT_NE(sctx.sp, nullptr);
    EXPECT_EQ(sctx.size, salloc.size());
    EXPECT_GE(sctx.size, asked);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(sctx.sp) % 4096, 0u);
    // What we report is what stackalloc counts: the stack is ours.
    EXPECT_EQ(ReadCounts().inuse, before.inuse + sctx.size);
    // Every usable byte is writable (the top and the bottom at least).
    static_cast<volatile char*>(sctx.sp)[-1] = 1;
    (static_cast<volatile char*>(sctx.sp) - sctx.size)[0] = 1;
    salloc.deallocate(sctx);
    EXPECT_EQ(ReadCounts(), before);
  }
}

TEST(BoostStackAllocatorTest, ARefusedStackThrowsBadAllocAndChangesNothing) {
  BoostStackAllocator salloc(size_t{1} << 41);
  const Counts before = ReadCounts();
  EXPECT_THROW(salloc.allocate(), std::bad_alloc);
  EXPECT_THROW(fiber(std::allocator_arg, salloc, Return), std::bad_alloc);
  EXPECT_EQ(ReadCounts(), before);
}

// Wraps BoostStackAllocator to see what Boost does with it: which stack each
// fiber got, and that Boost gave it back (from whichever copy).
struct Seen {
  stack_context sctx;
  int allocated = 0;
  int deallocated = 0;
  bool OnStack(const void* p) const {
    auto a = reinterpret_cast<uintptr_t>(p);
    auto hi = reinterpret_cast<uintptr_t>(sctx.sp);
    return hi - sctx.size <= a && a < hi;
  }
};

class Recording {
 public:
  Recording(BoostStackAllocator salloc, Seen* seen)
      : salloc_(salloc), seen_(seen) {}
  stack_context allocate() {
    seen_->sctx = salloc_.allocate();
    ++seen_->allocated;
    return seen_->sctx;
  }
  void deallocate(stack_context& sctx) noexcept {
    if (sctx.sp == seen_->sctx.sp) ++seen_->deallocated;
    salloc_.deallocate(sctx);
  }

 private:
  BoostStackAllocator salloc_;
  Seen* seen_;
};

// A fiber that checks it runs on the stack we gave it, yields once, and
// finishes.
struct YieldOnce {
  Seen* seen;
  int* steps;
  fiber operator()(fiber&& caller) const {
    int here = 0;
    if (seen->OnStack(&here)) ++*steps;
    caller = std::move(caller).resume();
    if (seen->OnStack(&here)) ++*steps;
    return std::move(caller);
  }
};

// A simple barrier (C++17 has none).
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    const int64_t generation = generation_;
    if (++waiting_ == n_) {
      waiting_ = 0;
      ++generation_;
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [&] { return generation_ != generation; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  const int n_;
  int waiting_ = 0;
  int64_t generation_ = 0;
};

class ManyFibersTest : public testing::TestWithParam<size_t> {};

// 10,000 fibers on 4 threads, in waves: each thread creates kWave fibers,
// resumes each to its yield, then resumes each to its end (the stack goes
// back on the thread's own stack). Once, all threads hold a wave at the same
// moment and the statistics count exactly those stacks.
TEST_P(ManyFibersTest, TenThousandFibersOnFourThreads) {
  constexpr int kThreads = 4;
  constexpr int kFibersPerThread = 2500;
  constexpr int kWave = 50;
  const BoostStackAllocator salloc(GetParam());
  const Counts before = ReadCounts();
  const int order = StackOrder(salloc.size());
  Barrier holding(kThreads + 1), checked(kThreads + 1);
  std::vector<int> ran_on_own_stack(kThreads), wrong(kThreads);

  auto work = [&](int t) {
    std::vector<Seen> seen(kWave);
    std::vector<int> steps(kWave);
    std::vector<fiber> fibers(kWave);
    for (int done = 0; done < kFibersPerThread; done += kWave) {
      for (int i = 0; i < kWave; ++i) {
        seen[i] = Seen();
        steps[i] = 0;
        fibers[i] = fiber(std::allocator_arg, Recording(salloc, &seen[i]),
                          YieldOnce{&seen[i], &steps[i]});
        fibers[i] = std::move(fibers[i]).resume();  // To its yield.
        if (!fibers[i]) ++wrong[t];
      }
      if (done == 0) {
        holding.Wait();
        checked.Wait();
      }
      for (int i = 0; i < kWave; ++i) {
        fibers[i] = std::move(fibers[i]).resume();  // To its end.
        if (fibers[i] || seen[i].allocated != 1 || seen[i].deallocated != 1) {
          ++wrong[t];
        }
        ran_on_own_stack[t] += steps[i];
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(work, t);
  holding.Wait();
  const MemStats during = ReadMemStats();
  EXPECT_EQ(during.stacks_inuse,
            before.inuse + uint64_t{kThreads} * kWave * salloc.size());
  EXPECT_EQ(
      during.orders[order].inuse,
      before.order_inuse[order] + uint64_t{kThreads} * kWave * salloc.size());
  checked.Wait();
  for (std::thread& t : threads) t.join();

  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(wrong[t], 0) << "thread " << t;
    // Two steps per fiber, each on the stack the fiber got from us.
    EXPECT_EQ(ran_on_own_stack[t], 2 * kFibersPerThread) << "thread " << t;
  }
  EXPECT_EQ(ReadCounts(), before);
}

INSTANTIATE_TEST_SUITE_P(Sizes, ManyFibersTest,
                         testing::Values(size_t{4} << 10, size_t{16} << 10,
                                         size_t{128} << 10),
                         [](const testing::TestParamInfo<size_t>& p) {
                           return std::to_string(p.param >> 10) + "KiB";
                         });

// A fiber started on one thread and finished on another: its stack is
// allocated by the first thread's M and freed by the second's.
TEST(BoostStackAllocatorTest, AFiberCreatedOnOneThreadFinishesOnAnother) {
  const Counts before = ReadCounts();
  Seen seen;
  // Kernel thread ids: std::this_thread::get_id() is pthread_self(), which
  // glibc declares const, so the compiler may read it once per function,
  // before the fiber moves to another thread.
  pid_t first = 0, second = 0;
  fiber f;
  std::thread([&] {
    f = fiber(std::allocator_arg,
              Recording(BoostStackAllocator(16 << 10), &seen),
              [&](fiber&& caller) {
                first = gettid();
                caller = std::move(caller).resume();
                second = gettid();
                return std::move(caller);
              });
    f = std::move(f).resume();
    EXPECT_EQ(ReadCounts().inuse, before.inuse + (16 << 10));
    // The second thread starts while the first lives: their ids differ.
    std::thread([&] { f = std::move(f).resume(); }).join();
  }).join();
  EXPECT_FALSE(f);
  EXPECT_NE(first, second);
  EXPECT_NE(second, 0);
  EXPECT_EQ(seen.allocated, 1);
  EXPECT_EQ(seen.deallocated, 1);
  EXPECT_EQ(ReadCounts(), before);
}

// A fiber destroyed before its end, on another thread than the one that
// made it: Boost unwinds it there (forced_unwind), then frees the stack.
TEST(BoostStackAllocatorTest, AnUnfinishedFiberIsUnwoundOnAnotherThread) {
  const Counts before = ReadCounts();
  struct Flag {
    bool* set;
    ~Flag() { *set = true; }
  };
  bool unwound = false;
  fiber f;
  std::thread([&] {
    f = fiber(std::allocator_arg, BoostStackAllocator(8 << 10),
              [&](fiber&& caller) {
                Flag flag{&unwound};
                caller = std::move(caller).resume();
                ADD_FAILURE() << "resumed after its last yield";
                return std::move(caller);
              });
    f = std::move(f).resume();
  }).join();
  std::thread([&] { fiber gone = std::move(f); }).join();
  EXPECT_TRUE(unwound);
  EXPECT_EQ(ReadCounts(), before);
}

// A fiber on our stack starts another and runs it to its end: Boost frees
// the inner stack while running on the outer one.
TEST(BoostStackAllocatorTest, AStackIsFreedOnTheStackOfTheNextFiber) {
  const Counts before = ReadCounts();
  Seen outer_seen, inner_seen;
  uint64_t inuse_after_inner = 0;
  fiber outer(std::allocator_arg, Recording(BoostStackAllocator(), &outer_seen),
              [&](fiber&& caller) {
                fiber inner(std::allocator_arg,
                            Recording(BoostStackAllocator(4096), &inner_seen),
                            Return);
                inner = std::move(inner).resume();  // Freed here.
                int here = 0;
                if (outer_seen.OnStack(&here)) {
                  inuse_after_inner = ReadMemStats().stacks_inuse;
                }
                return std::move(caller);
              });
  outer = std::move(outer).resume();
  EXPECT_EQ(inner_seen.deallocated, 1);
  EXPECT_EQ(outer_seen.deallocated, 1);
  EXPECT_EQ(inuse_after_inner, before.inuse + outer_seen.sctx.size);
  EXPECT_EQ(ReadCounts(), before);
}

// Boost.Fiber on one thread (its default round_robin scheduler): fibers that
// yield to each other, all on our stacks, all freed when the thread's
// scheduler goes.
TEST(BoostStackAllocatorTest, BoostFibersOnOneThread) {
  constexpr int kFibers = 200;
  const Counts before = ReadCounts();
  std::vector<Seen> seen(kFibers);
  std::vector<int> on_our_stack(kFibers);
  std::thread([&] {
    std::vector<boost::fibers::fiber> fibers;
    for (int i = 0; i < kFibers; ++i) {
      fibers.emplace_back(std::allocator_arg,
                          Recording(BoostStackAllocator(32 << 10), &seen[i]),
                          [&, i] {
                            int here = 0;
                            for (int step = 0; step < 3; ++step) {
                              if (seen[i].OnStack(&here)) ++on_our_stack[i];
                              boost::this_fiber::yield();
                            }
                          });
    }
    for (auto& f : fibers) f.join();
  }).join();
  for (int i = 0; i < kFibers; ++i) {
    EXPECT_EQ(on_our_stack[i], 3) << "fiber " << i;
    EXPECT_EQ(seen[i].allocated, 1) << "fiber " << i;
    EXPECT_EQ(seen[i].deallocated, 1) << "fiber " << i;
  }
  EXPECT_EQ(ReadCounts(), before);
}

// --- Misuse and overflow: death tests. ---

TEST(BoostStackAllocatorDeathTest, DeallocatingAnEmptyStackContextDies) {
  EXPECT_DEATH(
      {
        stack_context empty;
        BoostStackAllocator().deallocate(empty);
      },
      "fatal error: BoostStackAllocator: deallocate of an empty "
      "stack_context");
}

TEST(BoostStackAllocatorDeathTest, DeallocatingTwiceDies) {
  EXPECT_DEATH(
      {
        BoostStackAllocator salloc(16 << 10);
        stack_context sctx = salloc.allocate();
        salloc.deallocate(sctx);
        salloc.deallocate(sctx);
      },
      "fatal error: stackfree: 16384-byte stack 0x[0-9a-f]+ freed twice");
}

TEST(BoostStackAllocatorDeathTest, AContextFiberThatOverflowsIsReported) {
  EXPECT_DEATH(
      {
        fiber f(std::allocator_arg, BoostStackAllocator(16 << 10),
                [](fiber&& caller) {
                  RecurseUntilOverflow();
                  return std::move(caller);
                });
        f = std::move(f).resume();
      },
      testing_util::OverflowReportPattern(16 << 10));
}

TEST(BoostStackAllocatorDeathTest, ABoostFiberThatOverflowsIsReported) {
  EXPECT_DEATH(
      {
        boost::fibers::fiber f(std::allocator_arg,
                               BoostStackAllocator(64 << 10),
                               [] { RecurseUntilOverflow(); });
        f.join();
      },
      testing_util::OverflowReportPattern(64 << 10));
}

// A thread that runs a fiber it did not allocate reports the overflow too,
// once it has called PrepareThread().
TEST(BoostStackAllocatorDeathTest, AnOverflowOnAnotherThreadIsReported) {
  EXPECT_DEATH(
      {
        fiber f(std::allocator_arg, BoostStackAllocator(4096),
                [](fiber&& caller) {
                  RecurseUntilOverflow();
                  return std::move(caller);
                });
        std::thread([&] {
          BoostStackAllocator::PrepareThread();
          f = std::move(f).resume();
        }).join();
      },
      testing_util::OverflowReportPattern(4096));
}

}  // namespace
}  // namespace stackalloc
