#!/usr/bin/env bash
# One of our benchmarks beside Go 1.19's own runtime benchmarks, one table:
#
#   bazel run -c opt //testing/perf:stack_growth_report   # BenchmarkStackGrowth
#   bazel run -c opt //testing/perf:spawn_report          # CreateGoroutines...
#
# go_report.sh GO_BENCH_REGEX OUR_BINARY [args for OUR_BINARY...] runs Go's
#   go test -run=NONE -bench=GO_BENCH_REGEX -cpu=1,2,4,8,16 runtime
# (Debian's golang-go) and our binary alternately, REPS rounds of each
# (default 3; each cell is the best round), so both sides see the same load
# on a shared machine; then our binary prints the table of every round's
# cells (--ours_output) with Go's column (--go_output).
# Environment: REPS, BENCHMARK_MIN_TIME (seconds, default 1, as Go's
# benchtime), GOCACHE (default: Go's own, or a directory under TMPDIR if that
# is not writable).
set -euo pipefail

go_bench="$1"
bench="$2"
shift 2
reps="${REPS:-3}"
min_time="${BENCHMARK_MIN_TIME:-1}"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/go_report.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
go_out="$tmp/go.txt"
: >"$go_out"

ours_out="$tmp/ours.txt"
: >"$ours_out"
have_go=0
if command -v go >/dev/null 2>&1; then
  have_go=1
  if [ -z "${GOCACHE:-}" ]; then
    GOCACHE="$(go env GOCACHE 2>/dev/null || true)"
    if ! mkdir -p "$GOCACHE" 2>/dev/null || [ ! -w "$GOCACHE" ]; then
      GOCACHE="${TMPDIR:-/tmp}/stackalloc-go-cache"
    fi
    export GOCACHE
  fi
  echo "== go: $(go version) (GOCACHE=$GOCACHE)"
else
  echo "== go: not found on PATH; install golang-go (bazel/setup.sh does)." \
    "The go column stays empty." >&2
fi

# Go's round, then ours, REPS times: both sides see the same load.
for rep in $(seq "$reps"); do
  if [ "$have_go" = 1 ]; then
    echo "== go, round $rep"
    # Outside any module, so that `runtime` is the standard library's.
    (cd "$tmp" && GO111MODULE=off GOFLAGS= go test -run=NONE \
      -bench="$go_bench" -benchtime="${min_time}s" \
      -count=1 -cpu=1,2,4,8,16 runtime) | tee -a "$go_out"
  fi
  echo "== ours, round $rep: $bench"
  "$bench" --benchmark_min_time="$min_time" --ours_out="$ours_out" "$@" |
    sed -n '/real_time/p'
done

echo "== all rounds"
"$bench" --ours_output="$ours_out" --go_output="$go_out" "$@"
