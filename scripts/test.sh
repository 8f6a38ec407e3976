#!/usr/bin/env bash
# Quick start, second command (and what CI runs, via .ci/run): install the
# dependencies, build everything with warnings as errors (the ci preset) and
# run every test; then build the libFuzzer targets with clang (the fuzz
# preset, also -Werror: the code must build with both compilers) and run
# each for a short while from its seeds. ACCSIM_FUZZ_SECONDS=0 skips the
# fuzz step.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup-deps.sh
cmake --preset ci
cmake --build --preset ci
ctest --preset ci -j "$(nproc)"

fuzz_seconds="${ACCSIM_FUZZ_SECONDS:-20}"
if [ "$fuzz_seconds" -gt 0 ]; then
  cmake --preset fuzz
  cmake --build --preset fuzz
  corpus="$(mktemp -d)"
  trap 'rm -rf "$corpus"' EXIT
  for target in npy onnx; do
    mkdir -p "$corpus/$target"
    dict=()
    [ -f "tests/fuzz/$target.dict" ] && dict=("-dict=tests/fuzz/$target.dict")
    # New inputs go to the temporary corpus; a crash fails, its input kept in build/fuzz/.
    "build/fuzz/tests/fuzz/fuzz_$target" -max_total_time="$fuzz_seconds" "${dict[@]}" \
      -artifact_prefix="build/fuzz/$target-" \
      "$corpus/$target" "tests/fuzz/seeds/$target"
  done
fi
