// Results in Go's benchmark format, for the reports that put our benchmarks
// beside Go 1.19's own (//testing/perf:stack_growth_report,
// //testing/perf:spawn_report): `go test -bench` prints "BenchmarkName[-procs]
// iterations ns ns/op", and our binaries write their results the same way so
// that rounds run between Go's can be merged.
//
// Not thread-safe (a report is one thread).

#ifndef TESTING_PERF_GO_BENCH_H_
#define TESTING_PERF_GO_BENCH_H_

#include <map>
#include <string>

namespace stackalloc {
namespace baseline {

// Best (least) ns/op of each benchmark, by Go's name.
using GoCells = std::map<std::string, double>;

// Go's name of `function` at `procs`: "BenchmarkFoo", "BenchmarkFoo-4".
std::string GoName(const std::string& function, int procs);

// Keeps ns if it is the least seen for name.
void AddBest(GoCells& cells, const std::string& name, double ns);

// The best ns/op of every "name iterations ns ns/op" line of a file (other
// lines are skipped); empty if the file cannot be read.
GoCells ReadGoBench(const std::string& path);

// Appends cells to a file, one line each in that format.
bool AppendGoBench(const std::string& path, const GoCells& cells);

// The cell of name, or -1.
double Get(const GoCells& cells, const std::string& name);

// v with printf's format, or "-" if v is negative (missing).
std::string Num(double v, const char* format);

}  // namespace baseline
}  // namespace stackalloc

#endif  // TESTING_PERF_GO_BENCH_H_
