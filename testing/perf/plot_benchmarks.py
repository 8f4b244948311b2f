#!/usr/bin/env python3
"""Draws SVG charts from Google Benchmark JSON files, with gnuplot.

    plot_benchmarks.py OUT_DIR FILE.json...

Reads any Google Benchmark JSON (--benchmark_out=FILE
--benchmark_out_format=json, or a driver's merged file), so a benchmark that
changes keeps being drawn. A run named "<group>/<contender>/..." is one point
of the contender's line in the group's chart:

  x  the run's argument named kib (a stack size), procs or threads, if it
     has one, else its thread count (Google Benchmark's "threads");
  y  wall time per op in ns: real_time, in ns, divided by the run's
     ops_per_iteration counter if it has one (ComparisonReporter's
     convention); the median of every run with the same name (repetitions,
     rounds).

Writes OUT_DIR/<file stem>_<group>.svg for each group of each file, with the
file's date and host in the title, and a log scale wherever values span more
than a factor of 20. A group whose runs carry one of the counters in
COUNTER_CHARTS (requests per second, resident memory, mappings) also gets
OUT_DIR/<file stem>_<group>_<counter>.svg, y the counter's median. Aggregate
rows and runs that reported an error are skipped. Needs gnuplot (Debian:
gnuplot-nox).
"""

import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile

X_ARGS = ("kib", "procs", "threads", "connections", "sessions")
X_LABELS = {
    "kib": "stack size (KiB)",
    "procs": "procs (Ms)",
    "threads": "threads",
    "connections": "concurrent connections",
    "sessions": "parked sessions (coroutines)",
}
# User counters drawn as charts of their own, and their y axis.
COUNTER_CHARTS = {
    "requests_per_second": "requests per second",
    "rss_mib": "resident memory (MiB)",
    "maps": "mappings (lines of /proc/PID/maps)",
}
UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
# One color and point shape per line (ours, first, the strongest).
COLORS = ("#6a0dad", "#e69f00", "#009e73", "#0072b2", "#d55e00", "#cc79a7",
          "#56b4e9", "#000000", "#999999", "#8c564b")
POINTS = (7, 5, 9, 11, 13, 4, 6, 8, 10, 12)


def points(document):
    """{group: {contender: {x: [run, ...]}}} and the x argument of each group.

    Each run is a dict: "ns" (per op), and the run's COUNTER_CHARTS counters.
    """
    groups = {}
    x_arg = {}
    for run in document.get("benchmarks", []):
        if run.get("run_type", "iteration") != "iteration":
            continue
        if run.get("error_occurred"):
            continue
        name = run.get("run_name") or run["name"]
        parts = name.split("/")
        if len(parts) < 2:
            continue
        group, contender = parts[0], parts[1]
        x, arg = None, "threads"
        for part in parts[2:]:
            m = re.fullmatch(r"([a-z_]+):(\d+)", part)
            if m and m.group(1) in X_ARGS:
                x, arg = int(m.group(2)), m.group(1)
                break
        if x is None:
            x = int(run.get("threads", 1))
        ns = float(run["real_time"]) * UNIT_NS[run.get("time_unit", "ns")]
        ops = run.get("ops_per_iteration")
        if ops:
            ns /= float(ops)
        values = {"ns": ns}
        for counter in COUNTER_CHARTS:
            if counter in run:
                values[counter] = float(run[counter])
        groups.setdefault(group, {}).setdefault(contender, {}).setdefault(
            x, []).append(values)
        x_arg.setdefault(group, arg)
    return groups, x_arg


def gnuplot_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def draw(svg, title, x_label, y_label, series, work_dir):
    """series: [(contender, [(x, y), ...])] -> an SVG at svg."""
    values = [y for _, pts in series for _, y in pts if y > 0]
    xs = sorted({x for _, pts in series for x, _ in pts})
    log_y = values and max(values) / min(values) > 20
    log_x = len(xs) > 2 and min(xs) > 0 and max(xs) / min(xs) >= 8
    lines = [
        "set terminal svg size 860,520 dynamic enhanced font 'sans,12' "
        "background rgb 'white'",
        "set output " + gnuplot_quote(svg),
        "set title " + gnuplot_quote(title) + " noenhanced",
        "set xlabel " + gnuplot_quote(x_label),
        "set ylabel " + gnuplot_quote(y_label),
        "set key outside right top noenhanced",
        "set grid",
        "set xtics (" + ", ".join('"%d" %d' % (x, x) for x in xs) + ")",
    ]
    if log_y:
        lines.append("set logscale y 10")
    else:
        lines.append("set yrange [0:*]")
    if log_x:
        lines.append("set logscale x 2")
        lines.append("set xrange [%g:%g]" % (min(xs) / 1.3, max(xs) * 1.3))
    else:
        pad = max(1, (max(xs) - min(xs)) * 0.05)
        lines.append("set xrange [%g:%g]" % (min(xs) - pad, max(xs) + pad))
    plots = []
    for i, (contender, pts) in enumerate(series):
        data = os.path.join(work_dir, "series%d.dat" % i)
        with open(data, "w") as f:
            for x, y in pts:
                f.write("%d %.6g\n" % (x, y))
        width = 3 if contender == "ours" else 1.5
        color = COLORS[i % len(COLORS)]
        plots.append("%s using 1:2 with linespoints lw %g lc rgb '%s' "
                     "pt %d ps 0.8 title %s"
                     % (gnuplot_quote(data), width, color, POINTS[i % len(POINTS)],
                        gnuplot_quote(contender)))
    lines.append("plot " + ", \\\n     ".join(plots))
    script = os.path.join(work_dir, "plot.gp")
    with open(script, "w") as f:
        f.write("\n".join(lines) + "\n")
    subprocess.run(["gnuplot", script], check=True)


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    out_dir = argv[1]
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for path in argv[2:]:
        with open(path) as f:
            document = json.load(f)
        context = document.get("context", {})
        when = context.get("date", "")[:10]
        host = "%s CPUs" % context.get("num_cpus", "?")
        stem = os.path.splitext(os.path.basename(path))[0]
        groups, x_arg = points(document)
        for group, contenders in groups.items():
            charts = [("ns", "", "ns per op (wall time)")]
            charts += [(c, "_" + c, label) for c, label in COUNTER_CHARTS.items()
                       if any(c in run for by_x in contenders.values()
                              for runs in by_x.values() for run in runs)]
            for value, suffix, y_label in charts:
                series = []
                for contender, by_x in contenders.items():
                    pts = []
                    for x, runs in sorted(by_x.items()):
                        ys = [run[value] for run in runs if value in run]
                        if ys:
                            pts.append((x, statistics.median(ys)))
                    if pts:
                        series.append((contender, pts))
                # ours first, so it is drawn under the others' legend entries.
                series.sort(key=lambda s: (s[0] != "ours", s[0]))
                svg = os.path.join(out_dir, "%s_%s%s.svg" % (stem, group, suffix))
                what = group + (", " + y_label if suffix else "")
                title = "%s: %s (%s, %s)" % (stem, what, when, host)
                with tempfile.TemporaryDirectory() as work_dir:
                    draw(svg, title, X_LABELS[x_arg[group]], y_label, series,
                         work_dir)
                written.append(svg)
    for svg in written:
        print(svg)
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
