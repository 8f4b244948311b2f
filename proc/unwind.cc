// The deaths of exceptions that try to leave a stack segment or a
// Systemstack function: the unwinder cannot cross from one stack to another.
// docs/proc.md says how much stack a throw needs on a G, and why we do not
// refuse a throw earlier.

#include "base/throw.h"
#include "proc/g.h"
#include "proc/out_of_line.h"

namespace stackalloc {
namespace proc {
namespace internal {

void ExceptionLeftSegment() {
  ProcG* g = CurrentG();
  RawBuffer b;
  b.Str("goroutine ").Dec(g != nullptr ? g->goid : 0);
  b.Str(": an exception escaped a WithStack function (exceptions do not ");
  b.Str("cross stack segments, and f may run on a new one)");
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
