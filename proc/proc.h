// A small fiber runtime whose Gs really run on stacks from stackalloc.
//
// Named after the Go runtime's proc.c of 2011: Start() starts `gomaxprocs`
// Ms (OS threads), each running the scheduler loop on its g0 (the thread's
// own stack); Go() spawns a G; Gosched() yields; Wait() returns once every G
// has finished; Stop() also ends the Ms. A G starts on a kFixedStack stack
// from the runtime's StackSource (stackalloc by default): its function's first
// frame really is on that 4 KiB stack.
//
// Stacks are only ever allocated and freed on g0. A G that needs the
// scheduler stack runs a function there with Systemstack() (Go's systemstack,
// mcall); stackalloc called directly from a G dies with "stackalloc not on
// scheduler stack".
//
// C++ has no compiler-inserted stack checks, so stack growth is explicit and
// segmented, as in Go until 1.3 (morestack -> newstack ... lessstack ->
// oldstack): WithStack(n, f) calls f with at least n bytes of stack. If the
// current segment has less room, the G switches to g0, which takes a new
// segment from the pool (kFixedStack, or a segment of the right size from the
// general path for frames larger than that) and starts f on it; when f
// returns, the G switches to g0 again, which takes the segment back. A
// kFixedStack segment is kept by the G (up to 8, Options::segment_cache), and
// its next growth calls f on it directly, without g0 or the pool, as Go's
// contiguous stacks keep their size; the G's cached segments go back on g0
// when it exits. Frames that do not go through WithStack may use at most
// kStackGuard bytes below the last check.

// Scheduling (docs/proc.md has the design): each M has a bounded lock-free
// run queue with a runnext slot; idle Ms steal from the others, then park.
// A G spawned from a G runs next on the spawner's M, when the spawner yields
// or returns (Go's runnext); the G it displaces goes to the M's queue, where
// other Ms may steal it. Gs spawned from ordinary threads, Gs that yield and
// a full queue's overflow go to a global queue. Scheduling is cooperative: a
// G runs until it returns or calls Gosched, so a G that waits for another
// must yield while it waits. Dead Gs' records are reused with their stacks,
// and a G's function is stored in its record: a spawn allocates nothing in
// steady state.
//
// Context switches use Boost.Context's fcontext (make_fcontext /
// jump_fcontext) and are annotated for AddressSanitizer and ThreadSanitizer.
//
// Thread-safety and contexts: one runtime at a time per process. Start, Wait
// and Stop come from one controlling thread that is not a G (typically
// main); called from a G or on an M's scheduler stack they die ("fatal
// error: proc: Wait called from a G ..."), as does Start while a runtime
// runs. Wait and Stop without a runtime do nothing. ReadProcStats may be
// called from anywhere. Go needs a running runtime (else it dies) and may be
// called from a G, from g0 or from an ordinary thread; Gosched, Systemstack
// and WithStack may be called from anywhere (off a G, Gosched does nothing,
// Systemstack calls its function, and WithStack calls its function if the
// stack it runs on has the room, and dies otherwise: it cannot grow. That
// stack is the thread's own, or a stack from stackalloc (a Boost fiber's on
// BoostStackAllocator, found with FindStack); any other stack's bounds are
// unknown, and its room counts as none. One case cannot be told apart: a
// fiber whose stack is a buffer inside the thread's own stack (Boost's
// preallocated over a local array, a ucontext on one) is taken for the
// thread, and WithStack there trusts the thread's bounds: give such fibers
// a stack from stackalloc, or do not call WithStack on them).
//
// Exceptions: the unwinder needs kUnwindStack bytes of the throwing G's
// stack, more than a G's first stack has. A throw on a G with less room
// runs into the guard page below the stack and dies with the overflow report
// ("fatal error: stack overflow: 4096-byte stack [...] on M m, G n"); inside
// WithStack(kUnwindStack, f), f may throw and catch. An exception that
// escapes a G's function or a WithStack function dies with a message naming
// the G.
//
// fork(): the runtime's locks are held across fork() (pthread_atfork), so
// the child finds them consistent. The runtime's Ms do not survive in the
// child, so it is abandoned there: Go, Wait and Stop die ("... the runtime
// did not survive fork()"), ReadProcStats returns its counters as of the
// fork, and Start starts a fresh runtime, after which all is as usual. Only
// an ordinary thread's child may do this; a child forked from a G must
// only exec or _exit.

#ifndef PROC_PROC_H_
#define PROC_PROC_H_

#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/base/attributes.h"
#include "absl/base/config.h"
#include "absl/base/optimization.h"
#include "stackalloc.h"

namespace stackalloc {
namespace proc {

// Where a runtime's G stacks and stack segments come from. Both functions
// are called on g0 only, with n == kFixedStack for a G's first stack and
// for every segment up to that size; larger frames ask for more.
struct StackSource {
  void* (*alloc)(size_t n);
  void (*free)(void* v, size_t n);
};

// stackalloc / stackfree.
inline constexpr StackSource kDefaultStackSource = {&stackalloc, &stackfree};

// The most Ms a runtime may have (Go's _MaxGomaxprocs of 2013).
inline constexpr int kMaxProcs = 256;

struct Options {
  int gomaxprocs = 1;  // Number of Ms (Go's GOMAXPROCS), 1..kMaxProcs.
  StackSource stack_source = kDefaultStackSource;
  // Each G keeps up to 8 kFixedStack segments whose frames returned and
  // enters them again directly, without g0 or stack_source (as Go's
  // contiguous stacks keep their size). false: every segment is taken from
  // and given back to stack_source on g0 (the seed's behaviour, which
  // BenchmarkStackGrowth's old/new comparison of pools needs).
  bool segment_cache = true;
};

// Room a G keeps free below its last stack check for calls that do not check
// (the switch to g0 itself, small leaf functions). Go's StackGuard. Like Go,
// which multiplies it under -race and for unoptimised builds
// (stackGuardMultiplier), sanitizer builds need much more (their
// interceptors, memset for one, take about 2 KiB of stack), and unoptimised
// builds more (the switch to g0 alone is four frames).
#if defined(ABSL_HAVE_ADDRESS_SANITIZER) || defined(ABSL_HAVE_THREAD_SANITIZER)
inline constexpr size_t kStackGuard = 3072;
#elif !defined(__OPTIMIZE__)
inline constexpr size_t kStackGuard = 1024;
#else
inline constexpr size_t kStackGuard = 256;
#endif

// The largest frame WithStack serves (Go's maxstacksize on 64-bit systems).
inline constexpr size_t kMaxStackFrame = size_t{1} << 30;

// Stack a throw needs below it on a G: the unwinder's two phases, the
// personality routines and __cxa_begin_catch take 3.4-4 KiB (measured with
// GCC 12, libgcc_s; plain and sanitizer builds), more than a G's first stack
// holds. Code that throws must catch inside WithStack(kUnwindStack, ...).
#if defined(ABSL_HAVE_ADDRESS_SANITIZER) || defined(ABSL_HAVE_THREAD_SANITIZER)
inline constexpr size_t kUnwindStack = 16384;
#else
inline constexpr size_t kUnwindStack = 8192;
#endif

// Counters of the running runtime, or of the last one stopped. Exact once
// Wait() has returned; while Gs run, each counter is some recent value.
struct ProcStats {
  uint64_t gs_started = 0;      // Gs that got a stack and began to run.
  uint64_t gs_finished = 0;     // Gs whose function returned.
  uint64_t segments = 0;        // Stack segments taken by WithStack...
  uint64_t large_segments = 0;  // ...of which larger than kFixedStack...
  // ...and of which the G had used before: entered directly from the
  // segment below, without g0 or the StackSource.
  uint64_t segments_reused = 0;
  uint64_t gs_stolen = 0;  // Gs that work stealing moved between Ms.
  // G records allocated; every other spawn reused a dead G's record and
  // stack from a free list.
  uint64_t g_allocs = 0;
};

// Starts a runtime with options.gomaxprocs Ms. Dies if one is running, if
// options are out of range, or on a G or an M's g0.
void Start(const Options& options);
// Blocks until every G spawned so far (and every G they spawn) has finished:
// until every M is idle and no G is queued. Dies on a G or an M's g0.
void Wait();
// Wait(), then ends the Ms and joins their threads; dead Gs' stacks go back
// to the StackSource. Dies on a G or an M's g0.
void Stop();
// Statistics of the running or last stopped runtime.
ProcStats ReadProcStats();

// Spawns a G that runs f (Go's `go f()`). The G reuses a dead G's record
// and stack from the M's free list when there is one; otherwise a record is
// made on g0, and its stack allocated on g0 when an M first runs it. A dead
// G's stack goes back to the StackSource (on g0) when the runtime stops. f
// is stored in the record when it fits (Closure::kInlineSize bytes), else
// on the heap. If copying f throws, the exception reaches the caller and no
// G is spawned. f must not let an exception escape (see above). Dies if no
// runtime runs.
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

// A G's function: a callable stored in the G record itself when it is at
// most kInlineSize bytes (and not over-aligned), so a spawn allocates
// nothing; a larger one is moved to the heap, allocated on g0. Owned by one
// G record; not thread-safe.
class Closure {
 public:
  static constexpr size_t kInlineSize = 64;

  Closure() = default;
  Closure(const Closure&) = delete;
  Closure& operator=(const Closure&) = delete;
  ~Closure() { Destroy(); }

  // Stores f. REQUIRES: empty.
  template <typename F>
  void Emplace(F&& f);

  // Calls the function, then destroys it. REQUIRES: not empty.
  void Run() {
    Op op = op_;
    op_ = nullptr;
    op(buf_, true);
  }

  // Destroys the function without calling it, if there is one.
  void Destroy() {
    if (op_ == nullptr) return;
    Op op = op_;
    op_ = nullptr;
    op(buf_, false);
  }

  bool empty() const { return op_ == nullptr; }

 private:
  using Op = void (*)(void* buf, bool call);

  template <typename Fn>
  static constexpr bool kFitsInline = sizeof(Fn) <= kInlineSize &&
                                      alignof(Fn) <= alignof(std::max_align_t);

  template <typename Fn>
  static void InlineOp(void* buf, bool call) {
    Fn* fn = std::launder(static_cast<Fn*>(buf));
    if (call) (*fn)();
    fn->~Fn();
  }

  template <typename Fn>
  static void HeapOp(void* buf, bool call);

  Op op_ = nullptr;
  alignas(std::max_align_t) unsigned char buf_[kInlineSize];
};

// Bytes left on the running stack below the caller's frame, minus
// kStackGuard (0 if less); a thread that never entered the runtime is
// bound to an M first, so the room is that of its real stack. Out of line so
// that it reads the thread's M anew on every call: a G may resume on another
// thread.
size_t StackRoom();

// Switches to g0 for a new segment of at least n bytes and calls fn(arg) on
// it; returns on the old segment after the new one has been freed.
void Morestack(size_t n, void (*fn)(void*), void* arg);

// Dies: an exception escaped a WithStack function (it cannot cross to the
// segment below, whose frames the unwinder cannot see).
[[noreturn]] void ExceptionLeftSegment();

// Dies: an exception escaped a Systemstack function (it cannot cross back to
// the G's stack).
[[noreturn]] void ExceptionLeftSystemstack();

// Runs fn(arg) on g0 (directly when not on a G).
void Systemstack(void (*fn)(void*), void* arg);

// Go's newproc, in two halves around storing the function: NewprocStart
// takes a G record (a dead G's from the M's free list when there is one,
// stack included) and returns its empty closure; NewprocFinish queues that
// G. Both die with "go: ..." when no runtime runs.
struct ProcG;
struct NewG {
  ProcG* g;
  Closure* fn;
};
NewG NewprocStart();
void NewprocFinish(ProcG* g);
// Gives back a record whose closure could not be stored (it threw).
void NewprocAbort(ProcG* g);

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

namespace internal {

template <typename F>
void Closure::Emplace(F&& f) {
  using Fn = std::decay_t<F>;
  if constexpr (kFitsInline<Fn>) {
    ::new (static_cast<void*>(buf_)) Fn(std::forward<F>(f));
    op_ = &InlineOp<Fn>;
  } else {
    // The heap on g0: malloc may need more stack than a G keeps in reserve.
    // What the copy (or new) throws there is caught there and rethrown here,
    // to the spawner, as an inline closure's would be.
    Fn* heap = nullptr;
    std::exception_ptr thrown;
    proc::Systemstack([&]() noexcept {
      try {
        heap = new Fn(std::forward<F>(f));
      } catch (...) {
        thrown = std::current_exception();
      }
    });
    if (thrown) std::rethrow_exception(thrown);
    ::new (static_cast<void*>(buf_)) Fn*(heap);
    op_ = &HeapOp<Fn>;
  }
}

template <typename Fn>
void Closure::HeapOp(void* buf, bool call) {
  Fn* fn = *std::launder(static_cast<Fn**>(buf));
  if (call) (*fn)();
  proc::Systemstack([fn] { delete fn; });
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
  using Fn = std::remove_reference_t<F>;
  internal::Systemstack(
      [](void* p) noexcept {
        try {
          (*static_cast<Fn*>(p))();
        } catch (...) {
          internal::ExceptionLeftSystemstack();
        }
      },
      const_cast<void*>(static_cast<const void*>(&f)));
}

// Fast path: one out-of-line call and a comparison, then f on this stack.
template <typename F>
inline auto WithStack(size_t n, F&& f)
    -> std::decay_t<std::invoke_result_t<F&>> {
  using R = std::decay_t<std::invoke_result_t<F&>>;
  if (ABSL_PREDICT_TRUE(internal::StackRoom() >= n)) return f();
  return internal::CallOnNewSegment<R>(n, f);  // Slow path: a new segment.
}

}  // namespace proc
}  // namespace stackalloc

#endif  // PROC_PROC_H_
