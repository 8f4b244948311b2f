#include "testing/process_info.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace stackalloc {
namespace testing_util {
namespace {

// Nothing here allocates: a process at vm.max_map_count cannot grow its heap
// (the kernel refuses brk as well as mmap), and is measured all the same.

// Calls f(bytes, n) on successive pieces of the file; false if it cannot be
// opened.
template <typename F>
bool ReadPieces(const char* path, F f) {
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) f(buf, n);
  close(fd);
  return true;
}

int MapsLinesOf(const char* proc) {
  char path[64];
  snprintf(path, sizeof path, "%s/maps", proc);
  int n = 0;
  const bool ok = ReadPieces(path, [&n](const char* bytes, ssize_t len) {
    for (ssize_t i = 0; i < len; ++i) n += bytes[i] == '\n';
  });
  return ok ? n : -1;
}

int64_t RssKiBOf(const char* proc) {
  char path[64];
  snprintf(path, sizeof path, "%s/status", proc);
  // /proc/<pid>/status is a few KiB: read it whole.
  char status[16384];
  size_t used = 0;
  if (!ReadPieces(path, [&](const char* bytes, ssize_t len) {
        const size_t take =
            std::min(static_cast<size_t>(len), sizeof status - 1 - used);
        memcpy(status + used, bytes, take);
        used += take;
      })) {
    return -1;
  }
  status[used] = '\0';
  const char* line = strstr(status, "\nVmRSS:");
  return line == nullptr ? -1 : strtoll(line + 7, nullptr, 10);
}

}  // namespace

int MapsLines() { return MapsLinesOf("/proc/self"); }
int MapsLines(pid_t pid) {
  char proc[32];
  snprintf(proc, sizeof proc, "/proc/%d", static_cast<int>(pid));
  return MapsLinesOf(proc);
}

int64_t RssKiB() { return RssKiBOf("/proc/self"); }
int64_t RssKiB(pid_t pid) {
  char proc[32];
  snprintf(proc, sizeof proc, "/proc/%d", static_cast<int>(pid));
  return RssKiBOf(proc);
}

int OpenFiles(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/fd", static_cast<int>(pid));
  const int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  // getdents64 into a buffer of our own: opendir would allocate.
  alignas(8) char buf[8192];
  int n = 0;
  for (long got; (got = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0;) {
    for (long at = 0; at < got;) {
      const auto* entry = reinterpret_cast<const dirent64*>(buf + at);
      if (entry->d_name[0] != '.') ++n;
      at += entry->d_reclen;
    }
  }
  close(fd);
  return n;
}

size_t VmSize() {
  char statm[256] = {};
  size_t used = 0;
  ReadPieces("/proc/self/statm", [&](const char* bytes, ssize_t len) {
    const size_t take =
        std::min(static_cast<size_t>(len), sizeof statm - 1 - used);
    memcpy(statm + used, bytes, take);
    used += take;
  });
  return strtoull(statm, nullptr, 10) * 4096;
}

uint64_t RaiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  return limit.rlim_cur;
}

}  // namespace testing_util
}  // namespace stackalloc
