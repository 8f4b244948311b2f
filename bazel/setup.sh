#!/usr/bin/env bash
# Installs everything stackalloc needs on Debian 12, idempotently.
#   bazel/setup.sh            # build, test and benchmark dependencies
# Runs apt-get only for packages that are missing, and `apt-get update` only
# when it has to install something.
set -euo pipefail

packages=(
  bazel-bootstrap   # Bazel 4.2.3
  g++
  libabsl-dev
  libgtest-dev
  libbenchmark-dev
  libboost1.81-dev           # Boost 1.81's headers: Asio's spawn takes a stack allocator
  libboost-context1.81-dev   # @boost//:context
  libboost-fiber1.81-dev     # @boost//:fiber: the Boost.Fiber tests, benchmark, example
  wrk                        # the Asio server benchmark's HTTP load generator
  libjemalloc-dev            # peers benchmark
  libgoogle-perftools-dev    # peers benchmark (tcmalloc)
  libmimalloc-dev            # peers benchmark
  clang-format               # .ci/run's format check
  clang-14                   # the libFuzzer target (--config=fuzz), --config=clang
  libclang-rt-14-dev         # its fuzzer and sanitizer runtimes
  clang-tidy-14              # .ci/run's tidy phase (clang-tidy-14, run-clang-tidy-14)
  jq                         # .ci/run reads Bazel's build event JSON with it
  golang-go                  # Go 1.19, the peer in //testing/perf:stack_growth_report
  valgrind
  gnuplot-nox                # //testing/perf:charts draws the benchmark charts
  python3                    # ... from the benchmarks' JSON (testing/perf/plot_benchmarks.py)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# npm (for buildifier) by command, not by package: a machine may carry another
# vendor's nodejs that bundles npm and conflicts with Debian's npm package.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Debian's Boost 1.74 -dev packages conflict with 1.81's: apt-get removes
# them when it installs ours (the 1.74 runtime libraries stay for whatever
# else uses them).

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# buildifier, for BUILD/.bzl formatting checks; the npm package ships the
# prebuilt binaries. Pinned: formatting and lint results depend on the version.
buildifier_version=8.2.1
if ! buildifier --version 2>/dev/null | grep -q "version: ${buildifier_version}\b"; then
  echo "setup: installing buildifier ${buildifier_version} from npm"
  $SUDO npm install -g --silent --no-fund --no-audit "@bazel/buildifier@${buildifier_version}"
fi

echo "setup: ok"
