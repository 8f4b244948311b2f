#!/usr/bin/env bash
# plot_benchmarks.py on a small Google Benchmark JSON file: one chart per
# group, each contender a line, x from the right argument, y per op.
set -euo pipefail

plot="$1"
dir="${TEST_TMPDIR:-$(mktemp -d)}"
cat >"$dir/fiber.json" <<'JSON'
{
  "context": {"date": "2026-11-29T21:00:00+00:00", "num_cpus": 2},
  "benchmarks": [
    {"name": "context/ours/kib:4/real_time", "run_name": "context/ours/kib:4/real_time",
     "run_type": "iteration", "threads": 1, "real_time": 40.0, "time_unit": "ns"},
    {"name": "context/ours/kib:4/real_time", "run_name": "context/ours/kib:4/real_time",
     "run_type": "iteration", "threads": 1, "real_time": 44.0, "time_unit": "ns"},
    {"name": "context/ours/kib:4/real_time", "run_name": "context/ours/kib:4/real_time",
     "run_type": "iteration", "threads": 1, "real_time": 90.0, "time_unit": "ns"},
    {"name": "context/ours/kib:1024/real_time", "run_name": "context/ours/kib:1024/real_time",
     "run_type": "iteration", "threads": 1, "real_time": 41.0, "time_unit": "ns"},
    {"name": "context/protected/kib:4/real_time", "run_name": "context/protected/kib:4/real_time",
     "run_type": "iteration", "threads": 1, "real_time": 12.5, "time_unit": "us"},
    {"name": "context/protected/kib:4/real_time_median", "run_name": "context/protected/kib:4/real_time",
     "run_type": "aggregate", "threads": 1, "real_time": 99999.0, "time_unit": "ns"},
    {"name": "work_stealing/ours/threads:2/real_time", "run_name": "work_stealing/ours/threads:2/real_time",
     "run_type": "iteration", "threads": 1, "real_time": 50000.0, "time_unit": "ns",
     "ops_per_iteration": 100},
    {"name": "pair/ours/real_time/threads:4", "run_name": "pair/ours/real_time/threads:4",
     "run_type": "iteration", "threads": 4, "real_time": 2.5, "time_unit": "ns"},
    {"name": "pair/old/real_time/threads:4", "run_name": "pair/old/real_time/threads:4",
     "run_type": "iteration", "threads": 4, "error_occurred": true, "real_time": 1.0,
     "time_unit": "ns"}
  ]
}
JSON

python3 "$plot" "$dir/out" "$dir/fiber.json" >"$dir/written"
expect() {  # expect FILE PATTERN: FILE has a line matching PATTERN
  grep -q -- "$2" "$1" || { echo "FAILED: $1 lacks: $2"; exit 1; }
}
for group in context work_stealing pair; do
  expect "$dir/written" "fiber_$group.svg"
done
[ "$(wc -l <"$dir/written")" = 3 ] || { echo "FAILED: not 3 charts"; exit 1; }
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
