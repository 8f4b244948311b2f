// StackMargin() (stackalloc.h) on every stack it knows, against bounds the
// test learns on its own (the StackSource and Boost allocator that handed the
// stack out, a thread's stack given to pthread, the M's signal stack): to
// within a page of the truth, shrinking by exactly each frame's size, and a
// recursion that stops when it runs low never overflows, on a G (its first
// stack and a WithStack segment), on a Boost fiber on BoostStackAllocator,
// on plain threads. On a stack of unknown bounds it is 0, and
// proc::WithStack budgets with the same answer. (The main thread, whose
// bounds depend on RLIMIT_STACK: main_thread_test.cc.)

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <utility>

#include "absl/base/attributes.h"
#include "base/sanitizers.h"
#include "boost/context/fiber.hpp"
#include "boost/context/fixedsize_stack.hpp"
#include "boost_stack_allocator.h"
#include "gtest/gtest.h"
#include "proc/proc.h"
#include "sched/m.h"
#include "stackalloc.h"
#include "testing/func/margin/recursion.h"

namespace stackalloc {
namespace {

using boost::context::fiber;
using testing_util::CheckMarginTrace;
using testing_util::kMarginStop;
using testing_util::MarginTrace;
using testing_util::RecurseAndCheck;
using testing_util::RecurseWhileRoom;

uintptr_t FrameAddress(const void* frame) {
  return reinterpret_cast<uintptr_t>(frame);
}

// (Frames are found by their frame address, not a local's: under ASan with
// detect_stack_use_after_return, locals live in a fake stack on the heap.)

// Stacks handed out, as their allocator saw them: the truth the margin is
// measured against.
struct Known {
  std::atomic<uintptr_t> lo[64];
  std::atomic<size_t> size[64];
  std::atomic<int> n{0};

  void Add(const void* v, size_t bytes) {
    const int i = n.fetch_add(1) % 64;
    lo[i].store(reinterpret_cast<uintptr_t>(v));
    size[i].store(bytes);
  }
  // The lowest byte of the recorded stack holding a, or 0.
  uintptr_t LowestHolding(uintptr_t a) const {
    for (int i = 0; i < 64 && i < n.load(); ++i) {
      const uintptr_t l = lo[i].load();
      if (a - l < size[i].load()) return l;
    }
    return 0;
  }
};
Known known;

void* RecordingAlloc(size_t n) {
  void* v = stackalloc(n);
  known.Add(v, n);
  return v;
}
void Free(void* v, size_t n) { stackfree(v, n); }

// BoostStackAllocator, with every stack it hands out recorded.
struct RecordingBoostAllocator {
  BoostStackAllocator a;
  boost::context::stack_context allocate() {
    boost::context::stack_context sc = a.allocate();
    known.Add(static_cast<char*>(sc.sp) - sc.size, sc.size);
    return sc;
  }
  void deallocate(boost::context::stack_context& sc) { a.deallocate(sc); }
};

TEST(StackMarginTest, OnAGsFirstStackAndOnAWithStackSegment) {
  proc::Options o;
  o.stack_source = {&RecordingAlloc, &Free};
  proc::Start(o);
  std::atomic<uintptr_t> first_lo{0}, segment_lo{0};
  std::atomic<size_t> in_segment{0};
  auto first = std::make_unique<MarginTrace>();
  auto segment = std::make_unique<MarginTrace>();
  proc::Go([&] {
    first_lo.store(
        known.LowestHolding(FrameAddress(__builtin_frame_address(0))));
    RecurseWhileRoom(kMarginStop, first.get());
    proc::WithStack(64 << 10, [&] {
      segment_lo.store(
          known.LowestHolding(FrameAddress(__builtin_frame_address(0))));
      in_segment.store(StackMargin());
      RecurseWhileRoom(kMarginStop, segment.get());
    });
  });
  proc::Wait();
  proc::Stop();
  ASSERT_NE(first_lo.load(), 0u);
  ASSERT_NE(segment_lo.load(), 0u);
  EXPECT_EQ(CheckMarginTrace(*first, first_lo.load()), "") << "G's stack";
  EXPECT_EQ(CheckMarginTrace(*segment, segment_lo.load()), "") << "segment";
  // WithStack asked for 64 KiB: the segment has it, and its reserves.
  EXPECT_GE(in_segment.load(), size_t{64} << 10);
}

TEST(StackMarginTest, OnABoostFiberOnBoostStackAllocator) {
  for (size_t kib : {size_t{4}, size_t{64}, size_t{1024}, size_t{4096}}) {
    const size_t bytes = kib << 10;
    uintptr_t lo = 0;
    auto t = std::make_unique<MarginTrace>();
    fiber f(
        std::allocator_arg, RecordingBoostAllocator{BoostStackAllocator(bytes)},
        [&](fiber&& caller) {
          lo = known.LowestHolding(FrameAddress(__builtin_frame_address(0)));
          RecurseWhileRoom(kMarginStop, t.get());
          return std::move(caller);
        });
    f = std::move(f).resume();
    ASSERT_NE(lo, 0u) << kib;
    EXPECT_EQ(CheckMarginTrace(*t, lo), "") << kib << " KiB";
  }
}

TEST(StackMarginTest, OnPlainThreadsWithAndWithoutAnM) {
  for (bool bind : {false, true}) {
    std::thread([bind] {
      if (bind) getm();
      pthread_attr_t attr;
      void* addr = nullptr;
      size_t size = 0;
      ASSERT_EQ(pthread_getattr_np(pthread_self(), &attr), 0);
      pthread_attr_getstack(&attr, &addr, &size);
      pthread_attr_destroy(&attr);
      EXPECT_EQ(RecurseAndCheck(FrameAddress(addr)), "")
          << (bind ? "with an M" : "without an M");
    }).join();
  }
}

// A thread on a stack the test mapped itself: the bounds are the test's.
void* OnGivenStack(void* lo) {
  EXPECT_EQ(RecurseAndCheck(FrameAddress(lo)), "");
  return nullptr;
}

TEST(StackMarginTest, OnAThreadStackGivenToPthread) {
  constexpr size_t kSize = 1 << 20;
  void* mem = mmap(nullptr, kSize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, mem, kSize);
  pthread_t t;
  ASSERT_EQ(pthread_create(&t, &attr, &OnGivenStack, mem), 0);
  pthread_join(t, nullptr);
  pthread_attr_destroy(&attr);
  munmap(mem, kSize);
}

// A handler on the alternate signal stack the M gave its thread knows its
// room; on a signal stack not ours (ASan gives every thread its own, which
// the M then leaves alone) the margin is 0.
std::atomic<size_t> handler_margin{0};
std::atomic<uintptr_t> handler_frame{0};

void OnUsr1(int) {
  handler_margin.store(StackMargin());
  handler_frame.store(FrameAddress(__builtin_frame_address(0)));
}

TEST(StackMarginTest, InAHandlerOnTheSignalStack) {
  struct sigaction sa {
  }, old;
  sa.sa_handler = &OnUsr1;
  sa.sa_flags = SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR1, &sa, &old), 0);
  std::thread([] {
    M* m = getm();
    handler_margin.store(12345);
    pthread_kill(pthread_self(), SIGUSR1);
    if (m->sigaltstack_installed) {
      const auto lo = FrameAddress(m->sigaltstack.load());
      const uintptr_t frame = handler_frame.load();
      ASSERT_LT(frame - lo, SignalStackBytes());
      EXPECT_LE(handler_margin.load(), frame - lo);
      EXPECT_LT(frame - lo - handler_margin.load(), 4096u);
    } else {
      EXPECT_EQ(handler_margin.load(), 0u);
    }
  }).join();
  sigaction(SIGUSR1, &old, nullptr);
}

TEST(StackMarginTest, AStackOfUnknownBoundsHasNone) {
  size_t margin = 12345;
  size_t room = 12345;
  fiber f(std::allocator_arg, boost::context::fixedsize_stack(65536),
          [&](fiber&& caller) {
            margin = StackMargin();
            room = proc::internal::StackRoom();
            return std::move(caller);
          });
  f = std::move(f).resume();
  EXPECT_EQ(margin, 0u);
  EXPECT_EQ(room, 0u);
}

// WithStack's budget is the margin, less what it keeps back below its last
// check: measured from neighbouring frames, the two agree to within those
// frames' sizes, on every kind of stack.
ABSL_ATTRIBUTE_NOINLINE void ExpectWithStackAgrees(const char* where) {
  const size_t margin = StackMargin();
  const size_t room = proc::internal::StackRoom();
  const size_t reserve = proc::kStackGuard + proc::SignalFrameReserve();
  ASSERT_GT(margin, reserve + 256) << where;
  const size_t implied = room + reserve;
  EXPECT_LT(implied > margin ? implied - margin : margin - implied, 256u)
      << where << ": margin " << margin << ", room " << room;
}

TEST(StackMarginTest, WithStackBudgetsWithTheSameAnswer) {
  ExpectWithStackAgrees("the main thread");
  std::thread([] { ExpectWithStackAgrees("a thread without an M"); }).join();
  fiber f(std::allocator_arg, BoostStackAllocator(64 << 10),
          [](fiber&& caller) {
            ExpectWithStackAgrees("a Boost fiber");
            return std::move(caller);
          });
  f = std::move(f).resume();
  proc::Options o;
  proc::Start(o);
  proc::Go([] {
    proc::WithStack(32 << 10, [] { ExpectWithStackAgrees("a G's segment"); });
  });
  proc::Wait();
  proc::Stop();
}

}  // namespace
}  // namespace stackalloc
