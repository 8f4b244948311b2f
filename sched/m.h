// M and G records, the allm registry, and the binding of OS threads to Ms.
//
// As in the Go runtime: an M is an OS thread that runs Gs; a G is a goroutine
// (here: any computation with its own stack). Every M has a g0, the G that
// describes the thread's own stack, on which the scheduler and the stack
// allocator run. A thread gets an M the first time it enters the runtime and
// gives it back when it exits (or calls dropm()), after every thread_local
// destructor of the thread has run: the M goes onto a lock-free idle list, and
// the next thread to enter takes it over, warm stack cache and all. Ms are
// never freed, so allm never holds more Ms than the most threads that were in
// the runtime at once.
//
// Ownership: an M's fields are read and written only by the thread bound to
// it, except id, alllink and stats, which any thread may read once the M is
// on allm.

#ifndef SCHED_M_H_
#define SCHED_M_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "alloc/fix_alloc.h"
#include "base/stack_sizes.h"
#include "stats/mstats.h"

namespace stackalloc {

class M;

// A goroutine's record: the stack it runs on. The fiber runtime extends it.
struct G {
  uintptr_t stack_lo = 0;  // Lowest address of the stack.
  uintptr_t stack_hi = 0;  // One past the highest address.
  M* m = nullptr;          // The M running this G, if any.
  // The runtime's number for this G (Go's goid), for fatal messages such as
  // the stack overflow report; 0 if the runtime gives none.
  int64_t goid = 0;

  // True if p lies on this G's stack.
  bool OnStack(const void* p) const {
    auto a = reinterpret_cast<uintptr_t>(p);
    return stack_lo <= a && a < stack_hi;
  }
};

// Capacity of an M's stack cache; its limit (how much of it is used) is
// tunable up to this, see SetStackCacheLimit() in stackalloc.h.
inline constexpr int kStackCacheMax = 64;
// Default limit: 32 stacks (128 KiB, one chunk), exchanged 16 at a time.
inline constexpr int kStackCacheDefaultLimit = 32;

class M {
 public:
  // What stackalloc_fast_size() holds while curg != g0: matches no size.
  static constexpr size_t kNotOnG0 = ~size_t{0};

  // An unregistered M; mcommoninit() gives it an identity.
  constexpr M() = default;
  M(const M&) = delete;
  M& operator=(const M&) = delete;

  int64_t id() const { return id_; }
  uint32_t fastrand() const { return fastrand_; }
  // Next M on allm (older registrations come later).
  M* alllink() const { return alllink_; }

  G* g0() { return &g0_; }
  G* curg() const { return curg_; }
  // The only way to change curg, so stackalloc_fast_size() cannot go stale.
  void set_curg(G* g) {
    curg_ = g;
    fast_size_ = g == &g0_ ? kFixedStack : kNotOnG0;
  }
  // kFixedStack while the M runs on g0, kNotOnG0 otherwise: one comparison
  // with a request's size checks both the size and the stack it runs on.
  size_t stackalloc_fast_size() const { return fast_size_; }

  // Set while the M is inside malloc / the collector (the seed's flags):
  // stack requests must then be FixedStack and are served by the M's pool.
  int mallocing = 0;
  int gcing = 0;

  // The M's own stack FixAlloc (Go's m->stackalloc): carves fresh stacks
  // from chunks for this M's cache.
  FixAlloc stackalloc;
  // Free FixedStack stacks; entries [0, stats.cached) are valid, and there
  // are never more than stackcache_limit of them.
  void* stackcache[kStackCacheMax] = {};

 private:
  // Read by every fast-path call: kept on the cache line just before stats.
  size_t fast_size_ = kNotOnG0;

 public:
  int64_t stackcache_limit = kStackCacheDefaultLimit;
  // This M's statistics; stats.cached is stackcache's length.
  MStatsShard stats;

  // Link on the idle list while no thread is bound to this M.
  std::atomic<M*> idlelink{nullptr};

 private:
  friend void mcommoninit(M* m);

  G* curg_ = nullptr;
  int64_t id_ = -1;
  uint32_t fastrand_ = 0;
  M* alllink_ = nullptr;
  G g0_;
};

// Registers m: id = mcount++, fastrand = 0x49f6428a + id, its stack FixAlloc
// of FixedStack objects over StackChunk(), its stats shard, and finally a
// lock-free push onto allm, so a thread walking allm only ever sees Ms that
// are fully initialised. Thread-safe.
void mcommoninit(M* m);

// Where every M's stack FixAlloc takes its chunks: by default
// SysAllocAligned(n, FixAlloc::kChunk); the entry point installs the global
// pool's released-chunk reuse in front of that. Read at every chunk.
void* StackChunk(size_t n);

// Head of the list of all Ms (follow M::alllink()). Safe to walk while other
// threads register: Ms are only ever added at the head and never removed.
M* allm();
// Number of Ms ever registered.
int32_t mcount();

namespace internal {
// The calling thread's M, or UnboundM() if it has not entered the runtime.
// Initial-exec TLS: one instruction to read on the fast path.
extern __thread M* tls_m ABSL_ATTRIBUTE_INITIAL_EXEC;
// A placeholder M that is never on g0, so the fast path's size check sends
// unbound threads to the slow path without a separate null check.
extern M unbound_m;
inline M* UnboundM() { return &unbound_m; }
// getm()'s slow path: binds an M to the calling thread.
M* BindM();
// Installs the stack chunk source behind StackChunk() (nullptr restores the
// default). For the entry point, which puts the pool's released-chunk reuse
// there; sources must return FixAlloc::kChunk-aligned chunks.
void SetStackChunkSource(FixAlloc::ChunkSource source);
}  // namespace internal

// The calling thread's M. The first call on a thread binds one: an idle M if
// there is one, else a new M registered by mcommoninit(). Either way its g0
// now describes the calling thread's own stack and curg = g0. The M goes
// back to the idle list when the thread exits. Thread-safe. Inline: once
// bound, a thread-local load and a comparison.
inline M* getm() {
  M* m = internal::tls_m;
  if (ABSL_PREDICT_TRUE(m != internal::UnboundM())) return m;
  return internal::BindM();
}

// Unbinds the calling thread's M (if any) and puts it on the idle list with
// its cache intact; the thread's next getm() binds one again. The thread
// must be on g0. Thread exit does this automatically.
void dropm();

// Ms on the idle list now (exact when no thread enters or leaves).
int32_t idle_m_count();

// Calls f(m, arg) for every idle M, with the caller as its owner for the
// duration (the scavenger empties idle Ms' caches this way). A thread that
// enters meanwhile waits for the Ms to come back rather than creating one,
// so allm still never outgrows the peak number of threads.
void ForEachIdleM(void (*f)(M* m, void* arg), void* arg);

}  // namespace stackalloc

#endif  // SCHED_M_H_
