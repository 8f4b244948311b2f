// The fiber runtime's public types and limits: what Start takes (Options,
// StackSource), what ReadProcStats returns (ProcStats), and the stack sizes
// WithStack and code on a G plan with. Apart from proc.h so that the
// runtime's internals share them without the public API; callers include
// proc/proc.h.

#ifndef PROC_TYPES_H_
#define PROC_TYPES_H_

#include <cstddef>
#include <cstdint>

#include "absl/base/config.h"
#include "stackalloc.h"

namespace stackalloc {
namespace proc {

// Where a runtime's G stacks and stack segments come from. Both functions
// are called on g0 only, with n == kFixedStack for a G's first stack,
// SegmentStack() for every segment whose frame fits one, and more for
// larger frames.
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
  // Each G keeps up to 8 SegmentStack() segments whose frames returned and
  // enters them again directly, without g0 or stack_source (as Go's
  // contiguous stacks keep their size). false: every segment is taken from
  // and given back to stack_source on g0 (the seed's behaviour, which
  // BenchmarkStackGrowth's old/new comparison of pools needs).
  bool segment_cache = true;
  // At Stop(), once every G has finished and its stacks are back, print the
  // census of every stack (stackalloc::FormatStackUsage: per order, how deep
  // the stacks went, and the order that would have held them) to stderr,
  // without allocating. Also on when the environment variable
  // STACKALLOC_STACK_USAGE is set to anything but "" or "0" (read at
  // Stop()), so a program's stack sizes can be checked without rebuilding
  // it.
  bool print_stack_usage = false;
};

// Counters of the running runtime, or of the last one stopped. Exact once
// Wait() has returned; while Gs run, each counter is some recent value.
struct ProcStats {
  uint64_t gs_started = 0;      // Gs that got a stack and began to run.
  uint64_t gs_finished = 0;     // Gs whose function returned.
  uint64_t segments = 0;        // Stack segments taken by WithStack...
  uint64_t large_segments = 0;  // ...of which larger than SegmentStack()...
  // ...and of which the G had used before: entered directly from the
  // segment below, without g0 or the StackSource.
  uint64_t segments_reused = 0;
  uint64_t gs_stolen = 0;  // Gs that work stealing moved between Ms.
  // G records allocated; every other spawn reused a dead G's record and
  // stack from a free list.
  uint64_t g_allocs = 0;
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

// Room a signal takes below the stack pointer it interrupts when its
// handler was installed without SA_ONSTACK (glibc's, which signals every
// thread for setuid() and setgid(); a profiler's): the red zone, the
// kernel's signal frame (getauxval(AT_MINSIGSTKSZ), which grows with the
// CPU's vector state: about 3.4 KiB with AVX-512, 11 KiB with AMX) and a
// small handler's frames (sched/m.h computes it). WithStack leaves it free
// below kStackGuard, so a G within its budget survives such a signal. Bytes;
// the same for the life of the process. Handlers of your own belong on the
// alternate signal stack every M gives its thread (SA_ONSTACK).
size_t SignalFrameReserve();

// The bytes of each stack segment WithStack takes for a frame that fits one
// (the smallest order that holds the reserves above and a kilobyte of
// frames: 8 KiB in an optimised build, more where the signal frame or
// kStackGuard is larger); larger frames get larger segments. A G's first
// stack is kFixedStack.
size_t SegmentStack();

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

}  // namespace proc
}  // namespace stackalloc

#endif  // PROC_TYPES_H_
