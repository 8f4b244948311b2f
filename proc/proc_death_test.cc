// Every entry point of proc.h called from a context it does not support
// dies with a clear "fatal error: ..." instead of hanging or corrupting:
// the controlling calls from inside the runtime, spawns without a runtime,
// impossible stack sizes, exceptions on Gs and out of Systemstack, a G's
// overflow, and stackalloc on a G's stack.

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "proc/proc.h"
#include "stackalloc.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace proc {
namespace {

class ProcDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

void StartOne() {
  Options o;
  o.gomaxprocs = 1;
  Start(o);
}

// Runs f in a G of a new runtime and waits for it (the death happens in
// the G, or on its M's g0).
template <typename F>
void InAG(F f) {
  StartOne();
  Go(f);
  Wait();
  Stop();
}

TEST_F(ProcDeathTest, StartFromAGDies) {
  EXPECT_DEATH(InAG([] { StartOne(); }),
               "fatal error: proc: Start called from a G");
}

TEST_F(ProcDeathTest, WaitFromAGDies) {
  EXPECT_DEATH(InAG([] { Wait(); }),
               "fatal error: proc: Wait called from a G \\(it would wait for "
               "itself\\)");
}

TEST_F(ProcDeathTest, StopFromAGDies) {
  EXPECT_DEATH(InAG([] { Stop(); }), "fatal error: proc: Stop called from a G");
}

TEST_F(ProcDeathTest, WaitOnAnMsSchedulerStackDies) {
  EXPECT_DEATH(InAG([] { Systemstack([] { Wait(); }); }),
               "fatal error: proc: Wait called on an M's scheduler stack");
}

TEST_F(ProcDeathTest, StopOnAnMsSchedulerStackDies) {
  EXPECT_DEATH(InAG([] { Systemstack([] { Stop(); }); }),
               "fatal error: proc: Stop called on an M's scheduler stack");
}

TEST_F(ProcDeathTest, StartTwiceDies) {
  EXPECT_DEATH(
      {
        StartOne();
        StartOne();
      },
      "fatal error: proc: Start while a runtime runs \\(Stop it first\\)");
}

TEST_F(ProcDeathTest, BadGomaxprocsDies) {
  Options o;
  o.gomaxprocs = 0;
  EXPECT_DEATH(Start(o), "fatal error: proc: gomaxprocs=0 not in \\[1, 256\\]");
  o.gomaxprocs = kMaxProcs + 1;
  EXPECT_DEATH(Start(o), "fatal error: proc: gomaxprocs=257 not in");
}

TEST_F(ProcDeathTest, NullStackSourceDies) {
  Options o;
  o.stack_source.alloc = nullptr;
  EXPECT_DEATH(Start(o), "fatal error: proc: Options::stack_source has a null");
}

TEST_F(ProcDeathTest, GoWithoutARuntimeDies) {
  EXPECT_DEATH(Go([] {}),
               "fatal error: go: no runtime \\(call proc::Start first\\)");
}

TEST_F(ProcDeathTest, GoAfterStopDies) {
  EXPECT_DEATH(
      {
        StartOne();
        Stop();
        Go([] {});
      },
      "fatal error: go: no runtime");
}

// A closure whose copy calls a control function. Go() copies it while its
// spawn is under way on this thread: Stop would wait for that spawn for
// ever, and dies; Wait does not wait for a G not yet queued, and returns.
template <void (*kCall)()>
struct CallsInCopy {
  CallsInCopy() = default;
  CallsInCopy(const CallsInCopy&) { kCall(); }
  void operator()() const {}
};

TEST_F(ProcDeathTest, StopWhileCopyingAClosureDies) {
  EXPECT_DEATH(
      {
        StartOne();
        CallsInCopy<&Stop> c;
        Go(c);
      },
      "fatal error: proc: Stop called inside a Go\\(\\) on this thread, "
      "while it copies the closure \\(it would wait for itself\\)");
}

// (Wait in the copy once died, as Stop does.)
std::atomic<int> waits_in_copy{0};
void CountedWait() {
  Wait();
  waits_in_copy.fetch_add(1);
}

TEST(ProcContextTest, WaitWhileCopyingAClosureReturns) {
  StartOne();
  CallsInCopy<&CountedWait> c;
  Go(c);
  EXPECT_EQ(waits_in_copy.load(), 1);
  Wait();
  Stop();
  EXPECT_EQ(ReadProcStats().gs_finished, 1u);
}

// Wait and Stop without a runtime are not errors: they have nothing to do,
// and leave the statistics of the last runtime as they were.
TEST(ProcContextTest, WaitAndStopWithoutARuntimeReturn) {
  StartOne();
  Go([] {});
  Stop();
  Wait();
  Stop();
  Stop();
  const ProcStats st = ReadProcStats();
  EXPECT_EQ(st.gs_started, 1u);
  EXPECT_EQ(st.gs_finished, 1u);
  StartOne();  // A runtime starts after them as ever.
  std::atomic<int> ran{0};
  Go([&ran] { ran.fetch_add(1); });
  Stop();
  EXPECT_EQ(ran.load(), 1);
}

// Gosched off a G, and Go from an M's scheduler stack, are supported.
TEST(ProcContextTest, GoschedOffAGAndGoOnG0Work) {
  Gosched();
  StartOne();
  std::atomic<int> ran{0};
  Go([&ran] {
    Systemstack([&ran] {
      Gosched();  // On g0: does nothing.
      Go([&ran] { ran.fetch_add(1); });
    });
    ran.fetch_add(1);
  });
  Wait();
  EXPECT_EQ(ran.load(), 2);
  Stop();
}

// Impossible WithStack sizes are refused, on a G and off one: never served
// with a shorter segment.
constexpr char kTooLarge[] =
    "fatal error: withstack: a frame of [0-9]+ bytes is larger than any "
    "stack";

TEST_F(ProcDeathTest, WithStackSizeMaxOnAGDies) {
  EXPECT_DEATH(InAG([] { WithStack(SIZE_MAX, [] { return 1; }); }),
               "fatal error: withstack: a frame of 18446744073709551615 "
               "bytes is larger than any stack");
}

TEST_F(ProcDeathTest, WithStackThatWouldWrapDies) {
  // kSegmentReserve added to these would wrap around.
  EXPECT_DEATH(InAG([] { WithStack(SIZE_MAX - 8, [] {}); }), kTooLarge);
  EXPECT_DEATH(InAG([] { WithStack(SIZE_MAX / 2 + 1, [] {}); }), kTooLarge);
}

TEST_F(ProcDeathTest, WithStackAboveTheMaximumDies) {
  EXPECT_DEATH(InAG([] { WithStack(kMaxStackFrame + 1, [] {}); }), kTooLarge);
}

TEST_F(ProcDeathTest, WithStackSizeMaxOffAGDies) {
  EXPECT_DEATH(WithStack(SIZE_MAX, [] {}), kTooLarge);
}

TEST_F(ProcDeathTest, WithStackLargerThanTheThreadStackDies) {
  // The main thread has 8 MiB; off a G the stack cannot grow.
  EXPECT_DEATH(WithStack(size_t{512} << 20, [] {}),
               "fatal error: withstack: 536870912 bytes do not fit on this "
               "stack, which is not a G's");
}

// "Gosched, Systemstack and WithStack may be called from anywhere (off a
// G, Gosched does nothing and the other two just call their function)."
// Off a G, WithStack calls its function when the thread's own stack has
// the room, bound or not, and otherwise dies (a thread's stack cannot
// grow): never served short, whether the thread entered the runtime or not.
TEST_F(ProcDeathTest, WithStackOffAGCallsItsFunctionOrDies) {
  for (bool bound : {false, true}) {
    std::thread([bound] {
      if (bound) stackfree(stackalloc(kFixedStack), kFixedStack);
      EXPECT_EQ(WithStack(1024, [] { return 7; }), 7);
    }).join();
    EXPECT_DEATH(
        {
          std::thread([bound] {
            if (bound) stackfree(stackalloc(kFixedStack), kFixedStack);
            WithStack(size_t{64} << 20, [] { return 7; });
          }).join();
        },
        "fatal error: withstack: 67108864 bytes do not fit on this "
        "stack, which is not a G's");
  }
}

TEST(ProcContextTest, WithStackAtTheMaximumIsServed) {
  StartOne();
  std::atomic<int> got{0};
  // A segment of 64 MiB (well under kMaxStackFrame): served, not refused.
  Go([&got] { got.store(WithStack(size_t{64} << 20, [] { return 7; })); });
  Wait();
  Stop();
  EXPECT_EQ(got.load(), 7);
  EXPECT_EQ(ReadProcStats().large_segments, 1u);
}

// Exceptions: a G's 4 KiB cannot hold the unwinder.
ABSL_ATTRIBUTE_NOINLINE void ThrowIt(int v) { throw v; }

// An exception that leaves a G's function dies naming the G; one thrown
// with too little of the G's stack left for the unwinder runs into the guard
// page below the stack, and the overflow report names the G.
TEST_F(ProcDeathTest, ThrowOutOfAGDiesNamingTheG) {
  EXPECT_DEATH(InAG([] { ThrowIt(1); }),
               "fatal error: goroutine [0-9]+: an exception escaped its "
               "function|stack overflow: 4096-byte stack .* G [0-9]+");
}

// Uses all but about `leave` bytes of the stack, then throws and catches.
ABSL_ATTRIBUTE_NOINLINE int ThrowDeep(size_t leave) {
  volatile char frame[256];
  frame[0] = 1;
  // StackRoom() keeps back kStackGuard and a signal frame's room; the
  // bytes really left above the guard page are those and it.
  if (internal::StackRoom() + kStackGuard + SignalFrameReserve() > leave) {
    return ThrowDeep(leave) + frame[0];
  }
  try {
    ThrowIt(1);
  } catch (int v) {
    return v;
  }
  return 0;
}

TEST_F(ProcDeathTest, ThrowWithoutRoomToUnwindIsReportedAsOverflow) {
  EXPECT_DEATH(InAG([] { ThrowDeep(1024); }),
               "fatal error: stack overflow: 4096-byte stack \\[0x[0-9a-f]+, "
               "0x[0-9a-f]+\\) on M [0-9]+, G [0-9]+");
}

TEST_F(ProcDeathTest, ExceptionEscapingWithStackDies) {
  EXPECT_DEATH(InAG([] { WithStack(kUnwindStack, [] { ThrowIt(2); }); }),
               "fatal error: goroutine [0-9]+: an exception escaped a "
               "WithStack function");
}

// The same where f runs on the stack it was called on (room enough), on a
// G and on a plain thread: whether an exception may escape does not follow
// the room left, which differs between builds and machines.
// Regression: there it propagated and could be caught.
TEST_F(ProcDeathTest, ExceptionEscapingWithStackDiesWithRoomToSpare) {
  EXPECT_DEATH(InAG([] {
                 WithStack(kUnwindStack, [] {
                   try {
                     WithStack(64, [] { ThrowIt(3); });
                   } catch (int) {
                   }
                 });
               }),
               "fatal error: goroutine [0-9]+: an exception escaped a "
               "WithStack function");
  EXPECT_DEATH(
      {
        try {
          WithStack(64, [] { ThrowIt(4); });
        } catch (int) {
        }
      },
      "fatal error: goroutine 0: an exception escaped a WithStack function");
}

// Systemstack's function must not throw: if it does, a clear fatal error
// (it once reached std::terminate in Systemstack's noexcept trampoline).
TEST_F(ProcDeathTest, AnExceptionOutOfSystemstackDiesClearly) {
  EXPECT_DEATH(InAG([] { Systemstack([] { throw 7; }); }),
               "fatal error: systemstack: an exception escaped its function");
}

// A G that recurses past its 4 KiB stack without WithStack runs into the
// guard page below it, and the overflow report names the stack, the M and
// the G, as the README's does ("on M 3, G 17 (fault at"; proc once never set
// G::goid, and the report read "G  (fault").
TEST_F(ProcDeathTest, AGRecursingPastItsStackIsReportedNamingTheG) {
  EXPECT_DEATH(
      {
        Options o;
        o.gomaxprocs = 2;
        Start(o);
        Go([] { testing_util::RecurseUntilOverflow(); });
        Wait();
      },
      testing_util::OverflowReportPattern(kFixedStack, /*on_a_g=*/true));
}

// stackalloc on a G's own stack, not through Systemstack: the seed's
// message.
TEST_F(ProcDeathTest, StackallocOnAGsStackDies) {
  EXPECT_DEATH(InAG([] {
                 void* v = stackalloc(kFixedStack);
                 asm volatile("" : : "r"(v) : "memory");
               }),
               "stackalloc not on scheduler stack");
}

TEST(ProcExceptionTest, ThrowAndCatchInsideWithStackWork) {
  StartOne();
  std::atomic<int> caught{0};
  Go([&caught] {
    caught.store(WithStack(kUnwindStack, [] {
      try {
        ThrowIt(5);
      } catch (int v) {
        return v;
      }
      return 0;
    }));
  });
  Wait();
  Stop();
  EXPECT_EQ(caught.load(), 5);
}

TEST(ProcExceptionTest, ThrowOffTheRuntimeIsUntouched) {
  EXPECT_THROW(ThrowIt(3), int);
  StartOne();
  EXPECT_THROW(ThrowIt(4), int);  // Main is not a G.
  Stop();
}

}  // namespace
}  // namespace proc
}  // namespace stackalloc
