// The scheduler loop of the fiber runtime: run queues, work stealing, and
// the parking protocol of idle Ms (Go's schedule / findrunnable / wakep).
// Why no wake-up is lost is argued in docs/proc.md.

#include <time.h>

#include <algorithm>
#include <atomic>

#include "base/mutex.h"
#include "base/sanitizers.h"
#include "base/throw.h"
#include "proc/g.h"
#include "proc/runq.h"
#include "proc/runtime.h"

namespace stackalloc {
namespace proc {
namespace internal {

namespace {

thread_local Sched* tls_sched = nullptr;

// A thief pauses this long before taking a running M's runnext: that G is
// most likely about to run there (Go's usleep(3) in runqgrab).
void PauseBeforeStealingRunnext() {
  timespec ts = {0, 3000};
  nanosleep(&ts, nullptr);
}

uint32_t Fastrand(Sched* s) {
  // xorshift32, per M (Go's fastrand).
  uint32_t x = s->fastrand;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  s->fastrand = x;
  return x;
}

}  // namespace

Sched* CurrentSched() {
  Sched* s = tls_sched;
  asm volatile("" : "+r"(s));  // Read anew: a G may resume on another M.
  return s;
}

void Runtime::Mstart(Sched* s) {
  s->m = getm();
  s->tsan_fiber = sanitizer::CurrentFiber();
  s->fastrand = 0x9e3779b9u * static_cast<uint32_t>(s->id + 1);
  tls_sched = s;
  Schedule(s);
  Mexit(s);
  tls_sched = nullptr;
}

void Runtime::Schedule(Sched* s) {
  for (;;) {
    ProcG* g = nullptr;
    // Now and then the global queue first, so that Gs spawning Gs on every
    // M cannot starve it (Go: every 61st schedtick).
    if (++s->schedtick % 61 == 0 &&
        gsize_.load(std::memory_order_relaxed) > 0) {
      MutexLock l(&mu_);
      g = Globrunqget(s, 1);
    }
    if (g == nullptr) g = s->runq.Get();
    if (g == nullptr) {
      g = Findrunnable(s);
      if (g == nullptr) return;  // Stopping.
    }
    if (s->spinning) Resetspinning(s);
    // Gs left in this M's ring (a batch from the global queue, or stolen)
    // are work for an idle M: without a spawn, nothing else would wake one.
    if (s->runq.RingSize() > 0) Wakep();
    Execute(s, g);
  }
}

ProcG* Runtime::Findrunnable(Sched* s) {
  for (;;) {
    if (stopping_.load(std::memory_order_acquire)) return nullptr;
    if (ProcG* g = s->runq.Get()) return g;
    if (gsize_.load(std::memory_order_acquire) > 0) {
      MutexLock l(&mu_);
      if (ProcG* g = Globrunqget(s, 0)) return g;
    }
    // Steal, as a spinning M, unless enough Ms already spin (half the busy
    // ones, as Go limits them).
    if (!s->spinning) {
      const int32_t busy = nprocs_ - npidle_.load(std::memory_order_relaxed);
      if (2 * nmspinning_.load(std::memory_order_relaxed) < busy) {
        s->spinning = true;
        nmspinning_.fetch_add(1, std::memory_order_seq_cst);
      }
    }
    if (s->spinning) {
      if (ProcG* g = StealWork(s)) return g;
    }
    {
      MutexLock l(&mu_);
      if (stopping_.load(std::memory_order_relaxed)) return nullptr;
      if (ProcG* g = Globrunqget(s, 0)) return g;
      Pidleput(s);
    }
    if (s->spinning) {
      // The last look, after leaving the spinning Ms: a submitter that saw
      // this M spinning did not wake anyone, so its work must be seen here.
      // seq_cst on both sides: the submitter stores its G, then reads
      // nmspinning; we decrement nmspinning, then read the queues.
      s->spinning = false;
      nmspinning_.fetch_sub(1, std::memory_order_seq_cst);
      if (AnyWork()) {
        bool removed;
        {
          MutexLock l(&mu_);
          removed = PidleRemove(s);
        }
        if (removed) {
          s->spinning = true;
          nmspinning_.fetch_add(1, std::memory_order_seq_cst);
          continue;
        }
        // A waker took us off the idle list: its note is on its way.
      }
    }
    Park(s);
  }
}

ProcG* Runtime::StealWork(Sched* s) {
  constexpr int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    // The last round may take runnext Gs, after a pause if there are any.
    const bool last = round == kRounds - 1;
    if (last && AnyWork()) PauseBeforeStealingRunnext();
    const uint32_t start = Fastrand(s) % static_cast<uint32_t>(nprocs_);
    for (int i = 0; i < nprocs_; ++i) {
      if (stopping_.load(std::memory_order_relaxed)) return nullptr;
      Sched* victim = scheds_[(start + i) % nprocs_].get();
      if (victim == s) continue;
      if (ProcG* g = s->runq.StealFrom(&victim->runq, last)) {
        s->gs_stolen.Add(1 + s->runq.RingSize());
        return g;
      }
    }
    if (gsize_.load(std::memory_order_acquire) > 0) {
      MutexLock l(&mu_);
      if (ProcG* g = Globrunqget(s, 0)) return g;
    }
  }
  return nullptr;
}

void Runtime::Resetspinning(Sched* s) {
  s->spinning = false;
  // The last spinner to find work starts another, in case there is more
  // (Go's M wake-up policy: at most one spinning M is started at a time).
  if (nmspinning_.fetch_sub(1, std::memory_order_seq_cst) == 1) Wakep();
}

void Runtime::Wakep() {
  if (npidle_.load(std::memory_order_seq_cst) == 0) return;
  int32_t zero = 0;
  if (nmspinning_.load(std::memory_order_seq_cst) != 0 ||
      !nmspinning_.compare_exchange_strong(zero, 1,
                                           std::memory_order_seq_cst)) {
    return;
  }
  Sched* w;
  {
    MutexLock l(&mu_);
    w = Pidleget();
  }
  if (w == nullptr) {
    nmspinning_.fetch_sub(1, std::memory_order_seq_cst);
    return;
  }
  Notewakeup(w, /*spinning=*/true);
}

bool Runtime::AnyWork() const {
  if (gsize_.load(std::memory_order_seq_cst) > 0) return true;
  for (const auto& v : scheds_) {
    if (!v->runq.Empty()) return true;
  }
  return false;
}

void Runtime::Park(Sched* s) {
  MutexLock l(&s->note_mu);
  while (!s->note) s->note_cv.Wait(&s->note_mu);
  s->note = false;
  s->spinning = s->note_spinning;
  s->note_spinning = false;
}

void Runtime::Notewakeup(Sched* s, bool spinning) {
  {
    MutexLock l(&s->note_mu);
    s->note = true;
    s->note_spinning = spinning;
  }
  s->note_cv.Signal();
}

void Runtime::Runqput(Sched* s, ProcG* g) {
  // The new G runs next on this M, when the spawner yields or exits (Go's
  // runnext). Only the G it displaces becomes work for other Ms: waking an
  // M for runnext would have it steal a G this M is about to run.
  ProcG* kicked = s->runq.PutNext(g);
  if (kicked == nullptr) return;
  GList overflow;
  if (!s->runq.Put(kicked, &overflow)) Globrunqput(&overflow);
  Wakep();
}

void Runtime::Globrunqput(GList* batch) {
  MutexLock l(&mu_);
  runq_.Append(batch);
  gsize_.store(runq_.n, std::memory_order_seq_cst);
}

ProcG* Runtime::Globrunqget(Sched* s, int max) {
  if (runq_.empty()) return nullptr;
  int64_t n = std::min(runq_.n, runq_.n / nprocs_ + 1);
  if (max > 0) n = std::min<int64_t>(n, max);
  n = std::min<int64_t>(n, LocalRunq::kSize / 2);
  ProcG* g = runq_.PopFront();
  GList overflow;
  while (--n > 0) {
    if (!s->runq.Put(runq_.PopFront(), &overflow)) break;
  }
  if (!overflow.empty()) {  // Not reached: the M's ring had room.
    overflow.Append(&runq_);
    runq_ = overflow;
  }
  gsize_.store(runq_.n, std::memory_order_seq_cst);
  return g;
}

void Runtime::Pidleput(Sched* s) {
  s->idlelink = pidle_;
  pidle_ = s;
  const int32_t idle = npidle_.load(std::memory_order_relaxed) + 1;
  npidle_.store(idle, std::memory_order_seq_cst);
  // Every M idle, so every local queue empty (only an M fills its own, and
  // it parks with it empty), and the global queue empty: no G is left.
  if (idle == nprocs_ && runq_.empty() && waiters_ > 0) {
    quiescent_.SignalAll();
  }
}

Sched* Runtime::Pidleget() {
  Sched* s = pidle_;
  if (s == nullptr) return nullptr;
  pidle_ = s->idlelink;
  s->idlelink = nullptr;
  npidle_.store(npidle_.load(std::memory_order_relaxed) - 1,
                std::memory_order_seq_cst);
  return s;
}

bool Runtime::PidleRemove(Sched* s) {
  for (Sched** p = &pidle_; *p != nullptr; p = &(*p)->idlelink) {
    if (*p == s) {
      *p = s->idlelink;
      s->idlelink = nullptr;
      npidle_.store(npidle_.load(std::memory_order_relaxed) - 1,
                    std::memory_order_seq_cst);
      return true;
    }
  }
  return false;
}

void Runtime::Wait() {
  MutexLock l(&mu_);
  ++waiters_;
  while (npidle_.load(std::memory_order_relaxed) != nprocs_ || !runq_.empty()) {
    quiescent_.Wait(&mu_);
  }
  --waiters_;
}

void Runtime::Stop() {
  Wait();
  Sched* idle;
  {
    MutexLock l(&mu_);
    stopping_.store(true, std::memory_order_release);
    idle = pidle_;
    pidle_ = nullptr;
    npidle_.store(0, std::memory_order_seq_cst);
  }
  while (idle != nullptr) {
    Sched* next = idle->idlelink;
    idle->idlelink = nullptr;
    Notewakeup(idle, false);
    idle = next;
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
  GList dead;
  {
    MutexLock l(&gfree_mu_);
    dead.Append(&gfree_);
  }
  while (ProcG* g = dead.PopFront()) Gdestroy(g);
}

}  // namespace internal
}  // namespace proc
}  // namespace stackalloc
