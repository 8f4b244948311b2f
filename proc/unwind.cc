// Exceptions on Gs (private to //proc): a throw is refused, with a message
// naming the G, before the unwinder starts on a stack too small for it.
//
// The unwinder runs on the throwing G's own stack and needs 3.4-4 KiB there
// (see kUnwindStack); a G's first stack is 4 KiB, so a throw used to run
// off its end and die of a bare SIGSEGV, or corrupt the stack below. We
// interpose _Unwind_RaiseException and _Unwind_Resume_or_Rethrow, through
// which every throw, rethrow and std::rethrow_exception passes (also those
// inside libstdc++), check the room left, and when it is short switch to g0
// to report: the report itself would not fit either.

#include <dlfcn.h>
#include <unwind.h>

#include <cstdint>

#include "absl/base/attributes.h"
#include "base/throw.h"
#include "proc/g.h"
#include "proc/proc.h"

namespace stackalloc {
namespace proc {
namespace internal {
namespace {

using RaiseFn = _Unwind_Reason_Code (*)(_Unwind_Exception*);

RaiseFn Next(const char* name) {
  void* f = dlsym(RTLD_NEXT, name);
  if (f == nullptr) Throw("proc: the unwinder (libgcc_s) was not found");
  return reinterpret_cast<RaiseFn>(f);
}

RaiseFn NextRaise() {
  static const RaiseFn f = Next("_Unwind_RaiseException");
  return f;
}

RaiseFn NextRethrow() {
  static const RaiseFn f = Next("_Unwind_Resume_or_Rethrow");
  return f;
}

// Looked up before main, so that a throw on a G does not run dlsym there
// (a throw during static initialisation looks them up itself).
[[maybe_unused]] const bool looked_up = NextRaise() && NextRethrow();

struct Refusal {
  int64_t goid;
  size_t room;
};

void Refuse(void* arg) {
  const auto* r = static_cast<const Refusal*>(arg);
  RawBuffer b;
  b.Str("goroutine ").Dec(r->goid).Str(": exception thrown with ");
  b.Udec(r->room).Str(" bytes of stack left, unwinding needs ");
  b.Udec(kUnwindStack).Str(" (throw and catch inside ");
  b.Str("proc::WithStack(proc::kUnwindStack, ...))");
  Throw(b.c_str());
}

// Dies, from g0, if a G is running with less than kUnwindStack below the
// caller's frame.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void CheckRoom() {
  ProcG* g = CurrentG();
  if (g == nullptr) return;
  const auto sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  const size_t room = sp > g->stack_lo ? sp - g->stack_lo : 0;
  if (room >= kUnwindStack) return;
  Refusal r{g->goid, room};
  Systemstack(&Refuse, &r);
  __builtin_unreachable();
}

}  // namespace

void LinkUnwindCheck() {}

void ExceptionLeftSegment() {
  ProcG* g = CurrentG();
  RawBuffer b;
  b.Str("goroutine ").Dec(g != nullptr ? g->goid : 0);
  b.Str(": an exception escaped a WithStack function (exceptions do not ");
  b.Str("cross stack segments)");
  ThrowOnG0(b.c_str());
}

}  // namespace internal
}  // namespace proc
}  // namespace stackalloc

extern "C" {

_Unwind_Reason_Code _Unwind_RaiseException(_Unwind_Exception* e) {
  stackalloc::proc::internal::CheckRoom();
  return stackalloc::proc::internal::NextRaise()(e);
}

_Unwind_Reason_Code _Unwind_Resume_or_Rethrow(_Unwind_Exception* e) {
  stackalloc::proc::internal::CheckRoom();
  return stackalloc::proc::internal::NextRethrow()(e);
}

}  // extern "C"
