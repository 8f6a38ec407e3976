#!/usr/bin/env bash
# The sanitizer gate a developer runs before stopping (CI does not: it would
# double CI's time). Two steps:
#   1. the asan preset (AddressSanitizer + UndefinedBehaviorSanitizer, which
#      stops at the first error): build everything and run every test;
#   2. the fuzz preset (clang, libFuzzer, ASan + UBSan): each fuzz target for
#      FUZZ_SECONDS (default 60) from its seeds in tests/fuzz/seeds/. Inputs
#      that crash land in build/fuzz/artifacts/; turn each into a regression
#      test in tests/network/corpus/ (tests/fuzz/CMakeLists.txt).
# Exit status: 0 when both are clean. Both take a while on two cores: run it
# under `nice` on a shared machine.
#
#   scripts/sanitize.sh                      # everything
#   FUZZ_SECONDS=10 scripts/sanitize.sh      # a shorter fuzzing round
#   SKIP_FUZZ=1 scripts/sanitize.sh          # the asan suite only
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if command -v ccache >/dev/null; then
  export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}
  export CMAKE_C_COMPILER_LAUNCHER=${CMAKE_C_COMPILER_LAUNCHER:-ccache}
fi
jobs=${JOBS:-$(nproc)}
fuzz_seconds=${FUZZ_SECONDS:-60}
# Stack traces with every report; leaks count as errors.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "== sanitize: asan preset, every test"
cmake --preset asan
cmake --build --preset asan -j "$jobs"
ctest --preset asan -j "$jobs"

if [[ -n ${SKIP_FUZZ:-} ]]; then
  echo "== sanitize: fuzzing skipped (SKIP_FUZZ)"
  exit 0
fi

echo "== sanitize: fuzz preset, ${fuzz_seconds} s per target"
cmake --preset fuzz
cmake --build --preset fuzz -j "$jobs"
mkdir -p build/fuzz/artifacts
for target in npy onnx; do
  corpus=build/fuzz/corpus-$target  # grows between runs; the committed seeds stay as they are
  mkdir -p "$corpus"
  dict=()
  [[ -f tests/fuzz/$target.dict ]] && dict=(-dict="tests/fuzz/$target.dict")
  echo "-- fuzz_$target"
  "build/fuzz/tests/fuzz/fuzz_$target" -max_total_time="$fuzz_seconds" "${dict[@]}" \
    -artifact_prefix=build/fuzz/artifacts/ "$corpus" "tests/fuzz/seeds/$target"
done
echo "== sanitize: clean"
