#!/usr/bin/env bash
# Runs the benchmarks with Google Benchmark JSON output and draws their
# charts (testing/perf/plot_benchmarks.py, gnuplot):
#
#   bazel run -c opt //testing/perf:charts               # run, then draw
#   bazel run -c opt //testing/perf:charts -- --plot-only  # redraw the JSON kept
#   bazel run -c opt //testing/perf:charts -- --only=server_benchmark,parked_benchmark
#                                            # run those, then redraw everything
#
# Writes docs/charts/data/<benchmark>.json (the runs, kept with the charts
# so they can be redrawn and checked) and docs/charts/<benchmark>_<group>.svg
# in the workspace. The benchmarks, one after another (about half an hour on
# the 2-core machine):
#   stackalloc_benchmark  the pair groups, ours beside old and bare;
#   peers_benchmark       pair and window3, ours beside the mallocs;
#   stack_growth_benchmark  BenchmarkStackGrowth, old and new pools;
#   fiber_benchmark       fibers on ours and on Boost's allocators;
#   server_benchmark      the Asio HTTP server under wrk, on ours and Boost's
#                         (testing/perf/asio; about ten minutes);
#   parked_benchmark      up to 200,000 parked Asio sessions (about five).
# Environment: REPS (rounds / repetitions, default 3).
set -euo pipefail

workspace="${BUILD_WORKSPACE_DIRECTORY:-$(pwd)}"
charts="$workspace/docs/charts"
data="$charts/data"
reps="${REPS:-3}"
# Under `bazel run`, the benchmarks and the plotting script are runfiles;
# the drivers find their child binaries through RUNFILES_DIR (their own path
# here has no runfiles tree of its own).
export RUNFILES_DIR="${RUNFILES_DIR:-$0.runfiles}"
runfiles="$RUNFILES_DIR/stackalloc/testing/perf"
bin() { echo "$runfiles/$1"; }

only=""
case "${1:-}" in
  --plot-only) only="-" ;;
  --only=*) only=",${1#--only=}," ;;
esac
# wanted NAME: whether to run benchmark NAME.
wanted() { [ -z "$only" ] || [[ "$only" == *",$1,"* ]]; }

# run NAME BINARY FLAGS...: runs benchmark NAME, if wanted, with its
# Google Benchmark JSON written to $data/NAME.json.
run() {
  local name="$1" binary="$2"
  shift 2
  wanted "$name" || return 0
  echo "== $name"
  "$(bin "$binary")" "$@" \
    --benchmark_out="$data/$name.json" --benchmark_out_format=json
}

mkdir -p "$data"
run stackalloc_benchmark stackalloc_benchmark --benchmark_filter='^pair/' \
  --benchmark_repetitions="$reps" --benchmark_min_time=0.2
run peers_benchmark peers_benchmark --benchmark_repetitions="$reps"
run stack_growth_benchmark stack_growth_benchmark \
  --benchmark_repetitions="$reps"
run fiber_benchmark fiber_benchmark --benchmark_repetitions="$reps"
run server_benchmark asio/server_benchmark --rounds="$reps"
run parked_benchmark asio/parked_benchmark --benchmark_repetitions="$reps"

echo "== charts"
python3 "$runfiles/plot_benchmarks.py" "$charts" "$data"/*.json
