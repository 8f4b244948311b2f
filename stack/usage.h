// The stack census (private to //stack; stackalloc.h's ReadStackUsage and
// FormatStackUsage): how deep every stack has gone, read from which of its
// pages are resident, and the table that advises stack sizes from it.
//
// The census walks the chunk map in address order, reads the residency of a
// run of neighbouring chunks (up to kMaxResidencyPages pages) with one
// system call, and each slot's state from its record. Lock-free, never
// allocates, async-signal-safe; many may run at once.

#ifndef STACK_USAGE_H_
#define STACK_USAGE_H_

#include <cstddef>

#include "stackalloc.h"

namespace stackalloc {
namespace internal {

// Fills *out (cleared first) with the census of every stack.
void TakeCensus(StackUsage* out);

// FormatStackUsage(usage, buf, size).
size_t FormatUsage(const StackUsage& usage, char* buf, size_t size);

// The depth (pages below the top) at or under which `permille` of the
// touched stacks of o lie (500: the median; 999: the 99.9th percentile),
// or 0 if none was touched.
size_t DepthPercentile(const StackOrderUsage& o, int permille);

// The smallest order whose stacks hold `pages` pages, or -1 if only a stack
// above 1 MiB would.
int OrderHolding(size_t pages);

// Where the census reads residency (SysResidency, alloc/sys_alloc.h), for
// fault injection in tests; nullptr restores it.
using ResidencySource = bool (*)(const void* v, size_t n, unsigned char* vec);
void SetResidencySource(ResidencySource source);

}  // namespace internal
}  // namespace stackalloc

#endif  // STACK_USAGE_H_
