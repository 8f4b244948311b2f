// Which G runs on this thread, and fatal reports from a G.

#include "proc/g.h"

#include "base/throw.h"
#include "proc/out_of_line.h"
#include "sched/m.h"

namespace stackalloc {
namespace proc {
namespace internal {

ProcG* CurrentG() {
  M* m = stackalloc::internal::tls_m;
  asm volatile("" : "+r"(m));
  G* g = m->curg();
  if (g == nullptr || g == m->g0()) return nullptr;
  return static_cast<ProcG*>(g);
}

void ThrowOnG0(const char* msg) {
  Systemstack([](void* m) { Throw(static_cast<const char*>(m)); },
              const_cast<char*>(msg));
  Throw(msg);  // Not on a G: Systemstack called the function here.
}

}  // namespace internal
}  // namespace proc
}  // namespace stackalloc
