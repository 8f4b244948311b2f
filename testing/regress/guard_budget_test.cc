// Kernels before 6.13 (no MADV_GUARD_INSTALL): guards are mprotect'ed pages
// within a budget of mappings (SetGuardMappingBudget, default 16,384 = 8,192
// guards). A large stack's guard is mprotect'ed in the stack's own mapping;
// stackfree unmaps it, so its mappings are gone -- but the budget is never
// given back (guard.cc: `used` only grows; stack_heap.cc LargeStackfree does
// not return it). A process that allocates and frees large stacks (or
// stacks at all: a program whose peak is far below the budget) loses every
// guard after 8,192 large-stack lifetimes: from then on every new chunk and
// every large stack is unguarded, and overflows go unreported, although the
// process holds only a handful of mappings.

#include <cstdio>
#include <cstdlib>

#include "alloc/guard.h"
#include "gtest/gtest.h"
#include "stackalloc.h"
#include "stats/mstats.h"

namespace stackalloc {
namespace {

int MapsLines() {
  FILE* f = fopen("/proc/self/maps", "r");
  int n = 0;
  for (int c; (c = fgetc(f)) != EOF;) n += c == '\n';
  fclose(f);
  return n;
}

TEST(GuardBudgetDeathTest, FreedLargeStacksGiveTheirMappingsBack) {
  EXPECT_EXIT(
      {
        internal::ForceGuardFallback(true);  // A kernel before 6.13.
        // A budget of 4 guards, as if the default had been nearly used.
        SetGuardMappingBudget(GuardMappingsUsed() + 2 * 4);
        const int lines0 = MapsLines();
        for (int i = 0; i < 100; ++i) {
          const MemStats st0 = ReadMemStats();
          void* p = stackalloc(2 << 20);
          const MemStats st1 = ReadMemStats();
          if (st1.stacks_unguarded != st0.stacks_unguarded) {
            fprintf(stderr,
                    "large stack #%d came without a guard; one live large "
                    "stack, %d mappings more than at the start, budget "
                    "used %zu\n",
                    i, MapsLines() - lines0, GuardMappingsUsed());
            exit(1);
          }
          stackfree(p, 2 << 20);
        }
        exit(0);
      },
      testing::ExitedWithCode(0), "");
}

// The consequence: a 4 KiB stack's overflow after large-stack churn.
TEST(GuardBudgetDeathTest, OverflowStillReportedAfterLargeStackChurn) {
  EXPECT_DEATH(
      {
        internal::ForceGuardFallback(true);
        SetGuardMappingBudget(GuardMappingsUsed() + 2 * 4);
        for (int i = 0; i < 10; ++i) stackfree(stackalloc(2 << 20), 2 << 20);
        void* s = stackalloc(kFixedStack);
        *(static_cast<volatile char*>(s) - 8) = 1;  // Below the stack.
        fprintf(stderr, "no fault: wrote into the neighbour\n");
        exit(0);
      },
      "stack overflow: 4096-byte stack");
}

}  // namespace
}  // namespace stackalloc
