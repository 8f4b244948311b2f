// The running runtime's state (private to //proc): a P for each M, and the
// Runtime (Go's sched) that owns them, the global run queue, the idle list
// and the G free list. docs/proc.md describes the queues and the parking
// protocol.
//
// Ownership: a P's plain fields belong to its M's thread; its run queue is
// stolen from by other Ms; its counters are read by anyone. Runtime fields
// say which lock guards them.

#ifndef PROC_RUNTIME_H_
#define PROC_RUNTIME_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "base/mutex.h"
#include "proc/g.h"
#include "proc/runq.h"
#include "proc/types.h"
#include "sched/m.h"
#include "stats/mstats.h"

namespace stackalloc {
namespace proc {
namespace internal {

// Dead Gs an M keeps; beyond kGfreeMax, the older ones down to kGfreeKeep
// go to the global free list (Go's gfput keeps 64 and moves 32).
inline constexpr int kGfreeMax = 128;
inline constexpr int kGfreeKeep = 64;
// Gs moved at once from the global free list to an M that has none.
inline constexpr int kGfreeBatch = 32;
// TSan fibers an M keeps for its next Gs (TSan builds only).
inline constexpr int kFiberCache = 16;
// goids an M takes from the global counter at a time (Go's _GoidCacheBatch).
inline constexpr int64_t kGoidBatch = 16;

// An M's scheduling state: Go 1.1's P, with the M's own share (its park
// note, its TSan fiber). A P never changes M: our Ms never block outside the
// scheduler, so they never need to hand their P to another.
struct alignas(64) P {
  LocalRunq runq;

  // The M's thread only.
  int id = 0;
  M* m = nullptr;
  const StackSource* stack_source = nullptr;  // The runtime's.
  void* tsan_fiber = nullptr;  // The thread's own (nullptr without TSan).
  // The thread's C++ exception state (__cxa_get_globals(), the same for the
  // life of the thread), which the G that runs takes over.
  void* eh_globals = nullptr;
  uint32_t schedtick = 0;  // Gs run: every 61st looks at the global queue.
  uint32_t fastrand = 0;
  bool spinning = false;  // Looking for work to steal, counted in nmspinning.
  GList gfree;            // Dead Gs, with their stacks.
  int64_t goid_next = 0;  // goids [goid_next, goid_end) are this M's.
  int64_t goid_end = 0;
  void* fibers[kFiberCache] = {};  // TSan fibers of dead Gs, for new ones.
  int nfibers = 0;

  // The park note (Go's m->park): set by a waker, cleared by the sleeper.
  Mutex note_mu;
  CondVar note_cv;
  bool note ABSL_GUARDED_BY(note_mu) = false;
  bool note_spinning ABSL_GUARDED_BY(note_mu) = false;  // Handed over.

  P* idlelink = nullptr;  // Guarded by Runtime::mu_ (on the idle list).

  // Written by the M, read by anyone.
  SingleWriterCounter gs_started;
  SingleWriterCounter gs_finished;
  SingleWriterCounter segments;
  SingleWriterCounter large_segments;
  SingleWriterCounter segments_reused;
  SingleWriterCounter gs_stolen;
  SingleWriterCounter g_allocs;
};

class Runtime {
 public:
  // Construction, statistics and fork support (runtime.cc). allp_ is
  // complete before the runtime is published and never changes after, so
  // ReadProcStats and thieves can walk it at any time.
  explicit Runtime(const Options& options);
  ~Runtime();
  void StartMs();  // Starts the Ms' threads.
  const Options& options() const { return options_; }
  ProcStats Read() const;
  // The runtime's locks, in order, held across fork(). Unchecked: the Ms'
  // note locks are taken in a loop, which the analysis cannot follow.
  void LockAll() ABSL_NO_THREAD_SAFETY_ANALYSIS;
  void UnlockAll() ABSL_NO_THREAD_SAFETY_ANALYSIS;

  // Go()'s steps, on a G, an M's g0 or any thread (lifecycle.cc): Gget
  // takes a record, then Ready queues it or Gabort gives it back.
  ProcG* Gget();
  void Ready(ProcG* g);
  void Gabort(ProcG* g);

  // From the controlling thread (schedule.cc).
  void Wait();
  void Stop();

 private:
  // The scheduler loop and its queues (schedule.cc).

  // An M's thread: the scheduler loop on g0 (Go's mstart / schedule).
  void Mstart(P* p);
  void Schedule(P* p);
  // Blocks for the next G; nullptr when the runtime stops.
  ProcG* Findrunnable(P* p);
  ProcG* StealWork(P* p);
  // After a spinning M found work (Go's resetspinning).
  void Resetspinning(P* p);
  // Starts a spinning M if an M is idle and none spins.
  void Wakep();
  // Whether any run queue or the global queue looked non-empty.
  bool AnyWork() const;
  void Park(P* p);  // Sleeps on p's note; sets p->spinning as handed.
  void Notewakeup(P* p, bool spinning);

  // Queues (Go's runqput, globrunqput, globrunqget).
  void Runqput(P* p, ProcG* g);
  void Globrunqput(GList* batch);
  ProcG* Globrunqget(P* p, int max) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Pidleput(P* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  P* Pidleget() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool PidleRemove(P* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The G lifecycle (lifecycle.cc).

  // Runs g until it leaves this M, serving its requests on g0.
  void Execute(P* p, ProcG* g);
  void Gstart(P* p, ProcG* g);
  bool Serve(P* p, ProcG* g);

  // G records (Go's gfput / gfget / malg).
  void Gfput(P* p, ProcG* g);
  ProcG* Gfget(P* p);
  ProcG* Malg(P* p);
  void Gdestroy(ProcG* g);  // On g0: its stack back, the record deleted.
  void Mexit(P* p);         // Frees the M's dead Gs.

  const Options options_;
  const int nprocs_;
  // StackWipe() at Start: a dead G then gives its stack back rather than
  // keep it for the next G that takes its record.
  const bool wipe_stacks_;
  std::vector<std::unique_ptr<P>> allp_;
  std::vector<std::thread> threads_;

  std::atomic<int64_t> goidgen_{1};
  std::atomic<int32_t> nmspinning_{0};
  std::atomic<int32_t> npidle_{0};  // Written under mu_.
  std::atomic<int64_t> gsize_{0};   // runq_.n, written under mu_.
  std::atomic<bool> stopping_{false};

  Mutex mu_;           // Go's sched.lock.
  CondVar quiescent_;  // All Ms idle, no G queued.
  GList runq_ ABSL_GUARDED_BY(mu_);
  P* pidle_ ABSL_GUARDED_BY(mu_) = nullptr;
  int waiters_ ABSL_GUARDED_BY(mu_) = 0;

  Mutex gfree_mu_;  // Go's sched.gFree.lock.
  GList gfree_ ABSL_GUARDED_BY(gfree_mu_);
  std::atomic<int64_t> g_allocs_{0};  // Records made off an M.
};

// The calling thread's P if it is an M of the running runtime, else
// nullptr. Read anew on each call: a G may resume on another M.
P* CurrentP();

}  // namespace internal
}  // namespace proc
}  // namespace stackalloc

#endif  // PROC_RUNTIME_H_
