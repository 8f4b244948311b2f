// Fatal errors that never allocate.
//
// Throw() is the runtime·throw of the Go runtime: it reports a broken
// contract and kills the process. Messages are built in a stack buffer
// (RawBuffer) and written with write(2), so reporting works inside the
// allocator, on a nearly exhausted stack, while malloc's locks are held, and
// in a signal handler: RawBuffer and Throw are async-signal-safe. RawPrintf
// uses vsnprintf, which does not allocate for the integer, pointer and
// string conversions we use, but is not async-signal-safe.
//
// Thread-safe.

#ifndef BASE_THROW_H_
#define BASE_THROW_H_

#include <cstddef>
#include <cstdint>

#include "absl/base/attributes.h"

namespace stackalloc {

// Prints "fatal error: <msg>" on stderr and aborts. Uses a few dozen bytes
// of stack beyond the caller's (msg is not copied).
ABSL_ATTRIBUTE_NORETURN ABSL_ATTRIBUTE_COLD void Throw(const char* msg);

// Prints "fatal error: <msg>" as Throw(msg) does, then calls more(arg),
// which may write further lines with RawWrite (the overflow report's
// traceback), and aborts.
ABSL_ATTRIBUTE_NORETURN ABSL_ATTRIBUTE_COLD void Throw(const char* msg,
                                                       void (*more)(void*),
                                                       void* arg);

// Writes s on stderr, all of it, with write(2) and nothing else:
// async-signal-safe.
void RawWrite(const char* s);

// Prints a printf-formatted line on stderr without allocating (output longer
// than 256 bytes is cut). Like runtime·printf, for the context before Throw().
void RawPrintf(const char* format, ...) ABSL_PRINTF_ATTRIBUTE(1, 2);

// A message assembled piece by piece in a fixed buffer (longer text is cut),
// with no library call at all: safe in a signal handler.
class RawBuffer {
 public:
  RawBuffer& Str(const char* s);
  RawBuffer& Dec(int64_t v);
  RawBuffer& Udec(uint64_t v);
  RawBuffer& Hex(uintptr_t v);  // "0x..." with no leading zeros.

  // Empties the buffer in place (c_str() relies on the zeros after the text).
  void Clear() {
    for (char& c : buf_) c = '\0';
    len_ = 0;
  }

  const char* c_str() const { return buf_; }
  size_t size() const { return len_; }

 private:
  void Put(char c);

  char buf_[320] = {};
  size_t len_ = 0;
};

// The buffer for a fatal message built on a stack that may have no room
// left (a WithStack that does not fit, a G whose exception escaped): static,
// the process's last message. The first thread of a process to call it gets
// it, empty (a child of fork() may claim it again); any later caller blocks
// for ever, as Go's runtime parks a thread that throws while another is
// dying (the first one's abort ends them all), so the caller must die.
// Async-signal-safe; pass the result's c_str() to Throw.
ABSL_ATTRIBUTE_COLD RawBuffer& FatalBuffer();

namespace internal {

// Where STACKALLOC_CHECK and its friends end (base/check.h).
ABSL_ATTRIBUTE_NORETURN ABSL_ATTRIBUTE_COLD void CheckFailed(const char* file,
                                                             int line,
                                                             const char* expr);
ABSL_ATTRIBUTE_NORETURN ABSL_ATTRIBUTE_COLD void CheckOpFailed(
    const char* file, int line, const char* expr, int64_t a, int64_t b);

}  // namespace internal
}  // namespace stackalloc

#endif  // BASE_THROW_H_
