// The public entry points of proc.h: Start / Wait / Stop and their context
// checks, Go()'s out-of-line halves, statistics, Gosched, and fork()
// handling. docs/proc.md lists where the rest of the runtime is.

#include "proc/proc.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include "absl/base/attributes.h"
#include "absl/base/thread_annotations.h"
#include "base/mutex.h"
#include "base/throw.h"
#include "proc/g.h"
#include "proc/out_of_line.h"
#include "proc/runtime.h"
#include "proc/switch.h"
#include "proc/types.h"

namespace stackalloc {
namespace proc {
namespace internal {
namespace {

// The running runtime. Start and Stop publish and retract it under
// control_mu; everyone else reads it with one acquire load.
std::atomic<Runtime*> the_runtime{nullptr};
// Start and Stop's teardown (never held while waiting for Gs: a G may fork).
Mutex control_mu;
Mutex stats_mu;
ProcStats last_stats ABSL_GUARDED_BY(stats_mu);  // Of the last runtime.
// Set in the child of a fork() taken while a runtime ran, until the next
// Start: that runtime's Ms are gone, and it is abandoned.
std::atomic<bool> forked_away{false};

// Spawns from threads that are not the runtime's (neither a G nor an M's
// g0) in flight between NewprocStart and NewprocFinish / NewprocAbort, and
// whether such spawns may start. Stop first retracts accepting_external,
// then waits for external_spawns to drain before it ends the Ms: a spawn
// either sees no runtime and dies, or its G is queued while the Ms still run
// and Stop waits for it (seq_cst on both sides: one of them sees the other).
std::atomic<int> external_spawns{0};
std::atomic<bool> accepting_external{false};
// This thread's external spawns in flight: a closure's copy that calls Stop
// would wait for the very spawn it is part of. In the child of a fork()
// taken during such spawns they are cut (their runtime stayed behind):
// counted apart, so that the child may Start, Wait and Stop a runtime of its
// own, and each cut spawn dies when it tries to finish.
thread_local int spawns_in_flight_here = 0;
thread_local int spawns_cut_by_fork_here = 0;

Runtime* TheRuntime() { return the_runtime.load(std::memory_order_acquire); }

bool ExternalSpawner() {
  return CurrentG() == nullptr && CurrentP() == nullptr;
}

[[noreturn]] void NoRuntime(const char* what, bool forked = false) {
  RawBuffer b;
  b.Str(what);
  if (forked || forked_away.load(std::memory_order_relaxed)) {
    b.Str(
        ": the runtime did not survive fork() (its Ms are gone); "
        "call proc::Start for a new one in the child");
  } else {
    b.Str(": no runtime (call proc::Start first)");
  }
  ThrowOnG0(b.c_str());
}

// Start, Wait and Stop block the caller until Gs finish or Ms end: from a G
// or an M's scheduler stack that could never happen.
void CheckControlContext(const char* what) {
  const char* where = nullptr;
  if (CurrentG() != nullptr) {
    where = " called from a G (it would wait for itself)";
  } else if (CurrentP() != nullptr) {
    where = " called on an M's scheduler stack (it would wait for itself)";
  }
  if (where == nullptr && spawns_in_flight_here != 0 &&
      strcmp(what, "Stop") == 0) {
    where =
        " called inside a Go() on this thread, while it copies the closure "
        "(it would wait for itself)";
  }
  if (where == nullptr) return;
  RawBuffer b;
  b.Str("proc: ").Str(what).Str(where);
  ThrowOnG0(b.c_str());
}

// The runtime a spawn under way finishes on. It can be gone only in the
// child of a fork() taken while the closure was being copied (Stop waits for
// spawns under way, and a closure's copy that calls it dies).
Runtime* RuntimeOfSpawn() {
  // An external spawn that began before a fork() and finishes in the child
  // (the spawns begun since are counted in spawns_in_flight_here, and end
  // first: they nest).
  if (ABSL_PREDICT_FALSE(spawns_cut_by_fork_here != 0) &&
      spawns_in_flight_here == 0 && ExternalSpawner()) {
    NoRuntime("go", /*forked=*/true);
  }
  Runtime* rt = TheRuntime();
  if (ABSL_PREDICT_FALSE(rt == nullptr)) NoRuntime("go");
  return rt;
}

void EndExternalSpawn() {
  if (ABSL_PREDICT_FALSE(ExternalSpawner())) {
    --spawns_in_flight_here;
    external_spawns.fetch_sub(1, std::memory_order_release);
  }
}

// Whether Stop prints the stack census: Options::print_stack_usage, or
// STACKALLOC_STACK_USAGE set to anything but "" or "0".
bool StackUsageAsked(const Options& options) {
  if (options.print_stack_usage) return true;
  const char* env = getenv("STACKALLOC_STACK_USAGE");
  return env != nullptr && env[0] != '\0' && strcmp(env, "0") != 0;
}

// FormatStackUsage's table on stderr without allocating: the text in a
// buffer on this stack (and the census's 19 KiB beside it), written with
// write(2). A table cut by the buffer (it holds ten rows many times over)
// is written as far as it goes.
void PrintStackUsage() {
  char buf[8192];
  size_t n = FormatStackUsage(buf, sizeof(buf));
  if (n >= sizeof(buf)) n = sizeof(buf) - 1;
  for (size_t done = 0; done < n;) {
    const ssize_t w = write(STDERR_FILENO, buf + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;  // stderr closed or full: nothing to be done.
    done += static_cast<size_t>(w);
  }
}

}  // namespace

NewG NewprocStart() {
  if (ABSL_PREDICT_FALSE(ExternalSpawner())) {
    external_spawns.fetch_add(1, std::memory_order_seq_cst);
    if (!accepting_external.load(std::memory_order_seq_cst)) {
      external_spawns.fetch_sub(1, std::memory_order_release);
      NoRuntime("go");
    }
    ++spawns_in_flight_here;
  }
  ProcG* g = RuntimeOfSpawn()->Gget();
  return {g, &g->fn};
}

void NewprocFinish(ProcG* g) {
  RuntimeOfSpawn()->Ready(g);
  EndExternalSpawn();
}

void NewprocAbort(ProcG* g) {
  RuntimeOfSpawn()->Gabort(g);
  EndExternalSpawn();
}

namespace {

// fork(): the runtime's locks are held across it, so the child finds them
// consistent; the child then abandons the runtime (its Ms did not follow).
void ForkPrepare() ABSL_EXCLUSIVE_LOCK_FUNCTION(control_mu, stats_mu) {
  control_mu.Lock();
  stats_mu.Lock();
  if (Runtime* rt = TheRuntime()) rt->LockAll();
}

void ForkParent() ABSL_UNLOCK_FUNCTION(control_mu, stats_mu) {
  if (Runtime* rt = TheRuntime()) rt->UnlockAll();
  stats_mu.Unlock();
  control_mu.Unlock();
}

void ForkChild() ABSL_UNLOCK_FUNCTION(control_mu, stats_mu) {
  if (Runtime* rt = TheRuntime()) {
    rt->UnlockAll();
    last_stats = rt->Read();  // Leaked: its threads may have held anything.
    the_runtime.store(nullptr, std::memory_order_release);
    forked_away.store(true, std::memory_order_relaxed);
  }
  // The spawners that were in flight did not follow, but for this thread's.
  accepting_external.store(false, std::memory_order_relaxed);
  external_spawns.store(0, std::memory_order_relaxed);
  spawns_cut_by_fork_here += spawns_in_flight_here;
  spawns_in_flight_here = 0;
  stats_mu.Unlock();
  control_mu.Unlock();
}

}  // namespace
}  // namespace internal

void Start(const Options& options) {
  internal::CheckControlContext("Start");
  if (options.gomaxprocs < 1 || options.gomaxprocs > kMaxProcs) {
    RawBuffer b;
    b.Str("proc: gomaxprocs=").Dec(options.gomaxprocs).Str(" not in [1, ");
    b.Dec(kMaxProcs).Str("]");
    Throw(b.c_str());
  }
  if (options.stack_source.alloc == nullptr ||
      options.stack_source.free == nullptr) {
    Throw("proc: Options::stack_source has a null function");
  }
  static std::once_flag atfork;
  std::call_once(atfork, [] {
    pthread_atfork(&internal::ForkPrepare, &internal::ForkParent,
                   &internal::ForkChild);
  });
  MutexLock l(&internal::control_mu);
  if (internal::TheRuntime() != nullptr) {
    Throw("proc: Start while a runtime runs (Stop it first)");
  }
  auto* rt = new internal::Runtime(options);
  internal::the_runtime.store(rt, std::memory_order_release);
  internal::forked_away.store(false, std::memory_order_relaxed);
  rt->StartMs();
  internal::accepting_external.store(true, std::memory_order_seq_cst);
}

void Wait() {
  internal::CheckControlContext("Wait");
  internal::Runtime* rt = internal::TheRuntime();
  if (rt != nullptr) return rt->Wait();
  if (internal::forked_away.load(std::memory_order_relaxed)) {
    internal::NoRuntime("proc: Wait");
  }
}

void Stop() {
  internal::CheckControlContext("Stop");
  internal::Runtime* rt = internal::TheRuntime();
  if (rt == nullptr) {
    if (internal::forked_away.load(std::memory_order_relaxed)) {
      internal::NoRuntime("proc: Stop");
    }
    return;
  }
  rt->Wait();  // Not under control_mu: a G may fork meanwhile.
  // No spawns from other threads from now on; those under way finish, and
  // rt->Stop() waits for their Gs.
  internal::accepting_external.store(false, std::memory_order_seq_cst);
  while (internal::external_spawns.load(std::memory_order_seq_cst) != 0) {
    std::this_thread::yield();
  }
  const bool print_usage = internal::StackUsageAsked(rt->options());
  {
    MutexLock l(&internal::control_mu);
    rt->Stop();  // Every G finished and every M ended.
    {
      MutexLock s(&internal::stats_mu);
      internal::last_stats = rt->Read();
      internal::the_runtime.store(nullptr, std::memory_order_release);
    }
    delete rt;
  }
  // Every G's stacks are back in the caches and pools: the census sees the
  // depths they reached.
  if (print_usage) internal::PrintStackUsage();
}

ProcStats ReadProcStats() {
  MutexLock l(&internal::stats_mu);
  internal::Runtime* rt = internal::TheRuntime();
  return rt != nullptr ? rt->Read() : internal::last_stats;
}

void Gosched() {
  internal::ProcG* g = internal::CurrentG();
  if (g == nullptr) return;
  internal::Mcall(g, internal::Req::kGosched);
}

}  // namespace proc
}  // namespace stackalloc
