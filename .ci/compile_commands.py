#!/usr/bin/env python3
"""Writes a compile_commands.json for clang-tidy (and clangd) over our .cc files.

Bazel 4.2.3 cannot write one, so this derives it: clang++-14 with the
default build's C++ options from .bazelrc (`build --cxxopt=...`), our
targets' warnings from bazel/copts.bzl (STACKALLOC_COPTS), the repository's
root on the include path (every include of ours is root-relative), Bazel's
runfiles library where Debian's Bazel installs it (/usr/include/bazel, as
system headers), and the local_defines the few files that need one get from
their BUILD. Nothing else is needed: Abseil, GoogleTest, Google Benchmark and
Boost are Debian's headers under /usr/include, which clang searches anyway.

  .ci/compile_commands.py [OUTPUT_DIR]   # default: the repository's root

Covers every tracked *.cc file (git ls-files), testing/consumer's included.
"""

import ast
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPILER = "clang++-14"

# local_defines of the files that cannot compile without them (their BUILD
# files say the same); the values are only there to make them compile.
LOCAL_DEFINES = {
    "testing/perf/peers_process.cc": [
        'PEERS_MALLOC="glibc"',
        'PEERS_MALLOC_LIBRARY="libc.so"',
    ],
    "testing/perf/peers_benchmark.cc": ['PEERS_BINARIES="peers_glibc_benchmark"'],
}


def stackalloc_copts():
    """STACKALLOC_COPTS from bazel/copts.bzl."""
    with open(os.path.join(ROOT, "bazel", "copts.bzl")) as f:
        text = f.read()
    m = re.search(r"^STACKALLOC_COPTS = (\[.*?\])$", text, re.M | re.S)
    if not m:
        sys.exit("compile_commands: no STACKALLOC_COPTS in bazel/copts.bzl")
    return ast.literal_eval(m.group(1))


def bazelrc_cxxopts():
    """The default build's --copt and --cxxopt values from .bazelrc."""
    opts = []
    with open(os.path.join(ROOT, ".bazelrc")) as f:
        for line in f:
            words = line.split()
            if not words or words[0] != "build":
                continue
            for w in words[1:]:
                m = re.fullmatch(r"--(?:copt|cxxopt)=(\S+)", w)
                if m:
                    opts.append(m.group(1))
    return opts


def main():
    out_dir = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else ROOT
    files = subprocess.run(
        ["git", "-C", ROOT, "ls-files", "--", "*.cc"],
        check=True, capture_output=True, text=True).stdout.split()
    if not files:
        sys.exit("compile_commands: no tracked .cc files")
    flags = bazelrc_cxxopts() + stackalloc_copts() + [
        "-I" + ROOT,
        "-isystem", "/usr/include/bazel",  # tools/cpp/runfiles/runfiles.h
    ]
    entries = []
    for path in files:
        defines = ["-D" + d for d in LOCAL_DEFINES.get(path, [])]
        entries.append({
            "directory": ROOT,
            "file": os.path.join(ROOT, path),
            "arguments": [COMPILER] + flags + defines +
                         ["-c", os.path.join(ROOT, path)],
        })
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "compile_commands.json"), "w") as f:
        json.dump(entries, f, indent=1)
        f.write("\n")
    print("compile_commands: %d files in %s" %
          (len(entries), os.path.join(out_dir, "compile_commands.json")))


if __name__ == "__main__":
    main()
