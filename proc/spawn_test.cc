// A Go() under way (proc.h): its closure being copied when the copy throws
// (stored inline, or too large to be and copied on g0), when the copy
// yields to another fiber of the thread that calls Wait, and when another
// thread calls Stop meanwhile. Go's count of spawns under way on a thread
// must come back down each time, or Wait and Stop would hang or die. (The
// fork() cases are in fork_test.cc.)

#include <atomic>
#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <thread>
#include <utility>

#include "boost/context/fiber.hpp"
#include "gtest/gtest.h"
#include "proc/proc.h"

namespace stackalloc {
namespace proc {
namespace {

void StartOne() {
  Options o;
  o.gomaxprocs = 1;
  Start(o);
}

struct ThrowsInCopy {
  std::atomic<int>* ran;
  explicit ThrowsInCopy(std::atomic<int>* r) : ran(r) {}
  ThrowsInCopy(const ThrowsInCopy&) { throw std::runtime_error("copy"); }
  void operator()() const { ran->fetch_add(1); }
};

// After a Go() whose closure's copy throws (NewprocAbort), later Wait and
// Stop on the same thread work, and so does a later Start.
TEST(SpawnTest, CopyThrowsThenWaitAndStopWork) {
  StartOne();
  std::atomic<int> ran{0};
  ThrowsInCopy c(&ran);
  EXPECT_THROW(Go(c), std::runtime_error);
  EXPECT_THROW(Go(c), std::runtime_error);
  Go([&] { ran.fetch_add(1); });
  Wait();
  Stop();
  EXPECT_EQ(ran.load(), 1);
  StartOne();  // and again: Start after it
  Go([&] { ran.fetch_add(1); });
  Wait();
  Stop();
  EXPECT_EQ(ran.load(), 2);
}

// Nested: a closure whose copy does a Go() of a closure whose copy throws.
struct NestedThrow {
  std::atomic<int>* ran;
  explicit NestedThrow(std::atomic<int>* r) : ran(r) {}
  NestedThrow(const NestedThrow& o) : ran(o.ran) {
    ThrowsInCopy t(ran);
    try {
      Go(t);
    } catch (const std::runtime_error&) {
    }
    throw std::logic_error("outer");
  }
  void operator()() const {}
};

TEST(SpawnTest, NestedCopyThrowsThenWaitAndStopWork) {
  StartOne();
  std::atomic<int> ran{0};
  NestedThrow c(&ran);
  EXPECT_THROW(Go(c), std::logic_error);
  Wait();
  Stop();
  EXPECT_EQ(ran.load(), 0);
  EXPECT_EQ(ReadProcStats().gs_started, 0u);  // Neither spawn made a G.
  StartOne();
  Go([&] { ran.fetch_add(1); });
  Stop();
  EXPECT_EQ(ran.load(), 1);
}

// A thread may run several fibers (boost::context): fiber A is inside Go(),
// in its closure's copy, and switches to the thread's main context, which
// calls Wait(). Wait does not wait for a G not yet queued, and returns (it
// once died).
boost::context::fiber* back_to_main = nullptr;

struct YieldsInCopy {
  std::atomic<int>* ran;
  explicit YieldsInCopy(std::atomic<int>* r) : ran(r) {}
  YieldsInCopy(const YieldsInCopy& o) : ran(o.ran) {
    *back_to_main = std::move(*back_to_main).resume();  // to main, mid-Go()
  }
  void operator()() const { ran->fetch_add(1); }
};

TEST(SpawnTest, WaitOnAnotherFiberOfTheThreadWorks) {
  using boost::context::fiber;
  StartOne();
  std::atomic<int> ran{0};
  Go([&] { ran.fetch_add(1); });
  fiber a([&](fiber&& main) {
    back_to_main = &main;
    YieldsInCopy c(&ran);
    Go(c);
    return std::move(main);
  });
  a = std::move(a).resume();  // A is now suspended inside Go()
  Wait();                     // Once died here.
  EXPECT_EQ(ran.load(), 1);
  a = std::move(a).resume();  // A finishes its Go()
  Wait();
  Stop();
  EXPECT_EQ(ran.load(), 2);
}

// Go may be called from an ordinary thread while a runtime runs, and Stop
// is Wait(), then ends the Ms. A Go from an ordinary thread that overlaps
// Stop is either refused ("go: no runtime") or its G runs before Stop
// returns; here Go has begun (its closure is being copied, slowly) before
// Stop, so Stop must wait for it and the G must run. It once crashed:
// Stop's Wait did not see a G between NewprocStart and NewprocFinish and
// deleted the runtime under it.
std::atomic<bool> copying{false};
std::atomic<bool> slow_copy_ran{false};

struct SlowCopy {
  SlowCopy() = default;
  SlowCopy(const SlowCopy&) {
    copying = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  void operator()() const { slow_copy_ran = true; }
};

TEST(SpawnTest, StopWaitsForASpawnUnderWayOnAnotherThread) {
  StartOne();
  std::thread t([] {
    SlowCopy f;
    Go(f);
  });
  while (!copying) std::this_thread::yield();
  Stop();  // Once crashed here, or dropped the G.
  EXPECT_TRUE(slow_copy_ran);
  EXPECT_EQ(ReadProcStats().gs_finished, 1u);
  t.join();
}

// "If copying f throws, the exception reaches the caller and no G is
// spawned", also for closures too large to be stored inline, which are
// copied on g0 (Closure::Emplace): that throw once called std::terminate in
// Systemstack's noexcept trampoline.
struct BigThrowingCopy {
  char pad[2 * internal::Closure::kInlineSize] = {};
  BigThrowingCopy() = default;
  BigThrowingCopy(const BigThrowingCopy&) { throw 7; }
  void operator()() const {}
};
static_assert(sizeof(BigThrowingCopy) > internal::Closure::kInlineSize);

TEST(SpawnTest, ALargeClosuresCopyThatThrowsReachesTheSpawner) {
  StartOne();
  BigThrowingCopy big;
  EXPECT_THROW(Go(big), int);  // From an ordinary thread,
  std::atomic<int> caught{0};
  Go([&caught] {  // and from a G, whose large closures are copied on g0.
    WithStack(kUnwindStack, [&caught] {
      try {
        Go(BigThrowingCopy{});
      } catch (int e) {
        caught = e;
      }
    });
  });
  Wait();
  const ProcStats st = ReadProcStats();
  Stop();
  EXPECT_EQ(caught.load(), 7);
  EXPECT_EQ(st.gs_started, 1u);  // No G was spawned by either failed Go.
  EXPECT_EQ(st.gs_finished, 1u);
}

}  // namespace
}  // namespace proc
}  // namespace stackalloc
