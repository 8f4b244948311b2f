// The scheduler loop of the fiber runtime: run queues, work stealing, and
// the parking protocol of idle Ms (Go's schedule / findrunnable / wakep).
// Why no wake-up is lost is argued in docs/proc.md.

#include <cxxabi.h>
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

thread_local P* tls_p = nullptr;

// A thief pauses this long before taking a running M's runnext: that G is
// most likely about to run there (Go's usleep(3) in runqgrab).
void PauseBeforeStealingRunnext() {
  timespec ts = {0, 3000};
  nanosleep(&ts, nullptr);
}

uint32_t Fastrand(P* p) {
  // xorshift32, per M (Go's fastrand).
  uint32_t x = p->fastrand;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  p->fastrand = x;
  return x;
}

}  // namespace

P* CurrentP() {
  P* p = tls_p;
  asm volatile("" : "+r"(p));  // Read anew: a G may resume on another M.
  return p;
}

void Runtime::Mstart(P* p) {
  p->m = getm();
  p->tsan_fiber = sanitizer::CurrentFiber();
  p->eh_globals = abi::__cxa_get_globals();
  p->fastrand = 0x9e3779b9u * static_cast<uint32_t>(p->id + 1);
  tls_p = p;
  Schedule(p);
  Mexit(p);
  tls_p = nullptr;
}

void Runtime::Schedule(P* p) {
  for (;;) {
    ProcG* g = nullptr;
    // Now and then the global queue first, so that Gs spawning Gs on every
    // M cannot starve it (Go: every 61st schedtick).
    if (++p->schedtick % 61 == 0 &&
        gsize_.load(std::memory_order_relaxed) > 0) {
      MutexLock l(&mu_);
      g = Globrunqget(p, 1);
    }
    if (g == nullptr) g = p->runq.Get();
    if (g == nullptr) {
      g = Findrunnable(p);
      if (g == nullptr) return;  // Stopping.
    }
    if (p->spinning) Resetspinning(p);
    // Gs left in this M's ring (a batch from the global queue, or stolen)
    // are work for an idle M: without a spawn, nothing else would wake one.
    if (p->runq.RingSize() > 0) Wakep();
    Execute(p, g);
  }
}

ProcG* Runtime::Findrunnable(P* p) {
  for (;;) {
    if (stopping_.load(std::memory_order_acquire)) return nullptr;
    if (ProcG* g = p->runq.Get()) return g;
    if (gsize_.load(std::memory_order_acquire) > 0) {
      MutexLock l(&mu_);
      if (ProcG* g = Globrunqget(p, 0)) return g;
    }
    // Steal, as a spinning M, unless enough Ms already spin (half the busy
    // ones, as Go limits them).
    if (!p->spinning) {
      const int32_t busy = nprocs_ - npidle_.load(std::memory_order_relaxed);
      if (2 * nmspinning_.load(std::memory_order_relaxed) < busy) {
        p->spinning = true;
        nmspinning_.fetch_add(1, std::memory_order_seq_cst);
      }
    }
    if (p->spinning) {
      if (ProcG* g = StealWork(p)) return g;
    }
    {
      MutexLock l(&mu_);
      if (stopping_.load(std::memory_order_relaxed)) return nullptr;
      if (ProcG* g = Globrunqget(p, 0)) return g;
      Pidleput(p);
    }
    if (p->spinning) {
      // The last look, after leaving the spinning Ms: a submitter that saw
      // this M spinning did not wake anyone, so its work must be seen here.
      // seq_cst on both sides: the submitter stores its G, then reads
      // nmspinning; we decrement nmspinning, then read the queues.
      p->spinning = false;
      nmspinning_.fetch_sub(1, std::memory_order_seq_cst);
      if (AnyWork()) {
        bool removed;
        {
          MutexLock l(&mu_);
          removed = PidleRemove(p);
        }
        if (removed) {
          p->spinning = true;
          nmspinning_.fetch_add(1, std::memory_order_seq_cst);
          continue;
        }
        // A waker took us off the idle list: its note is on its way.
      }
    }
    Park(p);
  }
}

ProcG* Runtime::StealWork(P* p) {
  constexpr int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    // The last round may take runnext Gs, after a pause if there are any.
    const bool last = round == kRounds - 1;
    if (last && AnyWork()) PauseBeforeStealingRunnext();
    const uint32_t start = Fastrand(p) % static_cast<uint32_t>(nprocs_);
    for (int i = 0; i < nprocs_; ++i) {
      if (stopping_.load(std::memory_order_relaxed)) return nullptr;
      P* victim = allp_[(start + i) % nprocs_].get();
      if (victim == p) continue;
      if (ProcG* g = p->runq.StealFrom(&victim->runq, last)) {
        p->gs_stolen.Add(1 + p->runq.RingSize());
        return g;
      }
    }
    if (gsize_.load(std::memory_order_acquire) > 0) {
      MutexLock l(&mu_);
      if (ProcG* g = Globrunqget(p, 0)) return g;
    }
  }
  return nullptr;
}

void Runtime::Resetspinning(P* p) {
  p->spinning = false;
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
  P* w;
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
  for (const auto& v : allp_) {
    if (!v->runq.Empty()) return true;
  }
  return false;
}

void Runtime::Park(P* p) {
  MutexLock l(&p->note_mu);
  while (!p->note) p->note_cv.Wait(&p->note_mu);
  p->note = false;
  p->spinning = p->note_spinning;
  p->note_spinning = false;
}

void Runtime::Notewakeup(P* p, bool spinning) {
  {
    MutexLock l(&p->note_mu);
    p->note = true;
    p->note_spinning = spinning;
  }
  p->note_cv.Signal();
}

void Runtime::Runqput(P* p, ProcG* g) {
  // The new G runs next on this M, when the spawner yields or exits (Go's
  // runnext). Only the G it displaces becomes work for other Ms: waking an
  // M for runnext would have it steal a G this M is about to run.
  ProcG* kicked = p->runq.PutNext(g);
  if (kicked == nullptr) return;
  GList overflow;
  if (!p->runq.Put(kicked, &overflow)) Globrunqput(&overflow);
  Wakep();
}

void Runtime::Globrunqput(GList* batch) {
  MutexLock l(&mu_);
  runq_.Append(batch);
  gsize_.store(runq_.n, std::memory_order_seq_cst);
}

ProcG* Runtime::Globrunqget(P* p, int max) {
  if (runq_.empty()) return nullptr;
  int64_t n = std::min(runq_.n, runq_.n / nprocs_ + 1);
  if (max > 0) n = std::min<int64_t>(n, max);
  n = std::min<int64_t>(n, LocalRunq::kSize / 2);
  ProcG* g = runq_.PopFront();
  GList overflow;
  while (--n > 0) {
    if (!p->runq.Put(runq_.PopFront(), &overflow)) break;
  }
  if (!overflow.empty()) {  // Not reached: the M's ring had room.
    overflow.Append(&runq_);
    runq_ = overflow;
  }
  gsize_.store(runq_.n, std::memory_order_seq_cst);
  return g;
}

void Runtime::Pidleput(P* p) {
  p->idlelink = pidle_;
  pidle_ = p;
  const int32_t idle = npidle_.load(std::memory_order_relaxed) + 1;
  npidle_.store(idle, std::memory_order_seq_cst);
  // Every M idle, so every local queue empty (only an M fills its own, and
  // it parks with it empty), and the global queue empty: no G is left.
  if (idle == nprocs_ && runq_.empty() && waiters_ > 0) {
    quiescent_.SignalAll();
  }
}

P* Runtime::Pidleget() {
  P* p = pidle_;
  if (p == nullptr) return nullptr;
  pidle_ = p->idlelink;
  p->idlelink = nullptr;
  npidle_.store(npidle_.load(std::memory_order_relaxed) - 1,
                std::memory_order_seq_cst);
  return p;
}

bool Runtime::PidleRemove(P* p) {
  for (P** link = &pidle_; *link != nullptr; link = &(*link)->idlelink) {
    if (*link == p) {
      *link = p->idlelink;
      p->idlelink = nullptr;
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
  P* idle;
  {
    MutexLock l(&mu_);
    stopping_.store(true, std::memory_order_release);
    idle = pidle_;
    pidle_ = nullptr;
    npidle_.store(0, std::memory_order_seq_cst);
  }
  while (idle != nullptr) {
    P* next = idle->idlelink;
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
