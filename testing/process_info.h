// What a process looks like from /proc, for tests and benchmarks that count
// the mappings, memory and descriptors they cause: the calling process's,
// or another's (a server under load, say); and the open-file limit such a
// test raises for its connections.
//
// Thread-safe (each call reads the files anew); never allocates, so it can
// measure a process that cannot grow its heap.

#ifndef TESTING_PROCESS_INFO_H_
#define TESTING_PROCESS_INFO_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace stackalloc {
namespace testing_util {

// Lines of /proc/self/maps: the process's mappings.
int MapsLines();
// The same of process `pid`; -1 if it cannot be read (it ended).
int MapsLines(pid_t pid);

// VmRSS of /proc/self/status, in KiB; -1 if it cannot be read.
int64_t RssKiB();
// The same of process `pid`.
int64_t RssKiB(pid_t pid);

// Open file descriptors of process `pid` (entries of /proc/<pid>/fd); -1
// if they cannot be read.
int OpenFiles(pid_t pid);

// The address space the process has mapped (/proc/self/statm), in bytes.
size_t VmSize();

// Raises the calling process's open-file limit (RLIMIT_NOFILE) to its hard
// limit, which children inherit; returns the limit now in force, or 0 with
// errno set if getrlimit or setrlimit failed.
uint64_t RaiseOpenFileLimit();

}  // namespace testing_util
}  // namespace stackalloc

#endif  // TESTING_PROCESS_INFO_H_
