// The runtime's functions that the templates of proc.h and closure.h call
// (private to //proc): compiled once, in the runtime's .cc files, and
// declared here once, so that the templates reach them without the headers
// of the runtime's state.

#ifndef PROC_OUT_OF_LINE_H_
#define PROC_OUT_OF_LINE_H_

#include <cstddef>

namespace stackalloc {
namespace proc {
namespace internal {

class Closure;
struct ProcG;

// Go's newproc, in two halves around storing the function: NewprocStart
// takes a G record (a dead G's from the M's free list when there is one,
// stack included) and returns its empty closure; NewprocFinish queues that
// G. Both die with "go: ..." when no runtime runs.
struct NewG {
  ProcG* g;
  Closure* fn;
};
NewG NewprocStart();
void NewprocFinish(ProcG* g);
// Gives back a record whose closure could not be stored (it threw).
void NewprocAbort(ProcG* g);

// Bytes left on the running stack below the caller's frame (StackMargin()'s
// answer, stackalloc.h), minus kStackGuard and SignalFrameReserve() (0 if
// less). Out of line so that it reads the thread's M anew on every call: a
// G may resume on another thread.
size_t StackRoom();

// Switches to g0 for a new segment of at least n bytes and calls fn(arg) on
// it; returns on the old segment after the new one has been freed.
void Morestack(size_t n, void (*fn)(void*), void* arg);

// Dies: an exception escaped a WithStack function (it cannot cross to the
// segment below, whose frames the unwinder cannot see).
[[noreturn]] void ExceptionLeftSegment();

// Runs fn(arg) on g0 (directly when not on a G).
void Systemstack(void (*fn)(void*), void* arg);

// Dies: an exception escaped a Systemstack function (it cannot cross back to
// the G's stack).
[[noreturn]] void ExceptionLeftSystemstack();

// Runs f() through Systemstack(fn, arg); an exception that leaves f dies.
template <typename F>
void SystemstackCall(F& f) {
  Systemstack(
      [](void* p) noexcept {
        try {
          (*static_cast<F*>(p))();
        } catch (...) {
          ExceptionLeftSystemstack();
        }
      },
      const_cast<void*>(static_cast<const void*>(&f)));  // F may be const.
}

}  // namespace internal
}  // namespace proc
}  // namespace stackalloc

#endif  // PROC_OUT_OF_LINE_H_
