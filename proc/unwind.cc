// Exceptions on Gs (private to //proc).
//
// The unwinder runs on the throwing G's own stack and needs 3.4-4 KiB there
// (see kUnwindStack); a G's first stack is 4 KiB, so a throw with less room
// runs into the guard page below the stack and dies with the overflow
// report, which names the G. We do not interpose the unwinder to refuse
// such a throw earlier: that would put our code in front of every exception
// of every program that links the runtime. Code that throws catches inside
// WithStack(kUnwindStack, ...); an exception must not cross a segment.

#include "base/throw.h"
#include "proc/g.h"
#include "proc/proc.h"

namespace stackalloc {
namespace proc {
namespace internal {

void ExceptionLeftSegment() {
  ProcG* g = CurrentG();
  RawBuffer b;
  b.Str("goroutine ").Dec(g != nullptr ? g->goid : 0);
  b.Str(": an exception escaped a WithStack function (exceptions do not ");
  b.Str("cross stack segments)");
  ThrowOnG0(b.c_str());
}

void ExceptionLeftSystemstack() {
  ThrowOnG0(
      "systemstack: an exception escaped its function (it cannot cross back "
      "to the G's stack)");
}

}  // namespace internal
}  // namespace proc
}  // namespace stackalloc
