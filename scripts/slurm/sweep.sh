#!/usr/bin/env bash
# Submits an accsim sweep to Slurm: a job array with one shard a task
# (`accsim sweep SPEC --out DIR/shards/I --shard I/N`), and a merge job that
# runs when every shard succeeded (--dependency=afterok) and writes
# DIR/points.jsonl and DIR/points.csv, byte-identical to a one-machine run
# (docs/sweep.md).
#
#   scripts/slurm/sweep.sh SPEC.yaml DIR [--shards N] [--threads T] [--accsim PATH] [-- SBATCH_ARGS...]
#
# --shards N   tasks in the array (default 4); a shard holds whole numerics
#              settings (one accuracy run each) unless there are fewer
#              settings than shards
# --threads T  threads per shard (default: the CPUs Slurm gives the task)
# --accsim     the accsim binary every node runs (default: $ACCSIM, else
#              `accsim` on PATH, else build/release/sim/accsim of this tree)
# Anything after `--` goes to both sbatch calls (partition, time, account).
# Prints "ARRAY_JOB MERGE_JOB" on stdout. DIR and SPEC must be on a file
# system every node sees. A rerun resumes: each shard skips its finished points.
# A shard whose points failed (exit 1: recorded with their reasons) still
# counts as done for the merge, which then exits 1 saying how many failed.
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }
(($# >= 2)) || usage
spec=$1 dir=$2
shift 2
shards=4 threads=0 accsim=${ACCSIM:-} extra=()
while (($#)); do
  case $1 in
    --shards) shards=${2:?}; shift 2 ;;
    --threads) threads=${2:?}; shift 2 ;;
    --accsim) accsim=${2:?}; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "sweep.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ $shards =~ ^[1-9][0-9]*$ ]] || { echo "sweep.sh: --shards must be a positive integer" >&2; exit 2; }
if [[ -z $accsim ]]; then
  accsim=$(command -v accsim || true)
  [[ -n $accsim ]] || accsim="$(cd "$(dirname "$0")/../.." && pwd)/build/release/sim/accsim"
fi
[[ -x $accsim ]] || { echo "sweep.sh: $accsim: not an executable accsim (pass --accsim)" >&2; exit 2; }
[[ -r $spec ]] || { echo "sweep.sh: $spec: cannot read the spec" >&2; exit 2; }
accsim=$(realpath "$accsim")
spec=$(realpath "$spec")
mkdir -p "$dir/shards"
dir=$(realpath "$dir")

# Check the spec once here (one-line error, exit 2) rather than in every task.
"$accsim" sweep "$spec" --dry-run > /dev/null

threads_flag=()
[[ $threads != 0 ]] && threads_flag=(--threads "$threads")
array_job=$(sbatch --parsable --job-name=accsim-sweep --array=0-$((shards - 1)) \
  --output="$dir/shards/slurm-%a.out" "${extra[@]}" \
  --wrap="'$accsim' sweep '$spec' --out '$dir/shards/'\$SLURM_ARRAY_TASK_ID --shard \$SLURM_ARRAY_TASK_ID/$shards --quiet ${threads_flag[*]}; rc=\$?; [ \$rc = 1 ] && rc=0; exit \$rc")
shard_dirs=()
for ((i = 0; i < shards; ++i)); do shard_dirs+=("'$dir/shards/$i'"); done
merge_job=$(sbatch --parsable --job-name=accsim-sweep-merge --dependency=afterok:"${array_job%%;*}" \
  --kill-on-invalid-dep=yes --output="$dir/shards/slurm-merge.out" "${extra[@]}" \
  --wrap="exec '$accsim' sweep-merge ${shard_dirs[*]} --out '$dir' --quiet")
echo "${array_job%%;*} ${merge_job%%;*}"
