// proc.h: Stop called while a Go() is under way on the same thread (in the
// closure's copy) dies, as it would wait for that spawn for ever; Wait does
// not wait for a G not yet queued, and returns. A thread may run several
// fibers (boost::context): fiber A is inside Go(), in its closure's copy,
// and switches to the thread's main context, which calls Wait(); and Wait()
// called in the copy constructor itself. Both return (they once died).
#include <atomic>
#include <utility>

#include "boost/context/fiber.hpp"
#include "gtest/gtest.h"
#include "proc/proc.h"

namespace stackalloc {
namespace proc {
namespace {

using boost::context::fiber;

fiber* back_to_main = nullptr;

struct YieldsInCopy {
  std::atomic<int>* ran;
  explicit YieldsInCopy(std::atomic<int>* r) : ran(r) {}
  YieldsInCopy(const YieldsInCopy& o) : ran(o.ran) {
    *back_to_main = std::move(*back_to_main).resume();  // to main, mid-Go()
  }
  void operator()() const { ran->fetch_add(1); }
};

TEST(SpawnCounterFibers, WaitOnAnotherFiberOfTheThreadWorks) {
  Options o;
  o.gomaxprocs = 1;
  Start(o);
  std::atomic<int> ran{0};
  Go([&] { ran.fetch_add(1); });
  fiber a([&](fiber&& main) {
    back_to_main = &main;
    YieldsInCopy c(&ran);
    Go(c);
    return std::move(main);
  });
  a = std::move(a).resume();  // A is now suspended inside Go()
  Wait();                     // dies here
  EXPECT_EQ(ran.load(), 1);
  a = std::move(a).resume();  // A finishes its Go()
  Wait();
  Stop();
  EXPECT_EQ(ran.load(), 2);
}

struct WaitsInCopy {
  WaitsInCopy() = default;
  WaitsInCopy(const WaitsInCopy&) { Wait(); }
  void operator()() const {}
};

TEST(SpawnCounterFibers, WaitInTheCopyItselfWouldNotHang) {
  Options o;
  o.gomaxprocs = 1;
  Start(o);
  WaitsInCopy c;
  Go(c);
  Wait();
  Stop();
}

}  // namespace
}  // namespace proc
}  // namespace stackalloc
