// Fatal errors that never allocate.
//
// Throw() is the runtime·throw of the Go runtime: it reports a broken
// contract and kills the process. It formats into a stack buffer and writes
// with write(2), so it works inside the allocator, on a nearly exhausted
// stack, and while malloc's locks are held.
//
// Thread-safe.

#ifndef ALLOC_THROW_H_
#define ALLOC_THROW_H_

#include "absl/base/attributes.h"

namespace stackalloc {

// Prints "fatal error: <msg>" on stderr and aborts.
ABSL_ATTRIBUTE_NORETURN ABSL_ATTRIBUTE_COLD void Throw(const char* msg);

// Prints a printf-formatted line on stderr without allocating (output longer
// than 256 bytes is cut). Like runtime·printf, for the context before Throw().
void RawPrintf(const char* format, ...) ABSL_PRINTF_ATTRIBUTE(1, 2);

}  // namespace stackalloc

#endif  // ALLOC_THROW_H_
