#!/usr/bin/env bash
# Quick start, second command (and what CI runs, via .ci/run): install the
# dependencies, build everything with warnings as errors (the ci preset) and
# run every test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup-deps.sh
cmake --preset ci
cmake --build --preset ci
ctest --preset ci -j "$(nproc)"
