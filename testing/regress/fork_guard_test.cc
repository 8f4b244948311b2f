// Guards survive fork(): a stack allocated (guard installed) in the parent,
// overflowed in the child, is reported -- also when the parent never wrote
// to any stack page (the arena mapping has no anonymous pages yet).

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "gtest/gtest.h"
#include "stackalloc.h"

namespace stackalloc {
namespace {

void TouchBelow(void* s) { *(static_cast<volatile char*>(s) - 8) = 1; }

// Allocates a stack (written first if `touched`), forks, and writes just
// below it in the child: the child's overflow must be reported (the parent
// then dies of the child's report, which it prints).
[[noreturn]] void OverflowInAChild(bool touched) {
  void* s = stackalloc(kFixedStack);
  if (touched) static_cast<volatile char*>(s)[100] = 1;
  const pid_t p = fork();
  if (p == 0) {
    TouchBelow(s);
    _exit(0);  // Not reported, no fault: wrote into the neighbour.
  }
  int st = 0;
  waitpid(p, &st, 0);
  if (WIFEXITED(st)) {
    fprintf(stderr, "child wrote below its stack without a fault\n");
    exit(0);
  }
  exit(1);
}

TEST(ForkGuardDeathTest, ChildOverflowIsReportedUntouchedOrTouched) {
  for (bool touched : {false, true}) {
    EXPECT_DEATH(OverflowInAChild(touched), "stack overflow: 4096-byte stack")
        << (touched ? "touched" : "never written in the parent");
  }
}

}  // namespace
}  // namespace stackalloc
