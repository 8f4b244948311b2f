#include "stack/overflow.h"

#include <signal.h>
#include <ucontext.h>

#include <atomic>
#include <cstdint>

#include "absl/base/attributes.h"
#include "alloc/chunk.h"
#include "alloc/chunk_map.h"
#include "base/stack_sizes.h"
#include "base/throw.h"
#include "base/traceback.h"
#include "sched/m.h"
#include "stack/stack_bounds.h"

namespace stackalloc {
namespace internal {
namespace {

// What the kernel would run for a signal that is not ours: the action that
// was installed before ours. Two copies, so that a re-install writes one
// while a handler may read the other; reset once the action's SA_RESETHAND
// has fired (the kernel would have put SIG_DFL back).
struct Previous {
  struct sigaction action[2];
  std::atomic<int> current{0};
  std::atomic<bool> reset{false};
};
Previous previous_segv;
Previous previous_bus;

std::atomic<bool> installed{false};
std::atomic<bool> installing{false};
// Where OnFault looks a fault address up; set before the handler goes in.
std::atomic<const ChunkMap*> fault_map{nullptr};
// The kernel's signal frame (SignalFrameBytes(), sched/m.h), the red zone
// and the frame's alignment: the bytes below the interrupted stack pointer
// a fault while the kernel pushes a frame falls in. A frame that fit, with
// a handler whose own frames then ran into the guard, faults there with an
// address: no room for those here, or a fault that is not ours near a
// stack's bottom would be taken for one. Read at install: getauxval is not
// on the list of async-signal-safe calls.
std::atomic<size_t> signal_frame_bytes{0};

// The ucontext this thread last handed to a previous action, and the frame
// that did: OnFault called with that context again from deeper on the same
// stack was called by that action (a handler that saved ours as its own
// previous one), not by the kernel, and ends the chain with the default
// action instead of going round it for ever. An action that leaves by
// siglongjmp leaves these behind; the kernel's next delivery starts again
// at the top of the signal stack, above the recorded frame.
__thread void* chained_context ABSL_ATTRIBUTE_INITIAL_EXEC = nullptr;
__thread uintptr_t chained_frame ABSL_ATTRIBUTE_INITIAL_EXEC = 0;

bool CalledByThePreviousAction(void* context) {
  const auto frame = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  return context == chained_context && frame < chained_frame;
}

void NameTheThread(RawBuffer& b) {
  M* m = tls_m;
  if (m == UnboundM()) {
    b.Str(" on a thread with no M");
    return;
  }
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

// The M's signal stack holds the symbolizer's frames, with room for the
// kernel's signal frame and the handler's own.
static_assert(kMinSignalStack >= 2 * kTracebackStack,
              "the signal stack is too small to name functions");

// Bytes left below this frame on the stack the handler runs on: the
// alternate signal stack (the M's, or the thread's own), or whatever stack
// of known bounds the kernel delivered the signal on. Returns false if
// that stack's bounds are unknown (a signal stack installed with
// SS_AUTODISARM reads as none while the handler runs on it).
bool HandlerRoom(size_t* room) {
  const auto here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  stack_t ss;
  if (sigaltstack(nullptr, &ss) == 0 && (ss.ss_flags & SS_ONSTACK) != 0) {
    const auto lo = reinterpret_cast<uintptr_t>(ss.ss_sp);
    *room = here - lo < ss.ss_size ? here - lo : 0;
    return true;
  }
  uintptr_t lo, hi;
  if (!StackBoundsHolding(*fault_map.load(std::memory_order_relaxed), here, &lo,
                          &hi, /*read_thread_stack=*/false)) {
    return false;
  }
  *room = here - lo;
  return true;
}

// The report's lines after its first: the traceback of the interrupted
// code, whose frames are on the stack [lo, hi).
struct Traceback {
  Interrupted at;
  uintptr_t lo;
  uintptr_t hi;
};

// Writes the traceback (base/traceback.h): the pc, and the functions on the
// stack, named where the handler's stack has room for the symbolizer. On a
// stack known to be too small even for the walk (a thread's own signal
// stack of a few KiB), only why: the walk would write below it, into
// whatever lies there. On one of unknown bounds, the walk without names.
void WriteReportTraceback(void* arg) {
  const auto* t = static_cast<const Traceback*>(arg);
  size_t room = 0;
  const bool known = HandlerRoom(&room);
  if (known && room < kTracebackStackWithoutNames) {
    RawBuffer b;
    b.Str("  (no traceback: ").Udec(room);
    b.Str(" bytes of stack left for the handler, the walk takes ");
    b.Udec(kTracebackStackWithoutNames).Str(")\n");
    RawWrite(b.c_str());
    return;
  }
  const bool names = known && room >= kTracebackStack;
  WriteTraceback(t->at, t->lo, t->hi, names);
  if (!names) {
    RawBuffer b;
    b.Str("  (functions not named: ");
    if (known) {
      b.Udec(room).Str(" bytes of stack left for the handler");
    } else {
      b.Str("the handler's stack has bounds we do not know");
    }
    b.Str(", naming takes ").Udec(kTracebackStack).Str(")\n");
    RawWrite(b.c_str());
  }
}

// The traceback of the code a fault interrupted: its frames are on the
// stack [lo, hi) when its stack pointer is in it or in the guard page
// below; a fault from code elsewhere (a stray write below a stack) has them
// on the stack its stack pointer is on, if we know that stack's bounds,
// and else only its pc is shown.
Traceback TracebackOf(void* context, uintptr_t lo, uintptr_t hi) {
  Traceback t{InterruptedAt(context), lo, hi};
  const uintptr_t sp = t.at.sp;
  if (sp + kPageSize >= lo && sp < hi) return t;
  if (!StackBoundsHolding(*fault_map.load(std::memory_order_relaxed), sp, &t.lo,
                          &t.hi, /*read_thread_stack=*/false)) {
    t.lo = t.hi = 0;
  }
  return t;
}

// An overflow report's first words: "stack overflow: <size>-byte stack
// [lo, hi) on M m, G n".
void BeginOverflowReport(RawBuffer& b, uintptr_t lo, size_t size) {
  b.Str("stack overflow: ").Udec(size).Str("-byte stack [");
  b.Hex(lo).Str(", ").Hex(lo + size).Str(")");
  NameTheThread(b);
}

// Dies with the report in b and the traceback of `context` (TracebackOf:
// its frames on [lo, hi), or on the stack its stack pointer is on).
[[noreturn]] void DieWithReport(const RawBuffer& b, void* context, uintptr_t lo,
                                uintptr_t hi) {
  Traceback t = TracebackOf(context, lo, hi);
  Throw(b.c_str(), &WriteReportTraceback, &t);
}

[[noreturn]] void ReportOverflow(uintptr_t lo, size_t size, uintptr_t fault,
                                 void* context) {
  RawBuffer b;
  BeginOverflowReport(b, lo, size);
  b.Str(" (fault at ").Hex(fault).Str(", ").Udec(lo - fault);
  b.Str(" bytes below the stack)");
  DieWithReport(b, context, lo, lo + size);
}

// The kernel could not push a signal frame below sp, on one of our stacks.
[[noreturn]] void ReportFrameOverflow(uintptr_t lo, size_t size, uintptr_t sp,
                                      void* context) {
  RawBuffer b;
  BeginOverflowReport(b, lo, size);
  b.Str(" (a signal frame did not fit below sp ").Hex(sp).Str(", ");
  if (sp >= lo) {
    b.Udec(sp - lo).Str(" bytes above the stack's lowest byte)");
  } else {
    b.Udec(lo - sp).Str(" bytes below the stack)");
  }
  DieWithReport(b, context, lo, lo + size);
}

// A handler ran past the M's signal stack. This handler runs at the top of
// that stack again, over the outer frames of the one that overflowed: the
// walk reads only below what this handler and the symbolizer may use.
[[noreturn]] void ReportSignalStackOverflow(const M* m, uintptr_t fault,
                                            void* context) {
  const auto lo = reinterpret_cast<uintptr_t>(
      m->sigaltstack.load(std::memory_order_relaxed));
  RawBuffer b;
  b.Str("signal stack overflow: a handler ran past the ");
  b.Udec(SignalStackBytes()).Str("-byte alternate signal stack [");
  b.Hex(lo).Str(", ").Hex(lo + SignalStackBytes()).Str(") of M ");
  b.Dec(m->id()).Str(" (fault at ").Hex(fault).Str(", ");
  b.Udec(lo - fault).Str(" bytes below it)");
  const auto here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  DieWithReport(b, context, lo,
                here - lo > kTracebackStack ? here - kTracebackStack : lo);
}

// True if the context says the CPU raised a general protection fault (a
// pointer that is not canonical, a privileged instruction): also SIGSEGV
// with SI_KERNEL and no address, but the kernel records the trap in the
// context, where a signal frame that did not fit leaves the thread's last
// trap (none, or a stale one).
bool GeneralProtectionFault(void* context) {
#if defined(__x86_64__)
  constexpr greg_t kTrapGp = 13;  // X86_TRAP_GP.
  const auto* uc = static_cast<const ucontext_t*>(context);
  return uc->uc_mcontext.gregs[REG_TRAPNO] == kTrapGp;
#else
  (void)context;
  return false;
#endif
}

// Reports the fault if it is an overflow of ours: a guard page below one of
// our stacks, below an M's signal stack, or a signal frame the kernel could
// not push onto one of our stacks (SIGSEGV with SI_KERNEL and no address:
// only the interrupted stack pointer says where).
void ReportIfOurs(int sig, const siginfo_t* info, void* context) {
  uintptr_t lo;
  size_t size;
  if (sig == SIGSEGV && info->si_code == SI_KERNEL &&
      info->si_addr == nullptr) {
    if (GeneralProtectionFault(context)) return;
    const uintptr_t sp = InterruptedAt(context).sp;
    const ChunkRecord* rec =
        sp == 0 ? nullptr
                : fault_map.load(std::memory_order_relaxed)->Lookup(sp);
    if (rec == nullptr) return;
    if (rec->ReadGuardHolding(sp, &lo, &size) ||
        (rec->ReadStackHolding(sp, &lo, &size) &&
         sp - lo < signal_frame_bytes.load(std::memory_order_relaxed))) {
      ReportFrameOverflow(lo, size, sp, context);
    }
    return;
  }
  // Only a fault the kernel raised has an address (si_code > 0); one sent
  // with kill() or raise() carries a pid there.
  if (info->si_code <= 0) return;
  const auto a = reinterpret_cast<uintptr_t>(info->si_addr);
  const ChunkRecord* rec = fault_map.load(std::memory_order_relaxed)->Lookup(a);
  // The record of a large stack freed meanwhile on another thread may be
  // rewritten as we read it: then the fault is not in its guard.
  if (rec != nullptr && rec->ReadGuardHolding(a, &lo, &size)) {
    ReportOverflow(lo, size, a, context);
  }
  if (const M* m = SignalStackGuardHolding(a)) {
    ReportSignalStackOverflow(m, a, context);
  }
}

void OnFault(int sig, siginfo_t* info, void* context);

bool IsOurs(const struct sigaction& sa) {
  return (sa.sa_flags & SA_SIGINFO) != 0 && sa.sa_sigaction == &OnFault;
}

// The default action of SIGSEGV and SIGBUS, as the kernel takes it: the
// process ends, with a core where the system keeps them. A fault returns
// to its instruction, which faults again with the default in place; a
// signal sent with kill() or raise() is raised again, pending until this
// handler returns (the signal is blocked while it runs).
void DefaultAction(int sig, const siginfo_t* info) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  // Neither can fail for SIGSEGV or SIGBUS with a valid action.
  (void)sigaction(sig, &dfl, nullptr);
  if (info->si_code <= 0) (void)raise(sig);
}

// Hands a fault that is not ours to the action that was there before, as
// the kernel would have run it: with SA_SIGINFO's arguments or not, its
// mask (and the signal, unless SA_NODEFER) blocked during the call, its
// SA_RESETHAND honoured, SIG_DFL and SIG_IGN meaning what they mean. Only
// SA_ONSTACK cannot be: we run on the alternate stack already.
void Chain(int sig, siginfo_t* info, void* context) {
  Previous& p = sig == SIGBUS ? previous_bus : previous_segv;
  const struct sigaction& prev =
      p.action[p.current.load(std::memory_order_acquire)];
  const bool siginfo = (prev.sa_flags & SA_SIGINFO) != 0;
  // The kernel reads the handler's word alone: SIG_DFL (0) and SIG_IGN (1)
  // mean what they mean whatever the flags, SA_SIGINFO among them (the
  // union's sa_sigaction is then no function to call).
  const bool dfl = p.reset.load(std::memory_order_relaxed) || IsOurs(prev) ||
                   CalledByThePreviousAction(context) ||
                   prev.sa_handler == SIG_DFL;
  if (!dfl && prev.sa_handler == SIG_IGN) {
    // Ignored before us: a sent signal stays ignored; a fault cannot be
    // (the kernel forces the default action: it would recur for ever).
    if (info->si_code <= 0) return;
    return DefaultAction(sig, info);
  }
  if (dfl) return DefaultAction(sig, info);
  // SA_RESETHAND: one delivery runs the action, whichever thread's comes
  // first; the kernel has put SIG_DFL back for every later one, those of
  // threads that faulted at the same time included.
  if ((prev.sa_flags & SA_RESETHAND) != 0 &&
      p.reset.exchange(true, std::memory_order_relaxed)) {
    return DefaultAction(sig, info);
  }
  sigset_t during, saved;
  // Reading and setting our own thread's mask cannot fail.
  (void)pthread_sigmask(SIG_SETMASK, nullptr, &saved);
  during = saved;
  for (int s = 1; s < NSIG; ++s) {
    if (sigismember(&prev.sa_mask, s) == 1) sigaddset(&during, s);
  }
  if ((prev.sa_flags & SA_NODEFER) != 0) {
    sigdelset(&during, sig);
  } else {
    sigaddset(&during, sig);
  }
  (void)pthread_sigmask(SIG_SETMASK, &during, nullptr);
  void* const outer_context = chained_context;
  const uintptr_t outer_frame = chained_frame;
  chained_context = context;
  chained_frame = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  if (siginfo) {
    prev.sa_sigaction(sig, info, context);
  } else {
    prev.sa_handler(sig);
  }
  chained_context = outer_context;
  chained_frame = outer_frame;
  (void)pthread_sigmask(SIG_SETMASK, &saved, nullptr);
}

void OnFault(int sig, siginfo_t* info, void* context) {
  if (!CalledByThePreviousAction(context)) ReportIfOurs(sig, info, context);
  Chain(sig, info, context);
}

// Puts ours in front of sig's current action, which becomes the previous
// one; nothing if ours is the current one already.
void Install(int sig, Previous* p) {
  struct sigaction cur;
  if (sigaction(sig, nullptr, &cur) != 0 || IsOurs(cur)) return;
  const int next = 1 - p->current.load(std::memory_order_relaxed);
  p->action[next] = cur;
  p->reset.store(false, std::memory_order_relaxed);
  p->current.store(next, std::memory_order_release);
  struct sigaction sa {};
  sa.sa_sigaction = &OnFault;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  // With a valid action for SIGSEGV or SIGBUS this cannot fail; if it did,
  // the previous action stays, and overflows reach it unreported.
  (void)sigaction(sig, &sa, nullptr);
}

}  // namespace

void InstallOverflowHandler(const ChunkMap* map) {
  if (installed.load(std::memory_order_acquire)) return;
  ReinstallOverflowHandler(map);
}

void ReinstallOverflowHandler(const ChunkMap* map) {
  // The handler goes in over whatever a dlclose() would unmap: pin first
  // (InstallStackOverflowHandler() may come before any thread is bound).
  PinLibrary();
  // One installer at a time; handlers never wait for this.
  while (installing.exchange(true, std::memory_order_acquire)) {
  }
  fault_map.store(map, std::memory_order_relaxed);
  signal_frame_bytes.store(kSignalRedZone + SignalFrameBytes() + 64,
                           std::memory_order_relaxed);
  Install(SIGSEGV, &previous_segv);
  Install(SIGBUS, &previous_bus);
  installed.store(true, std::memory_order_release);
  installing.store(false, std::memory_order_release);
}

}  // namespace internal
}  // namespace stackalloc
