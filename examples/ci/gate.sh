#!/usr/bin/env bash
# The regression gate of a design point, as a CI job runs it: `accsim run` of
# the design point on a trace, then `accsim check` against the baseline
# committed in the repository, with JUnit XML for the CI's test view.
# Exit status: accsim check's (0 pass, 1 regression, 2 unusable input).
#
# Settings (environment variables):
#   ACCSIM     the accsim binary (default: accsim/build/release/sim/accsim,
#              accsim as a git submodule built with its release preset)
#   TRACE      the trace folder (traces/README.md of accsim)           [required]
#   BASELINE   the committed baseline report                           [required]
#   DESIGN     the design point's flags of `accsim run` (default: the paper's
#              12-bit configuration, accsim's default, on 500 samples)
#   RULES      a YAML rules file (docs/check.md), optional
#   OUT        where the report and the JUnit file go (default: out/accsim)
#   UPDATE=1   write the baseline instead of checking (a change meant to move
#              the numbers: review `git diff`, commit it with the change)
set -euo pipefail

accsim=${ACCSIM:-accsim/build/release/sim/accsim}
: "${TRACE:?set TRACE to the trace folder}"
: "${BASELINE:?set BASELINE to the committed baseline report}"
design=${DESIGN:---samples 500}
out=${OUT:-out/accsim}
mkdir -p "$out"

# shellcheck disable=SC2086  # DESIGN is a list of flags
"$accsim" run --trace "$TRACE" $design --report "$out/report.json"

if [[ ${UPDATE:-} == 1 ]]; then
  cp "$out/report.json" "$BASELINE"
  echo "gate: wrote the baseline $BASELINE; commit it with the change that moved the numbers"
  exit 0
fi

rules=()
[[ -n ${RULES:-} ]] && rules=(--rules "$RULES")
"$accsim" check "$out/report.json" --baseline "$BASELINE" "${rules[@]}" --junit "$out/junit.xml"
