#include "testing/perf/go_bench.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace stackalloc {
namespace baseline {

std::string GoName(const std::string& function, int procs) {
  std::string name = "Benchmark" + function;
  if (procs != 1) name += "-" + std::to_string(procs);
  return name;
}

void AddBest(GoCells& cells, const std::string& name, double ns) {
  auto it = cells.find(name);
  if (it == cells.end() || ns < it->second) cells[name] = ns;
}

GoCells ReadGoBench(const std::string& path) {
  GoCells best;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name, iterations, ns, unit;
    if ((fields >> name >> iterations >> ns >> unit) && unit == "ns/op") {
      AddBest(best, name, atof(ns.c_str()));
    }
  }
  return best;
}

bool AppendGoBench(const std::string& path, const GoCells& cells) {
  FILE* f = fopen(path.c_str(), "a");
  if (f == nullptr) return false;
  for (const auto& [name, ns] : cells) {
    fprintf(f, "%s 1 %.3f ns/op\n", name.c_str(), ns);
  }
  return fclose(f) == 0;
}

double Get(const GoCells& cells, const std::string& name) {
  auto it = cells.find(name);
  return it == cells.end() ? -1 : it->second;
}

std::string Num(double v, const char* format) {
  if (v < 0) return "-";
  char buf[32];
  snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace baseline
}  // namespace stackalloc
