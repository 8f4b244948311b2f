// SysAlloc: memory straight from the operating system, in page-sized units.
//
// The Go runtime's runtime·SysAlloc: anonymous private mappings, zeroed and
// page-aligned. Every failure is reported to the caller (nullptr, or false),
// never by dying and never by pretending: a caller leaves its accounting
// untouched unless the system call did what it asked.
//
// Thread-safe.

#ifndef ALLOC_SYS_ALLOC_H_
#define ALLOC_SYS_ALLOC_H_

#include <cstddef>

#include "base/stack_sizes.h"  // kPageSize

namespace stackalloc {

// Maps n bytes (rounded up to whole pages) of zeroed, read-write memory
// aligned to kPageSize. Returns nullptr if n == 0 or the OS refuses.
void* SysAlloc(size_t n);

// Like SysAlloc(n), aligned to `align` (a power of two, a multiple of
// kPageSize). Free with SysFree(v, n).
void* SysAllocAligned(size_t n, size_t align);

// Whether memory mapped now is locked and made resident at once (the
// process called mlockall(MCL_FUTURE), which no interface reports): maps a
// page, asks mincore() whether it is resident untouched, unmaps it. false
// if a call fails. Three system calls.
bool SysNewMappingsLocked();

// Unmaps memory obtained from SysAlloc(n). True if it is unmapped (or v is
// nullptr); false if munmap() failed (near vm.max_map_count, unmapping the
// middle of a mapping needs a mapping more): then [v, v + n) is still mapped
// and still holds its pages.
[[nodiscard]] bool SysFree(void* v, size_t n);

// Tells the OS the pages of [v, v + n) hold nothing of value: their physical
// memory is released now and they read as zero when next touched. The range
// stays mapped, so it can be handed out again without another SysAlloc.
// v and n must be page-aligned. False if madvise() refused (the pages are
// locked, mlock() or mlockall(MCL_FUTURE)): then they keep their memory and
// their contents.
[[nodiscard]] bool SysUnused(void* v, size_t n);

// Which pages of [v, v + n) are resident (mincore): sets vec[i] to 1 for
// each page i whose page-table entry maps memory, 0 for the others (never
// touched, returned by SysUnused, swapped out, or a guard marker), for
// n / kPageSize pages. v and n must be page-aligned, n at most
// kMaxResidencyPages pages. False, vec unspecified, if mincore() refused
// (part of the range is not mapped: ENOMEM; the kernel could not get a page
// of its own: EAGAIN). Never allocates; async-signal-safe.
inline constexpr size_t kMaxResidencyPages = 4096;
[[nodiscard]] bool SysResidency(const void* v, size_t n, unsigned char* vec);

// Whether memory mapped from now on for stacks may be backed by transparent
// huge pages. Default false: a fiber that touches a few KiB of its stack
// then costs a few KiB, not 2 MiB, even where huge pages are `always`.
void SetHugePages(bool on);
bool HugePages();

// Advises [v, v + n) as the setting above says (MADV_NOHUGEPAGE, or
// MADV_HUGEPAGE when huge pages are allowed). Returns false if the kernel
// refused: then the range is as the system's policy makes it (a kernel
// without transparent huge pages refuses, and has none to give).
bool SysHugePageAdvice(void* v, size_t n);

}  // namespace stackalloc

#endif  // ALLOC_SYS_ALLOC_H_
