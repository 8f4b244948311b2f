// What the process looks like from /proc/self, for tests and benchmarks that
// count the mappings and memory they cause.
//
// Thread-safe (each call reads the files anew); allocates.

#ifndef TESTING_PROCESS_INFO_H_
#define TESTING_PROCESS_INFO_H_

#include <cstddef>
#include <cstdint>

namespace stackalloc {
namespace testing_util {

// Lines of /proc/self/maps: the process's mappings.
int MapsLines();

// VmRSS of /proc/self/status, in KiB; -1 if it cannot be read.
int64_t RssKiB();

// The address space the process has mapped (/proc/self/statm), in bytes.
size_t VmSize();

}  // namespace testing_util
}  // namespace stackalloc

#endif  // TESTING_PROCESS_INFO_H_
