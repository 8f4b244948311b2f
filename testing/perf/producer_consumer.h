// Stacks allocated on some threads and freed on others: producers allocate
// and hand stacks through a bounded queue to consumers, who free them. The
// pattern of a runtime whose Gs start on one M and finish on another.

#ifndef TESTING_PERF_PRODUCER_CONSUMER_H_
#define TESTING_PERF_PRODUCER_CONSUMER_H_

#include <cstddef>
#include <cstdint>

#include "base/stack_sizes.h"
#include "proc/proc.h"

namespace stackalloc {
namespace baseline {

struct PassResult {
  bool ok = true;          // No stack refused or corrupted in transit.
  double seconds = 0;      // Wall time.
  uint64_t peak_live = 0;  // Most stack bytes allocated and not freed.
};

// Passes `ops` stacks of `stack_size` bytes from `producers` threads to
// `consumers` threads through a queue of `queue` entries; each stack is
// written at both ends by its producer and checked by its consumer. `design`
// is the allocator under test (stackalloc / stackfree, or a baseline),
// called as a runtime would call its stack source: on threads that are not
// Gs.
PassResult PassStacks(const proc::StackSource& design, int producers,
                      int consumers, size_t queue, int64_t ops,
                      size_t stack_size = kFixedStack);

}  // namespace baseline
}  // namespace stackalloc

#endif  // TESTING_PERF_PRODUCER_CONSUMER_H_
