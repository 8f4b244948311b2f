#include "testing/process_info.h"

#include <fstream>
#include <string>

namespace stackalloc {
namespace testing_util {
namespace {

int MapsLinesOf(const std::string& proc) {
  std::ifstream maps(proc + "/maps");
  if (!maps) return -1;
  std::string line;
  int n = 0;
  while (std::getline(maps, line)) ++n;
  return n;
}

int64_t RssKiBOf(const std::string& proc) {
  std::ifstream status(proc + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

std::string Proc(pid_t pid) { return "/proc/" + std::to_string(pid); }

}  // namespace

int MapsLines() { return MapsLinesOf("/proc/self"); }
int MapsLines(pid_t pid) { return MapsLinesOf(Proc(pid)); }

int64_t RssKiB() { return RssKiBOf("/proc/self"); }
int64_t RssKiB(pid_t pid) { return RssKiBOf(Proc(pid)); }

size_t VmSize() {
  std::ifstream statm("/proc/self/statm");
  size_t pages = 0;
  statm >> pages;
  return pages * 4096;
}

}  // namespace testing_util
}  // namespace stackalloc
