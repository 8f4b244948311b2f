#!/usr/bin/env bash
# plot_benchmarks.py on a small Google Benchmark JSON file: one chart per
# group, each contender a line, x from the right argument, y per op; and one
# per charted counter of a group that has them.
set -euo pipefail

plot="$1"
dir="${TEST_TMPDIR:-$(mktemp -d)}"
# run NAME RUN_TYPE THREADS REAL_TIME UNIT [EXTRA]: one run as Google
# Benchmark writes it; an aggregate's name has its suffix after run_name's.
sep=''
run() {
  printf '%s    {"name": "%s", "run_name": "%s", "run_type": "%s", "threads": %s,\n' \
    "$sep" "$1" "${1%_median}" "$2" "$3"
  printf '     "real_time": %s, "time_unit": "%s"%s}' "$4" "$5" "${6:-}"
  sep=$',\n'
}
{
  echo '{'
  echo '  "context": {"date": "2026-11-29T21:00:00+00:00", "num_cpus": 2},'
  echo '  "benchmarks": ['
  run context/ours/kib:4/real_time iteration 1 40.0 ns
  run context/ours/kib:4/real_time iteration 1 44.0 ns
  run context/ours/kib:4/real_time iteration 1 90.0 ns
  run context/ours/kib:1024/real_time iteration 1 41.0 ns
  run context/protected/kib:4/real_time iteration 1 12.5 us
  run context/protected/kib:4/real_time_median aggregate 1 99999.0 ns
  run work_stealing/ours/threads:2/real_time iteration 1 50000.0 ns \
    ', "ops_per_iteration": 100'
  run pair/ours/real_time/threads:4 iteration 4 2.5 ns
  run pair/old/real_time/threads:4 iteration 4 1.0 ns ', "error_occurred": true'
  printf '\n  ]\n'
  echo '}'
} >"$dir/fiber.json"
sep=''
{
  echo '{'
  echo '  "context": {"date": "2026-12-07T10:00:00+00:00", "num_cpus": 2},'
  echo '  "benchmarks": ['
  for c in 100 1000 10000; do
    run "http/ours/connections:$c/manual_time" iteration 1 50.0 us \
      ', "requests_per_second": 30000, "rss_mib": '$((c / 100 + 5))', "maps": 60'
    run "http/protected/connections:$c/manual_time" iteration 1 60.0 us \
      ', "requests_per_second": 25000, "rss_mib": 9, "maps": '$((2 * c + 50))
  done
  printf '\n  ]\n'
  echo '}'
} >"$dir/server.json"
python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$dir/fiber.json"

python3 "$plot" "$dir/out" "$dir/fiber.json" >"$dir/written"
expect() {  # expect FILE PATTERN: FILE has a line matching PATTERN
  grep -q -- "$2" "$1" || { echo "FAILED: $1 lacks: $2"; exit 1; }
}
for group in context work_stealing pair; do
  expect "$dir/written" "fiber_$group.svg"
done
[ "$(wc -l <"$dir/written")" = 3 ] || { echo "FAILED: not 3 charts"; exit 1; }
python3 "$plot" "$dir/out" "$dir/server.json" >"$dir/written"
for chart in http http_requests_per_second http_rss_mib http_maps; do
  expect "$dir/written" "server_$chart.svg"
done
[ "$(wc -l <"$dir/written")" = 4 ] || { echo "FAILED: not 4 charts"; exit 1; }
rss="$dir/out/server_http_rss_mib.svg"
expect "$rss" "server: http, resident memory (MiB) (2026-12-07, 2 CPUs)"
expect "$rss" "concurrent connections"
expect "$rss" ">10000<"
expect "$rss" ">protected<"
expect "$dir/out/server_http_maps.svg" "mappings (lines of /proc/PID/maps)"
expect "$dir/out/server_http_requests_per_second.svg" "requests per second"
svg="$dir/out/fiber_context.svg"
expect "$svg" "<svg"
expect "$svg" "fiber: context (2026-11-29, 2 CPUs)"
expect "$svg" "stack size (KiB)"
expect "$svg" ">ours<"
expect "$svg" ">protected<"
# The log scale (12,500 ns against 44): ours' median of 40, 44 and 90 is 44.
expect "$svg" "10000"
expect "$dir/out/fiber_work_stealing.svg" ">threads<"
# A run that failed draws nothing: pair has ours alone.
expect "$dir/out/fiber_pair.svg" ">ours<"
if grep -q ">old<" "$dir/out/fiber_pair.svg"; then
  echo "FAILED: an errored run was drawn"; exit 1
fi
echo "plot_benchmarks: ok"
