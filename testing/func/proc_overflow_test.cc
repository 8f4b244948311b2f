// A G of the fiber runtime that recurses past its 4 KiB stack without
// WithStack runs into the guard page below it, and the overflow report
// names the stack, the M and the G.

#include "gtest/gtest.h"
#include "proc/proc.h"

namespace stackalloc {
namespace {

int Recurse(int depth) {
  volatile char frame[256];
  frame[0] = static_cast<char>(depth);
  if (depth >= 0) return Recurse(depth + 1) + frame[0];  // Never returns.
  return 0;
}

TEST(ProcOverflowDeathTest, AGRecursingPastItsStackIsReported) {
  EXPECT_DEATH(
      {
        proc::Options o;
        o.gomaxprocs = 2;
        proc::Start(o);
        proc::Go([] { Recurse(0); });
        proc::Wait();
      },
      "fatal error: stack overflow: 4096-byte stack \\[0x[0-9a-f]+, "
      "0x[0-9a-f]+\\) on M [0-9]+, G [1-9][0-9]*");
}

}  // namespace
}  // namespace stackalloc
