#include "testing/peers.h"

#include <dlfcn.h>

#include <cstring>
#include <utility>
#include <vector>

namespace stackalloc {
namespace peers {
namespace {

std::vector<std::string>& Notes() {
  static auto* notes = new std::vector<std::string>;
  return *notes;
}

}  // namespace

void RegisterUnavailable(const std::string& name, const std::string& why) {
  baseline::RegisterUnavailable(name, why);
  Notes().push_back(name + " did not run: " + why);
}

std::string Provider(const char* symbol) {
  void* address = dlsym(RTLD_DEFAULT, symbol);
  Dl_info info;
  if (address == nullptr || dladdr(address, &info) == 0 ||
      info.dli_fname == nullptr) {
    return "";
  }
  const char* slash = strrchr(info.dli_fname, '/');
  return slash != nullptr ? slash + 1 : info.dli_fname;
}

bool FromGlibc(const char* symbol) {
  return Provider(symbol).rfind("libc.so", 0) == 0;
}

int RunPeers(int argc, char** argv, const std::string& binary) {
  baseline::ComparisonReporter reporter("ours");
  reporter.set_row_per_contender(true);
  reporter.SetCaption("pair",
                      "op = one 4 KiB alloc + free pair; one op per "
                      "iteration on each thread");
  reporter.SetCaption("window3",
                      "op = one 4 KiB alloc + free pair; each iteration "
                      "allocates 3, then frees them LIFO (= 3 ops)");
  reporter.AddNote(binary + ": malloc is " + Provider("malloc"));
  for (std::string& note : Notes()) reporter.AddNote(binary + ": " + note);
  return baseline::RunComparison(argc, argv, reporter);
}

}  // namespace peers
}  // namespace stackalloc
