// proc.h: Go may be called from an ordinary thread while a runtime runs,
// and Stop is Wait(), then ends the Ms. A Go from an ordinary thread that
// overlaps Stop is either refused ("go: no runtime") or its G runs before
// Stop returns; here Go has begun (its closure is being copied, slowly)
// before Stop, so Stop must wait for it and the G must run. It once
// crashed: Stop's Wait did not see a G between NewprocStart and
// NewprocFinish and deleted the runtime under it.

#include <atomic>
#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "proc/proc.h"

namespace stackalloc {
namespace proc {
namespace {

std::atomic<bool> copying{false};
std::atomic<bool> ran{false};

struct SlowCopy {
  SlowCopy() = default;
  SlowCopy(const SlowCopy&) {
    copying = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  void operator()() const { ran = true; }
};

TEST(GoRacesStopTest, StopWaitsForASpawnUnderWayOnAnotherThread) {
  Options o;
  o.gomaxprocs = 1;
  Start(o);
  std::thread t([] {
    SlowCopy f;
    Go(f);
  });
  while (!copying) std::this_thread::yield();
  Stop();  // Once crashed here, or dropped the G.
  EXPECT_TRUE(ran);
  t.join();
}

}  // namespace
}  // namespace proc
}  // namespace stackalloc
