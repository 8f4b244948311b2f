#!/usr/bin/env bash
# Runs the benchmarks with Google Benchmark JSON output and draws their
# charts (testing/perf/plot_benchmarks.py, gnuplot):
#
#   bazel run -c opt //testing/perf:charts               # run, then draw
#   bazel run -c opt //testing/perf:charts -- --plot-only  # redraw the JSON kept
#
# Writes docs/charts/data/<benchmark>.json (the runs, kept with the charts
# so they can be redrawn and checked) and docs/charts/<benchmark>_<group>.svg
# in the workspace. The benchmarks, one after another (about ten minutes on
# the 2-core machine):
#   stackalloc_benchmark  the pair groups, ours beside old and bare;
#   peers_benchmark       pair and window3, ours beside the mallocs;
#   stack_growth_benchmark  BenchmarkStackGrowth, old and new pools;
#   fiber_benchmark       fibers on ours and on Boost's allocators.
# Environment: REPS (rounds / repetitions, default 3).
set -euo pipefail

workspace="${BUILD_WORKSPACE_DIRECTORY:-$(pwd)}"
charts="$workspace/docs/charts"
data="$charts/data"
reps="${REPS:-3}"
# Under `bazel run`, the benchmarks and the plotting script are runfiles.
runfiles="${RUNFILES_DIR:-$0.runfiles}/stackalloc/testing/perf"
bin() { echo "$runfiles/$1"; }

if [ "${1:-}" != "--plot-only" ]; then
  mkdir -p "$data"
  echo "== stackalloc_benchmark (pairs)"
  "$(bin stackalloc_benchmark)" --benchmark_filter='^pair/' \
    --benchmark_repetitions="$reps" --benchmark_min_time=0.2 \
    --benchmark_out="$data/stackalloc_benchmark.json" --benchmark_out_format=json
  echo "== peers_benchmark"
  "$(bin peers_benchmark)" --benchmark_repetitions="$reps" \
    --benchmark_out="$data/peers_benchmark.json"
  echo "== stack_growth_benchmark"
  "$(bin stack_growth_benchmark)" --benchmark_repetitions="$reps" \
    --benchmark_out="$data/stack_growth_benchmark.json" --benchmark_out_format=json
  echo "== fiber_benchmark"
  "$(bin fiber_benchmark)" --benchmark_repetitions="$reps" \
    --benchmark_out="$data/fiber_benchmark.json"
fi

echo "== charts"
python3 "$runfiles/plot_benchmarks.py" "$charts" "$data"/*.json
