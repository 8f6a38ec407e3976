#!/usr/bin/env bash
# Makes the regression gate's baselines (tests/baselines/*.json) again, on
# purpose: after a change that is meant to move accuracy, events, cycles or
# energy. Each shipped trace runs with the default (the paper's) low-bit
# configuration on its first 500 samples; the new report is compared with the
# old one first, so you see what moved, then replaces it. Commit the new
# baselines with the change and say in the message why the numbers moved
# (docs/check.md).
#
#   scripts/update_baselines.sh            # uses build/ci/sim/accsim
#   ACCSIM=build/release/sim/accsim scripts/update_baselines.sh
#
# The CTest gate (tests/baselines/CMakeLists.txt) runs each baseline's own
# recorded command line and checks the result with `accsim check --exact`,
# so the arguments below live only here and in the baselines.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

accsim=${ACCSIM:-build/ci/sim/accsim}
if [[ ! -x $accsim ]]; then
  echo "update_baselines: $accsim is not built (cmake --build --preset ci --target accsim)" >&2
  exit 2
fi
samples=500
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

for trace in fmnist_cnn fmnist_resnet fmnist_vit; do
  baseline=tests/baselines/$trace.json
  # Relative paths, run from the repository root: the gate runs the recorded
  # command line from there too.
  "$accsim" run --trace "traces/$trace" --samples "$samples" --report "$scratch/$trace.json" >/dev/null
  if [[ -f $baseline ]]; then
    echo "== $trace: the new report against the committed baseline"
    "$accsim" check "$scratch/$trace.json" --baseline "$baseline" --exact || true
  fi
  cp "$scratch/$trace.json" "$baseline"
  echo "wrote $baseline"
done
