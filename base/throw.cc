#include "base/throw.h"

#include <poll.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace stackalloc {
namespace {

// The system calls themselves, not glibc's write() and writev(): once a
// process has had a second thread those take the cancellation path, which
// needs more stack than a G that overflowed, or a report with 256 bytes
// left, may have.
ssize_t SysWrite(const void* p, size_t n) {
  return syscall(SYS_write, STDERR_FILENO, p, n);
}

ssize_t SysWritev(const iovec* v, int n) {
  return syscall(SYS_writev, STDERR_FILENO, v, n);
}

// Nanoseconds on CLOCK_MONOTONIC; 0 if it cannot be read.
int64_t MonotonicNs() {
  timespec t{};
  if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t) != 0) return 0;
  return int64_t{t.tv_sec} * 1000000000 + t.tv_nsec;
}

// Until when writes wait for a full stderr: set at the first wait, for the
// whole process (a report is dozens of writes; a dying process has one
// report to give).
ABSL_CONST_INIT std::atomic<int64_t> wait_until_ns{0};

// stderr set O_NONBLOCK (a supervisor's pipe, Node.js's) and full: waits
// until it drains, 100 ms at a time and 5 s in all, so a report is not lost
// to a reader that is slow, nor a dying process held for ever by one that
// never reads. Returns false once the 5 s have passed.
bool WaitWritable() {
  const int64_t now = MonotonicNs();
  int64_t until = wait_until_ns.load(std::memory_order_relaxed);
  if (until == 0) {
    const int64_t mine = now + int64_t{5} * 1000000000;
    until = wait_until_ns.compare_exchange_strong(until, mine) ? mine : until;
  }
  if (now == 0 || now >= until) return false;
  pollfd p{STDERR_FILENO, POLLOUT, 0};
  timespec limit{0, 100 * 1000 * 1000};
  // ppoll: AArch64 has no poll system call.
  return syscall(SYS_ppoll, &p, 1, &limit, nullptr, 0) >= 0 || errno == EINTR;
}

void WriteAll(const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = SysWrite(p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && WaitWritable()) {
      continue;
    }
    if (w <= 0) return;  // Nowhere left to report; the caller dies anyway.
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// Writes "fatal error: <msg>" as one line: one writev, so that the line is
// not split by another thread's output; what it did not write goes out
// piece by piece.
void WriteFatalLine(const char* msg) {
  static constexpr char kPrefix[] = "\nfatal error: ";
  size_t len = 0;
  while (msg[len] != '\0') ++len;
  iovec v[3] = {{const_cast<char*>(kPrefix), sizeof(kPrefix) - 1},
                {const_cast<char*>(msg), len},
                {const_cast<char*>("\n"), 1}};
  ssize_t w;
  do {
    w = SysWritev(v, 3);
  } while (w < 0 && errno == EINTR);
  for (iovec& piece : v) {
    if (w < 0) w = 0;
    const size_t done = static_cast<size_t>(w) < piece.iov_len
                            ? static_cast<size_t>(w)
                            : piece.iov_len;
    WriteAll(static_cast<const char*>(piece.iov_base) + done,
             piece.iov_len - done);
    w -= static_cast<ssize_t>(done);
  }
}

// FatalBuffer's: constant-initialised, so no guard (no lock) on first use.
// The owner is a process id: a claim made in the parent before a fork() is
// not the child's, which may claim the buffer for its own message.
ABSL_CONST_INIT std::atomic<pid_t> fatal_buffer_owner{0};
ABSL_CONST_INIT RawBuffer fatal_buffer;

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
  WriteFatalLine(msg);
  abort();
}

void Throw(const char* msg, void (*more)(void*), void* arg) {
  WriteFatalLine(msg);
  more(arg);
  abort();
}

void RawWrite(const char* s) {
  size_t len = 0;
  while (s[len] != '\0') ++len;
  WriteAll(s, len);
}

RawBuffer& FatalBuffer() {
  const pid_t me = getpid();
  pid_t owner = fatal_buffer_owner.load(std::memory_order_acquire);
  while (owner != me) {
    if (fatal_buffer_owner.compare_exchange_weak(owner, me,
                                                 std::memory_order_acq_rel)) {
      fatal_buffer.Clear();  // A parent's claim may have written it.
      return fatal_buffer;
    }
  }
  for (;;) pause();  // Another thread is dying; its abort ends us.
}

void RawBuffer::Put(char c) {
  if (len_ + 1 < sizeof(buf_)) buf_[len_++] = c;
}

RawBuffer& RawBuffer::Str(const char* s) {
  while (*s != '\0') Put(*s++);
  return *this;
}

RawBuffer& RawBuffer::Udec(uint64_t v) {
  char digits[20];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) Put(digits[--n]);
  return *this;
}

RawBuffer& RawBuffer::Dec(int64_t v) {
  if (v < 0) {
    Put('-');
    return Udec(0 - static_cast<uint64_t>(v));
  }
  return Udec(static_cast<uint64_t>(v));
}

RawBuffer& RawBuffer::Hex(uintptr_t v) {
  Str("0x");
  char digits[16];
  int n = 0;
  do {
    digits[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v != 0);
  while (n > 0) Put(digits[--n]);
  return *this;
}

namespace internal {

void CheckFailed(const char* file, int line, const char* expr) {
  RawBuffer b;
  b.Str("check failed: ").Str(file).Str(":").Dec(line).Str(": ").Str(expr);
  Throw(b.c_str());
}

void CheckOpFailed(const char* file, int line, const char* expr, int64_t a,
                   int64_t b) {
  RawBuffer m;
  m.Str("check failed: ").Str(file).Str(":").Dec(line).Str(": ").Str(expr);
  m.Str(" (").Dec(a).Str(" vs ").Dec(b).Str(")");
  Throw(m.c_str());
}

}  // namespace internal
}  // namespace stackalloc
