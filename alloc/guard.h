// Guard pages: one page below every stack that faults when touched.
//
// Where the kernel has MADV_GUARD_INSTALL (Linux 6.13+), a guard is a marker
// in the page tables of an existing mapping: it adds no mapping (so a million
// guarded stacks fit under vm.max_map_count), survives MADV_DONTNEED of the
// pages around and over it, and is installed once, when a slot is first
// carved. Elsewhere (EINVAL) guards fall back to mprotect(PROT_NONE), which
// splits the mapping: each costs up to two mappings, so they are given only
// within a budget (SetGuardMappingBudget, default kDefaultGuardMappingBudget);
// past it a stack is handed out without a guard, and counted.
//
// Thread-safe and lock-free.

#ifndef ALLOC_GUARD_H_
#define ALLOC_GUARD_H_

#include <cstddef>

namespace stackalloc {

enum class GuardMethod {
  kMadvise,   // MADV_GUARD_INSTALL: no mapping added.
  kMprotect,  // mprotect(PROT_NONE): up to two mappings added.
  kNone,      // No guard: the mprotect budget is spent, or the call failed.
};

// Mappings the mprotect fallback may add, by default: a quarter of Linux's
// default vm.max_map_count (65,530), so the process keeps room for its own.
inline constexpr size_t kDefaultGuardMappingBudget = 16384;

// Makes the page at p (page-aligned, inside a read-write private mapping of
// ours) a guard page. `mappings`: what an mprotect'ed guard there adds to
// the mappings (2 inside a mapping, 1 at its end), charged to the budget;
// 0 charges nothing (the few guards that are not a stack's, one per M).
GuardMethod InstallGuard(void* p, size_t mappings = 2);

// The same for the n pages at pages[0, n) (n <= kMaxGuardBatch), in as few
// system calls as the kernel allows: one process_madvise() over them all
// where the kernel takes MADV_GUARD_INSTALL there for the calling process
// (Linux 6.13+) and n >= kMinGuardBatch, where one call measures faster than
// one madvise() each; otherwise one madvise() each, then the mprotect
// fallback. methods[i] says how page i went.
inline constexpr int kMaxGuardBatch = 64;
inline constexpr int kMinGuardBatch = 3;
void InstallGuards(void* const* pages, int n, GuardMethod* methods,
                   size_t mappings = 2);

// Gives back to the budget the mappings of an mprotect'ed guard whose
// mapping was unmapped (a large stack's).
void ReleaseGuard(size_t mappings);

// Mappings the fallback has added so far.
size_t GuardMappingsUsed();

namespace internal {
// Sets the fallback's budget, in mappings; guards already made stay. The
// public stackalloc::SetGuardMappingBudget (stackalloc.h).
void SetGuardMappingBudget(size_t mappings);

// Tests: behave as a kernel without MADV_GUARD_INSTALL (true) or probe the
// kernel again (false).
void ForceGuardFallback(bool on);
// Tests: behave as a kernel whose process_madvise() does not take
// MADV_GUARD_INSTALL (true), or probe it again (false).
void ForceGuardOneByOne(bool on);
}  // namespace internal

}  // namespace stackalloc

#endif  // ALLOC_GUARD_H_
