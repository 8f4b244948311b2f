#include "alloc/throw.h"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace stackalloc {
namespace {

void WriteAll(const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(STDERR_FILENO, p, n);
    if (w <= 0) return;  // Nowhere left to report; the caller dies anyway.
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

void RawPrintf(const char* format, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, format);
  int n = vsnprintf(buf, sizeof(buf), format, ap);
  va_end(ap);
  if (n < 0) return;
  WriteAll(buf, static_cast<size_t>(n) < sizeof(buf) ? n : sizeof(buf) - 1);
}

void Throw(const char* msg) {
  static constexpr char kPrefix[] = "fatal error: ";
  WriteAll("\n", 1);
  WriteAll(kPrefix, sizeof(kPrefix) - 1);
  WriteAll(msg, strlen(msg));
  WriteAll("\n", 1);
  abort();
}

}  // namespace stackalloc
