#include "stack/overflow.h"

#include <signal.h>

#include <atomic>
#include <cstdint>

#include "alloc/chunk.h"
#include "alloc/chunk_map.h"
#include "base/throw.h"
#include "sched/m.h"

namespace stackalloc {
namespace internal {
namespace {

// The actions that were installed before ours, for faults that are not
// ours. Written before our handler is installed, read only by it.
struct sigaction previous_segv;
struct sigaction previous_bus;

std::atomic<bool> installed{false};
// Where OnFault looks a fault address up; set before the handler goes in.
const ChunkMap* fault_map = nullptr;

[[noreturn]] void ReportOverflow(uintptr_t lo, size_t size, uintptr_t fault) {
  RawBuffer b;
  b.Str("stack overflow: ").Udec(size).Str("-byte stack [");
  b.Hex(lo).Str(", ").Hex(lo + size).Str(")");
  M* m = tls_m;
  if (m == UnboundM()) {
    b.Str(" on a thread with no M");
  } else {
    b.Str(" on M ").Dec(m->id());
    const G* g = m->curg();
    if (g != nullptr && g != m->g0()) {
      if (g->goid != 0) {
        b.Str(", G ").Dec(g->goid);
      } else {
        b.Str(", on a G");  // One its runtime did not number.
      }
    }
  }
  b.Str(" (fault at ").Hex(fault).Str(", ").Udec(lo - fault);
  b.Str(" bytes below the stack)");
  Throw(b.c_str());
}

// Hands a fault that is not ours to whoever had it before.
void Chain(int sig, siginfo_t* info, void* context) {
  const struct sigaction& prev = sig == SIGBUS ? previous_bus : previous_segv;
  if ((prev.sa_flags & SA_SIGINFO) != 0 && prev.sa_sigaction != nullptr) {
    prev.sa_sigaction(sig, info, context);
    return;
  }
  if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  // Ignored before us: a sent signal stays ignored; a fault cannot be (it
  // would recur for ever), so it gets the default action.
  if (prev.sa_handler == SIG_IGN && info->si_code <= 0) return;
  // The default action: restore it and raise the signal again, pending
  // until this handler returns (the signal is blocked while it runs). That
  // covers a fault (which would recur anyway) and a signal sent with kill()
  // or raise(), which returning alone would swallow.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  raise(sig);
}

void OnFault(int sig, siginfo_t* info, void* context) {
  // Only a fault the kernel raised has an address (si_code > 0); one sent
  // with kill() or raise() carries a pid there.
  if (info->si_code > 0) {
    const auto a = reinterpret_cast<uintptr_t>(info->si_addr);
    const ChunkRecord* rec = fault_map->Lookup(a);
    uintptr_t lo;
    size_t size;
    // The record of a large stack freed meanwhile on another thread may be
    // rewritten as we read it: then the fault is not in its guard.
    if (rec != nullptr && rec->ReadGuardHolding(a, &lo, &size)) {
      ReportOverflow(lo, size, a);
    }
  }
  Chain(sig, info, context);
}

void Install(int sig, struct sigaction* previous) {
  sigaction(sig, nullptr, previous);
  struct sigaction sa {};
  sa.sa_sigaction = &OnFault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, nullptr);
}

}  // namespace

void InstallOverflowHandler(const ChunkMap* map) {
  if (installed.load(std::memory_order_acquire) ||
      installed.exchange(true, std::memory_order_acq_rel)) {
    return;
  }
  fault_map = map;
  Install(SIGSEGV, &previous_segv);
  Install(SIGBUS, &previous_bus);
}

}  // namespace internal
}  // namespace stackalloc
