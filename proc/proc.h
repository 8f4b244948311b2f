// A small M:N fiber runtime whose Gs run on stacks from stackalloc, after
// the Go runtime's proc.c of 2011. Start() starts `gomaxprocs` Ms (OS
// threads); Go() spawns a G; Gosched() yields; Wait() returns once every G
// has finished; Stop() also ends the Ms. docs/proc.md describes the design.
//
// Scheduling is cooperative: a G runs until it returns or calls Gosched, so
// a G that waits for another must yield while it waits. A G spawned from a G
// runs next on the spawner's M, when the spawner yields or returns.
//
// Stacks: a G starts on a kFixedStack stack from Options::stack_source
// (stackalloc by default). A dead G's record keeps its stack for the next G
// that takes the record (as Go's do), unless stacks are wiped
// (stackalloc::StackWipe() when Start is called): then each G's stack goes
// back to the source as the G ends, and the next G's comes from it, wiped.
// Stacks are allocated and freed on g0 (an M's scheduler stack) only:
// stackalloc called on a G dies ("stackalloc not on scheduler stack"); run such
// code with Systemstack(). A G's stack does not grow by itself: code may use
// kStackGuard bytes below its last check, and asks for more with WithStack(n,
// f).
//
// Contexts and thread-safety: one runtime at a time per process. Start,
// Wait and Stop come from one controlling thread that is not a G (typically
// main); from a G or on an M's scheduler stack they die ("fatal error: proc:
// Wait called from a G ..."), as does Start while a runtime runs. Wait and
// Stop without a runtime do nothing. Go needs a running runtime (else it
// dies) and may be called from a G, from g0 or from an ordinary thread.
// ReadProcStats, Gosched, Systemstack and WithStack may be called from
// anywhere; off a G, Gosched does nothing, Systemstack calls its function,
// and WithStack calls its function if the stack it runs on has the room and
// dies otherwise (it cannot grow). That stack is the thread's own, or a
// stack from stackalloc (a Boost fiber's on BoostStackAllocator); any other
// stack's room counts as none. One case cannot be told apart: a fiber whose
// stack is a buffer inside the thread's own stack (Boost's preallocated over
// a local array) is taken for the thread, and WithStack there trusts the
// thread's bounds: give such fibers a stack from stackalloc, or do not call
// WithStack on them.
//
// Exceptions: the unwinder needs kUnwindStack bytes of the throwing G's
// stack, more than a G's first stack has. A throw on a G with less room runs
// into the guard page below the stack and dies with the overflow report
// ("fatal error: stack overflow: 4096-byte stack [...] on M m, G n"); inside
// WithStack(kUnwindStack, f), f may throw and catch. An exception that
// escapes a G's function, a WithStack function or a Systemstack function
// dies with a message naming it.
//
// fork(): the runtime's Ms do not survive in the child, so it is abandoned
// there: Go, Wait and Stop die ("... the runtime did not survive fork()"),
// ReadProcStats returns its counters as of the fork, and Start starts a
// fresh runtime, after which all is as usual. Only an ordinary thread's
// child may do this; a child forked from a G must only exec or _exit.

#ifndef PROC_PROC_H_
#define PROC_PROC_H_

#include <cxxabi.h>

#include <cstddef>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "proc/closure.h"
#include "proc/out_of_line.h"
#include "proc/types.h"

namespace stackalloc {
namespace proc {

// Starts a runtime with options.gomaxprocs Ms. Dies if one is running, if
// options are out of range, or on a G or an M's g0.
void Start(const Options& options);
// Blocks until every G spawned so far (and every G they spawn) has finished:
// until every M is idle and no G is queued. Dies on a G or an M's g0.
void Wait();
// Wait(), then ends the Ms and joins their threads; dead Gs' stacks go back
// to the StackSource. Then, if Options::print_stack_usage or the environment
// variable STACKALLOC_STACK_USAGE asks, prints the stack census's table to
// stderr (without allocating). Dies on a G or an M's g0.
void Stop();
// Statistics of the running or last stopped runtime.
ProcStats ReadProcStats();

// Spawns a G that runs f (Go's `go f()`). f is stored in the G's record when
// it fits (internal::Closure::kInlineSize bytes), else on the heap; in
// steady state a spawn allocates nothing. If copying f throws, the exception
// reaches the caller and no G is spawned. f must not let an exception escape
// (see above). Dies if no runtime runs.
template <typename F>
void Go(F&& f);

// From a G: puts it at the back of the run queue and runs the scheduler.
// Elsewhere: does nothing.
void Gosched();

// Runs f on the scheduler stack (g0) of the calling G's M and returns when it
// has (Go's systemstack). On g0 or an ordinary thread it just calls f. f must
// not switch Gs (no Gosched) and must not throw: an exception that leaves f
// dies with "fatal error: systemstack: an exception escaped its function".
template <typename F>
void Systemstack(F&& f);

// Calls f() with at least n bytes of stack below the call, on a new segment
// if the current one has less room (plus kStackGuard). Returns f's result (by
// value). Dies, never serving a shorter stack, when n > kMaxStackFrame, or
// when off a G (which cannot grow) the thread's stack has less room than n.
// An exception must not escape f (see above).
template <typename F>
auto WithStack(size_t n, F&& f) -> std::decay_t<std::invoke_result_t<F&>>;

namespace internal {

template <typename R, typename F>
ABSL_ATTRIBUTE_NOINLINE R CallOnNewSegment(size_t n, F& f) {
  if constexpr (std::is_void_v<R>) {
    Morestack(
        n,
        [](void* p) noexcept {
          try {
            (*static_cast<F*>(p))();
          } catch (...) {
            ExceptionLeftSegment();
          }
        },
        const_cast<void*>(static_cast<const void*>(&f)));  // F may be const.
  } else {
    struct Call {
      F* f;
      std::optional<R> r;
    } call{&f, std::nullopt};
    Morestack(
        n,
        [](void* p) noexcept {
          auto* c = static_cast<Call*>(p);
          try {
            c->r.emplace((*c->f)());
          } catch (...) {
            ExceptionLeftSegment();
          }
        },
        &call);
    return std::move(*call.r);
  }
}

}  // namespace internal

template <typename F>
void Go(F&& f) {
  const internal::NewG n = internal::NewprocStart();
  struct Abort {  // Gives the record back if storing f throws.
    internal::ProcG* g;
    ~Abort() {
      if (g != nullptr) internal::NewprocAbort(g);
    }
  } abort{n.g};
  n.fn->Emplace(std::forward<F>(f));
  abort.g = nullptr;
  internal::NewprocFinish(n.g);
}

template <typename F>
void Systemstack(F&& f) {
  internal::SystemstackCall(f);
}

// Fast path: one out-of-line call and a comparison, then f on this stack.
// An exception that leaves f dies here too (a landing pad, and no tail call
// of f; nothing else on the path): had it propagated, the same code would
// catch it on one machine and die on another, since which path runs follows
// frame sizes and the CPU's signal frame reserve. A thread's cancellation
// or pthread_exit (glibc's forced unwinding) goes on, as it did.
// no_sanitize("null"): glibc's forced unwinding has no exception object,
// and the reference its catch clause binds reads as null to UBSan.
template <typename F>
__attribute__((no_sanitize("null"))) inline auto WithStack(size_t n, F&& f)
    -> std::decay_t<std::invoke_result_t<F&>> {
  using R = std::decay_t<std::invoke_result_t<F&>>;
  if (ABSL_PREDICT_TRUE(internal::StackRoom() >= n)) {
    try {
      return f();
    } catch (abi::__forced_unwind&) {
      throw;
    } catch (...) {
      internal::ExceptionLeftSegment();
    }
  }
  return internal::CallOnNewSegment<R>(n, f);  // Slow path: a new segment.
}

}  // namespace proc
}  // namespace stackalloc

#endif  // PROC_PROC_H_
