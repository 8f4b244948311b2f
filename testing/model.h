// A reference model of the allocator, and a driver that runs a sequence of
// operations against the library and the model side by side, checking after
// every step that they agree.
//
// Operations: stackalloc and stackfree of every order and above the
// largest (sizes on and between orders), on the thread that runs the step,
// which changes among several threads (so stacks are freed on other Ms than
// the one that allocated them); a thread that exits (its M goes idle) and is
// replaced; ScavengeStacks; cache limit changes; and injected failures of the
// chunk, pool record and chunk record sources. One thread runs at a time,
// handing over explicitly, so a sequence is deterministic.
//
// After every step: stacks_inuse, every order's inuse and large_stacks_inuse
// equal the model's; every order's pool holds exactly what the counters call
// pooled and released; no counter is below what it must cover; no live stack
// overlaps another; every live stack keeps the bytes written into it; a
// refused allocation changed no statistic at all.
//
// The operations come from a Source: a seeded generator (the model test) or
// fuzzer bytes (the libFuzzer target). Not thread-safe: one driver per
// process at a time.

#ifndef TESTING_MODEL_H_
#define TESTING_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace stackalloc {
namespace model {

// Where operations come from: Next() returns the next 32 random bits, and
// Done() tells when a finite source (fuzzer bytes) has run out.
class Source {
 public:
  virtual ~Source() = default;
  virtual uint32_t Next() = 0;
  virtual bool Done() const { return false; }
};

struct Result {
  bool ok = true;
  std::string error;    // The first disagreement, with its step.
  int64_t steps = 0;    // Operations run.
  int64_t allocs = 0;   // Successful allocations...
  int64_t refused = 0;  // ...and ones refused under injected failure.
  int64_t frees = 0;
  int64_t cross_frees = 0;      // Freed on another thread.
  int64_t faults_injected = 0;  // Source calls refused.
  int64_t thread_exits = 0;
  int64_t scavenges = 0;
};

// Runs up to max_steps operations from `source` on `threads` threads (2..8);
// stops at the first disagreement. Frees everything left at the end and
// restores every setting it changed.
Result Run(Source& source, int64_t max_steps, int threads);

}  // namespace model
}  // namespace stackalloc

#endif  // TESTING_MODEL_H_
