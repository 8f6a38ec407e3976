#!/bin/bash
# A small sweep through scripts/slurm/sweep.sh on the single-node Slurm that
# slurm_cluster.sh started (the CTest fixture), compared byte for byte with a
# one-machine run. Exit 77 (skipped) when Slurm could not start here.
# Needs ACCSIM, ACCSIM_SOURCE and ACCSIM_SLURM_STATE.
set -euo pipefail
A=${ACCSIM:?}
S=${ACCSIM_SOURCE:?}
state=${ACCSIM_SLURM_STATE:?}
export PATH=/usr/sbin:/usr/bin:$PATH
[[ -f $state ]] || { echo "SKIPPED: no Slurm cluster (the sweep.slurm_start fixture did not run)"; exit 77; }
base=$(cat "$state")
if [[ $base == unavailable* ]]; then
  echo "SKIPPED: Slurm cannot start on this machine: ${base#unavailable: }"
  exit 77
fi
export SLURM_CONF=$base/slurm.conf
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/slurm/shards/*.out; do [[ -f $f ]] && { echo "== $f"; cat "$f"; }; done >&2; exit 1; }

cat > "$T/spec.yaml" <<EOF
trace: $S/traces/fmnist_cnn
samples: 6
fixed: {mul: e4m3, prod: exact, scale: none}
axes:
  acc: [fp16, bf16, "M7E4,bias=10,round=rtz,ftz"]
  dataflow: [ws, os]
EOF
$A sweep "$T/spec.yaml" --out "$T/one" --quiet

jobs=$("$S/scripts/slurm/sweep.sh" "$T/spec.yaml" "$T/slurm" --shards 3 --threads 1 --accsim "$A")
read -r array_job merge_job <<< "$jobs"
echo "submitted array job $array_job and merge job $merge_job"
deadline=$((SECONDS + 240))
while true; do
  left=$(squeue -h -j "$array_job,$merge_job" -o %i) || fail "squeue failed"
  [[ -z $left ]] && break
  ((SECONDS < deadline)) || fail "jobs still queued after 240 s: $left"
  sleep 0.5
done
scontrol -o show job "$merge_job" | grep -q "JobState=COMPLETED" || fail "merge job: $(scontrol -o show job "$merge_job")"
cmp "$T/one/points.jsonl" "$T/slurm/points.jsonl" || fail "points.jsonl from Slurm differs from the one-machine run"
cmp "$T/one/points.csv" "$T/slurm/points.csv" || fail "points.csv from Slurm differs from the one-machine run"
echo "slurm: 3 shards merged, byte-identical to the one-machine run"
