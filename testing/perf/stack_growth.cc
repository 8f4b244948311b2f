#include "testing/perf/stack_growth.h"

#include <atomic>
#include <cstring>

#include "absl/base/attributes.h"
#include "testing/baselines/seed_designs.h"

namespace stackalloc {
namespace baseline {

// External linkage and never const, so the compiler cannot know it stays
// zero and fold the copy and the scan away (Go's padData).
uint64_t stack_growth_pad_data[128];

namespace {

// What a StackGrowthRecursive level needs below its stack check: the frame
// with the pad and the small frames before the next check.
constexpr size_t kFrameNeed = sizeof(stack_growth_pad_data) + 128;

// The frame itself. Out of line, so it is allocated only after the check
// in StackGrowthRecursive (as Go's prologue checks before SUB SP).
ABSL_ATTRIBUTE_NOINLINE void StackGrowthFrame(int i) {
  uint64_t pad[128];
  memcpy(pad, stack_growth_pad_data, sizeof pad);
  // pad lives in memory and was written: the copy and the scan are real.
  asm volatile("" : : "r"(pad) : "memory");
  for (uint64_t w : pad) {
    if (w != 0) return;
  }
  if (i != 0) StackGrowthRecursive(i - 1);
  // pad stays live across the call: no tail call, the frames really nest.
  asm volatile("" : : "r"(pad) : "memory");
}

}  // namespace

void StackGrowthRecursive(int i) {
  proc::WithStack(kFrameNeed, [i] { StackGrowthFrame(i); });
}

void RunStackGrowth(int procs, int64_t n) {
  std::atomic<int64_t> turns{n / kCallsPerSched};
  for (int p = 0; p < procs; ++p) {
    proc::Go([&turns] {
      while (turns.fetch_sub(1, std::memory_order_relaxed) > 0) {
        proc::Gosched();
        for (int c = 0; c < kCallsPerSched; ++c) {
          StackGrowthRecursive(kStackGrowthDepth);
        }
      }
    });
  }
  proc::Wait();
}

const proc::StackSource kOldStackSource = {&OldStackalloc, &OldStackfree};

}  // namespace baseline
}  // namespace stackalloc
