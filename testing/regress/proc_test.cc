// proc.h, against its own promises.

#include "proc/proc.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "gtest/gtest.h"
#include "sched/m.h"
#include "stackalloc.h"

namespace stackalloc {
namespace {

// "Gosched, Systemstack and WithStack may be called from anywhere (off a G,
// Gosched does nothing and the other two just call their function)."
// Off a G, WithStack calls its function when the thread's own stack has the
// room, bound or not, and otherwise dies (a thread's stack cannot grow):
// never served short, whether the thread entered the runtime or not.
TEST(ProcDeathTest, WithStackOffAGCallsItsFunctionOrDies) {
  for (bool bound : {false, true}) {
    std::thread([bound] {
      if (bound) stackfree(stackalloc(kFixedStack), kFixedStack);
      EXPECT_EQ(proc::WithStack(1024, [] { return 7; }), 7);
    }).join();
    EXPECT_DEATH(
        {
          std::thread([bound] {
            if (bound) stackfree(stackalloc(kFixedStack), kFixedStack);
            proc::WithStack(size_t{64} << 20, [] { return 7; });
          }).join();
        },
        "fatal error: withstack: 67108864 bytes do not fit on this "
        "stack, which is not a G's");
  }
}

int Recurse(int depth) {
  volatile char frame[256];
  frame[0] = static_cast<char>(depth);
  if (depth >= 0) return Recurse(depth + 1) + frame[0];
  return 0;
}

// README's overflow report: "on M 3, G 17 (fault at ...": the runtime
// names the G. proc never sets G::goid, so the report reads "G  (fault".
TEST(ProcDeathTest, OverflowReportNamesTheG) {
  EXPECT_DEATH(
      {
        proc::Options o;
        proc::Start(o);
        proc::Go([] { Recurse(0); });
        proc::Wait();
      },
      "on M [0-9]+, G [0-9]+ \\(fault at");
}

}  // namespace
}  // namespace stackalloc
