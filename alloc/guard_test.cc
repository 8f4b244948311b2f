#include "alloc/guard.h"

#include <setjmp.h>
#include <signal.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "alloc/sys_alloc.h"
#include "gtest/gtest.h"
#include "testing/process_info.h"

namespace stackalloc {
namespace {

using testing_util::MapsLines;

// Whether touching p faults, with the fault address.
sigjmp_buf jump;
volatile uintptr_t fault_address = 0;
void OnFault(int, siginfo_t* info, void*) {
  fault_address = reinterpret_cast<uintptr_t>(info->si_addr);
  siglongjmp(jump, 1);
}
bool Faults(char* p) {
  struct sigaction sa {
  }, old_segv, old_bus;
  sa.sa_sigaction = &OnFault;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, &old_segv);
  sigaction(SIGBUS, &sa, &old_bus);
  bool faulted = false;
  if (sigsetjmp(jump, 1) == 0) {
    *reinterpret_cast<volatile char*>(p) = 1;
  } else {
    faulted = true;
  }
  sigaction(SIGSEGV, &old_segv, nullptr);
  sigaction(SIGBUS, &old_bus, nullptr);
  return faulted;
}

class GuardTest : public testing::Test {
 protected:
  void TearDown() override {
    internal::ForceGuardFallback(false);
    internal::SetGuardMappingBudget(kDefaultGuardMappingBudget);
  }
};

TEST_F(GuardTest, MadviseGuardsFaultAddNoMappingAndSurviveDontneed) {
  constexpr int kGuards = 512;
  char* m = static_cast<char*>(SysAlloc(kGuards * 2 * kPageSize));
  ASSERT_NE(m, nullptr);
  const int lines0 = MapsLines();
  for (int i = 0; i < kGuards; ++i) {
    ASSERT_EQ(InstallGuard(m + 2 * i * kPageSize), GuardMethod::kMadvise)
        << "this kernel has no MADV_GUARD_INSTALL (Linux 6.13+)";
  }
  EXPECT_EQ(MapsLines(), lines0);
  EXPECT_TRUE(Faults(m));
  EXPECT_EQ(fault_address, reinterpret_cast<uintptr_t>(m));
  EXPECT_FALSE(Faults(m + kPageSize));
  ASSERT_TRUE(SysUnused(m, kGuards * 2 * kPageSize));  // Over the guards too.
  EXPECT_TRUE(Faults(m + 2 * 100 * kPageSize + 17));
  EXPECT_FALSE(Faults(m + (2 * 100 + 1) * kPageSize));
  EXPECT_TRUE(SysFree(m, kGuards * 2 * kPageSize));
}

TEST_F(GuardTest, FallbackUsesMprotectWithinItsBudgetThenGivesNone) {
  internal::ForceGuardFallback(true);
  const size_t used0 = GuardMappingsUsed();
  internal::SetGuardMappingBudget(used0 + 2 * 3);  // Room for three guards.
  char* m = static_cast<char*>(SysAlloc(16 * kPageSize));
  ASSERT_NE(m, nullptr);
  const int lines0 = MapsLines();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(InstallGuard(m + (1 + 4 * i) * kPageSize),
              GuardMethod::kMprotect);
  }
  EXPECT_EQ(InstallGuard(m + 14 * kPageSize), GuardMethod::kNone);
  EXPECT_EQ(GuardMappingsUsed(), used0 + 6);
  EXPECT_EQ(MapsLines(), lines0 + 6);  // One mapping became seven.
  EXPECT_TRUE(Faults(m + 5 * kPageSize));
  EXPECT_FALSE(Faults(m + 14 * kPageSize));
  EXPECT_TRUE(SysFree(m, 16 * kPageSize));
}

}  // namespace
}  // namespace stackalloc
