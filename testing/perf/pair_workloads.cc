#include "testing/perf/pair_workloads.h"

namespace stackalloc {
namespace baseline {

namespace internal {
void Register(const std::string& name, void (*fn)(benchmark::State&)) {
  auto* b = benchmark::RegisterBenchmark(name.c_str(), fn);
  for (int t : {1, 2, 4, 8, 16}) b->Threads(t);
  b->UseRealTime()->Unit(benchmark::kNanosecond);
}
}  // namespace internal

void RegisterUnavailable(const std::string& name, const std::string& why) {
  auto* fail = +[](benchmark::State& state, const std::string& reason) {
    state.SkipWithError(reason.c_str());
    for (auto _ : state) {
    }
  };
  for (const char* group : {"pair/", "window3/"}) {
    benchmark::RegisterBenchmark((group + name).c_str(), fail, why);
  }
}

}  // namespace baseline
}  // namespace stackalloc
