// Context switches of the fiber runtime, on Boost.Context's fcontext, with
// their AddressSanitizer and ThreadSanitizer bracketing (private to //proc).
//
// g0 runs a G with SwitchToG(); the G comes back with Mcall() (it will be
// resumed) or McallDrop() (its stack is about to be freed). A new context
// starts in an entry function, which first calls AfterResume() and reads
// its G from the transfer record. Systemstack(fn, arg) (out_of_line.h) is
// defined here too: an Mcall that asks g0 to run fn.
//
// Every function acts on the calling thread; a G is switched to by one
// thread at a time (the runtime's ownership rule, see g.h).

#ifndef PROC_SWITCH_H_
#define PROC_SWITCH_H_

#include <cstddef>

#include "absl/base/attributes.h"
#include "base/sanitizers.h"
#include "boost/context/detail/fcontext.hpp"
#include "proc/g.h"

namespace stackalloc {
namespace proc {
namespace internal {

using boost::context::detail::transfer_t;

// A new context on [lo, top) that starts in entry(transfer with data = g).
fcontext_t MakeContext(void* top, size_t size, void (*entry)(transfer_t));

// g0 -> g. Returns when g switches back; g->ctx is then where it resumes.
// `thread_fiber` is the calling thread's TSan fiber, `eh_globals` its C++
// exception state (__cxa_get_globals()), which is g's while g runs.
void SwitchToG(ProcG* g, void* thread_fiber, void* eh_globals);

// G -> g0 with request r (Go's mcall); returns when g0 resumes the G, maybe
// on another M.
void Mcall(ProcG* g, Req r);

// G -> g0 for the last time on this stack, which g0 then frees.
[[noreturn]] void McallDrop(ProcG* g, Req r);

// The first thing on a stack a G has just been switched to.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void AfterResume(void* fake_stack) {
  sanitizer::FinishSwitchFiber(fake_stack);
}

}  // namespace internal
}  // namespace proc
}  // namespace stackalloc

#endif  // PROC_SWITCH_H_
