// SysAlloc: memory straight from the operating system, in page-sized units.
//
// The Go runtime's runtime·SysAlloc: anonymous private mappings, zeroed and
// page-aligned. Failure is reported as nullptr, never by dying, so callers can
// leave their accounting untouched and report exhaustion themselves.
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

// Unmaps memory obtained from SysAlloc(n). v == nullptr is a no-op.
void SysFree(void* v, size_t n);

// Tells the OS the pages of [v, v + n) hold nothing of value: their physical
// memory is released now and they read as zero when next touched. The range
// stays mapped, so it can be handed out again without another SysAlloc.
// v and n must be page-aligned.
void SysUnused(void* v, size_t n);

}  // namespace stackalloc

#endif  // ALLOC_SYS_ALLOC_H_
