// The fiber runtime's G record (private to //proc): ProcG, the link record
// of a stack segment (Stktop), what a G asks of its M's g0 (Req), and which
// G runs on this thread.
//
// Ownership: a G belongs to the runtime from NewprocStart until it
// finishes; at any time it is either queued, running on one M, or being
// served by that M's g0, and only that one thread touches it.

#ifndef PROC_G_H_
#define PROC_G_H_

#include <cstddef>
#include <cstdint>

#include "boost/context/detail/fcontext.hpp"
#include "proc/closure.h"
#include "sched/m.h"

namespace stackalloc {
namespace proc {
namespace internal {

using boost::context::detail::fcontext_t;

// What a G asks of g0 when it switches there (Go's mcall argument).
enum class Req : uint8_t {
  kNone,
  kGosched,      // Queue me and schedule.
  kSystemstack,  // Run req_fn(req_arg) on g0 and resume me.
  kMorestack,    // Give me a segment of req_size bytes; start req_fn there.
  kLessstack,    // My current segment is done: free it, resume the old one.
  kExit,         // My function returned: free my stack and record.
};

// The link record at the top of every segment after a G's first stack: how
// to get back to the segment below (Go's Stktop).
struct Stktop {
  Stktop* prev;  // The previous segment's Stktop, or nullptr.
  // Where the G resumes on the previous segment; nullptr for a segment from
  // the G's cache, which is left by returning.
  fcontext_t oldctx;
  uintptr_t old_lo;  // Bounds of the previous segment.
  uintptr_t old_hi;
  void* base;  // This segment, as the stack source returned it.
  size_t size;
};

// SegmentStack() segments a G keeps after their frames return, for its next
// growth: a G that grows and shrinks in a loop (the hot split) then switches
// segments without g0, the stack pool or the scheduler.
inline constexpr int kSegCache = 8;

struct P;

// A G of the runtime. stack_lo / stack_hi (in G) are the bounds of the
// segment it runs on. A record outlives its G: when the G exits, the record,
// with its first stack, goes on its M's free list, and the next spawn on
// that M reuses it (Go's gfput / gfget); its TSan fiber goes to the M's
// cache of fibers.
// The C++ runtime's per-thread exception state (libsupc++'s
// __cxa_eh_globals, which __cxa_get_globals() returns): the exceptions being
// caught, innermost first, and the count of those thrown and not yet caught.
// It belongs to whatever runs on the thread, so a G carries its own across
// switches and Ms (as seastar's threads, ClickHouse's fibers and
// Boost.Context 1.88 do).
struct EhGlobals {
  void* caught_exceptions = nullptr;
  unsigned int uncaught_exceptions = 0;
#if defined(__ARM_EABI_UNWINDER__)
  void* propagating_exceptions = nullptr;
#endif
};

struct ProcG : G {
  Closure fn;      // The G's function; empty once it has run.
  P* p = nullptr;  // Its M's P, while it runs.
  // Where the G resumes; nullptr until an M first runs it.
  fcontext_t ctx = nullptr;
  // While the G runs: where its M's g0 waits for it.
  fcontext_t g0ctx = nullptr;
  // The request the G left for g0 (see Req), with its arguments.
  Req req = Req::kNone;
  size_t req_size = 0;
  void (*req_fn)(void*) = nullptr;
  void* req_arg = nullptr;
  void* stack = nullptr;  // The first stack, kFixedStack bytes, or nullptr.
  Stktop* top = nullptr;  // The current segment's link; nullptr on `stack`.
  // Free SegmentStack() segments of this G: taken by Morestack directly,
  // filled when segments return, freed on g0 when the G exits.
  void* segcache[kSegCache] = {};
  int nsegcache = 0;
  ProcG* schedlink = nullptr;     // Link in a GList (run or free queue).
  void* tsan_fiber = nullptr;     // The G's TSan fiber (nullptr without TSan).
  void* tsan_g0_fiber = nullptr;  // While running: its M thread's fiber.
  // The G's exception state while it does not run (while it runs, its
  // thread's holds it).
  EhGlobals eh;
};

// The G running on this thread, or nullptr on g0 or an ordinary thread.
// Out of line and behind a compiler barrier so that the thread-local M is
// read anew after every switch: a G may resume on another thread.
ProcG* CurrentG();

// Throw(msg), from g0 when called on a G: a G's stack may not hold the
// report (under ASan, write(2)'s interceptor alone takes kilobytes).
[[noreturn]] void ThrowOnG0(const char* msg);

}  // namespace internal
}  // namespace proc
}  // namespace stackalloc

#endif  // PROC_G_H_
