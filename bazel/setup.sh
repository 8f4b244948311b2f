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
  libboost-context-dev
  golang-go         # Go 1.19, the peer in //testing:stack_growth_report
  clang-format
  nodejs
  npm
  valgrind
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# buildifier, for BUILD/.bzl formatting checks.
if ! command -v buildifier >/dev/null 2>&1; then
  echo "setup: installing buildifier from npm"
  $SUDO npm install -g --silent @bazel/buildifier@8.2.1
fi

echo "setup: ok"
