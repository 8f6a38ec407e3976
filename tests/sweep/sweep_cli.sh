#!/bin/bash
# accsim sweep end to end on a small spec: dry run, byte-identical output for
# any thread count, nothing redone on a rerun, shards merged into the same
# bytes, a point against `accsim run` (an independent evaluation path), spec
# errors, and a failing point. Needs ACCSIM (the binary) and ACCSIM_SOURCE.
set -euo pipefail
A=${ACCSIM:?}
S=${ACCSIM_SOURCE:?}
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > "$T/spec.yaml" <<EOF
trace: $S/traces/fmnist_cnn
samples: 8
fixed: {mul: e4m3, prod: exact, scale: none, order: "chunked:16"}
axes:
  acc: [fp16, "M7E4,bias=10,round=rtz,ftz"]
  array: [8x8, 16x16]
  dataflow: [ws, os]
EOF

# --dry-run: the points and their count, nothing written.
$A sweep "$T/spec.yaml" --dry-run > "$T/dry.txt"
[ "$(wc -l < "$T/dry.txt")" = 9 ] || fail "dry run: $(cat "$T/dry.txt")"
tail -1 "$T/dry.txt" | grep -q "^8 points: 2 accuracy runs, 1 trace, 8 samples each$" || fail "dry run count: $(tail -1 "$T/dry.txt")"

# Any thread count: the same bytes.
$A sweep "$T/spec.yaml" --out "$T/t1" --threads 1 --quiet
$A sweep "$T/spec.yaml" --out "$T/t2" --threads 2 2> "$T/t2.err"
cmp "$T/t1/points.jsonl" "$T/t2/points.jsonl" || fail "points.jsonl differs between 1 and 2 threads"
cmp "$T/t1/points.csv" "$T/t2/points.csv" || fail "points.csv differs between 1 and 2 threads"
[ ! -s "$T/t1/sweep.log" ] && fail "no sweep.log"
grep -q "8/8 points" "$T/t2.err" || fail "no progress on stderr"
grep -q "reuse: 8 points from 2 accuracy runs and 1 FP32 passes" "$T/t2.err" || fail "no reuse report: $(cat "$T/t2.err")"

# A rerun computes nothing and leaves the same bytes.
$A sweep "$T/spec.yaml" --out "$T/t2" --log-level warn
cmp "$T/t1/points.jsonl" "$T/t2/points.jsonl" || fail "a rerun changed points.jsonl"
grep -q "0 to run" "$T/t2/sweep.log" || fail "the rerun ran points again"

# A folder whose points another definition of the formats computed (another
# numerics identity) is refused, for resuming and for merging: one line, exit 2.
mkdir "$T/old"
sed 's/"numerics_identity":"[^"]*"/"numerics_identity":"accsim-numerics-0"/' "$T/t1/points.jsonl" > "$T/old/points.jsonl"
grep -q '"numerics_identity":"accsim-numerics-0"' "$T/old/points.jsonl" || fail "no numerics_identity in points.jsonl"
cp "$T/old/points.jsonl" "$T/old.jsonl"
set +e
$A sweep "$T/spec.yaml" --out "$T/old" --quiet 2> "$T/old.err"; rc=$?
$A sweep-merge "$T/t1" "$T/old" --out "$T/mixed" --quiet 2> "$T/mixed.err"; rc2=$?
set -e
[ $rc = 2 ] && [ "$(wc -l < "$T/old.err")" = 1 ] && grep -q "^accsim: error: $T/old/points.jsonl: point [0-9a-f]* was computed with numerics identity 'accsim-numerics-0'" "$T/old.err" ||
  fail "resuming another build's folder: $rc $(cat "$T/old.err")"
cmp "$T/old/points.jsonl" "$T/old.jsonl" || fail "a refused resume changed points.jsonl"
[ $rc2 = 2 ] && grep -q "^accsim: error: $T/old/points.jsonl: point .* numerics identity" "$T/mixed.err" ||
  fail "merging shards of two builds: $rc2 $(cat "$T/mixed.err")"
[ ! -e "$T/mixed" ] || fail "a refused merge left a folder"

# Two sweeps on one folder: the second is refused while the first (stopped
# with SIGSTOP once it holds the folder) is running.
$A sweep "$T/spec.yaml" --out "$T/locked" --quiet &
first=$!
for _ in $(seq 600); do grep -q "to run" "$T/locked/sweep.log" 2> /dev/null && break; sleep 0.05; done
kill -STOP $first
set +e
$A sweep "$T/spec.yaml" --out "$T/locked" 2> "$T/locked.err"; rc=$?
set -e
kill -CONT $first
wait $first || fail "the first sweep on the locked folder failed"
[ $rc = 2 ] && grep -q "^accsim: error: $T/locked: another accsim sweep is writing to this folder$" "$T/locked.err" ||
  fail "second sweep on a busy folder: $rc $(cat "$T/locked.err")"
cmp "$T/t1/points.jsonl" "$T/locked/points.jsonl" || fail "the locked folder's result differs"

# Shards, merged: the same bytes as one machine.
$A sweep "$T/spec.yaml" --out "$T/s0" --shard 0/3 --quiet
$A sweep "$T/spec.yaml" --out "$T/s1" --shard 1/3 --quiet
$A sweep "$T/spec.yaml" --out "$T/s2" --shard 2/3 --quiet
$A sweep-merge "$T/s0" "$T/s1" "$T/s2" --out "$T/merged" --quiet
cmp "$T/t1/points.jsonl" "$T/merged/points.jsonl" || fail "merged shards differ from one machine"
cmp "$T/t1/points.csv" "$T/merged/points.csv" || fail "merged CSV differs from one machine"

# One point against `accsim run` with the same settings: accuracy, event
# rates, and (16x16 WS sums in chunked:16, the order run's array uses)
# cycles and energy.
$A run --trace "$S/traces/fmnist_cnn" --samples 8 --mul e4m3 --prod exact --acc "M7E4,bias=10,round=rtz,ftz" \
  --order chunked:16 --scale none --array-cols 16 --report "$T/run.json" > /dev/null
$PY - "$T/t1/points.jsonl" "$T/run.json" <<'EOF' || fail "sweep point differs from accsim run"
import json, sys
points = [json.loads(l) for l in open(sys.argv[1])]
run = json.load(open(sys.argv[2]))
assert len(points) == 8 and all(p["status"] == "ok" for p in points)
for p in points:
    for k in ("key", "trace", "numerics_identity", "samples", "config", "top1", "top1_fp32", "agreement", "layers", "cycles_per_inference",
              "area_um2", "energy_uj_per_inference", "pareto"):
        assert k in p, k
    assert p["trace"]["hash"] == run["trace"]["hash"]
    assert p["numerics_identity"] == run["numerics_identity"], (p["numerics_identity"], run["numerics_identity"])
    assert set(p["pareto"]) == {"area", "energy"}
p = [p for p in points if p["config"]["acc"] == "M7E4,bias=10,round=rtz,ftz" and p["config"]["array"] == "16x16"
     and p["config"]["dataflow"] == "ws"][0]
acc = run["accuracy"]
assert p["top1"] == acc["lowbit"]["top1"], (p["top1"], acc["lowbit"]["top1"])
assert p["top1_fp32"] == acc["fp32"]["top1"]
assert p["agreement"] == acc["lowbit"]["agreement_with_fp32"]
for mine, theirs in zip(p["layers"], run["layers"]):
    assert mine["name"] == theirs["name"]
    for k in ("overflow", "underflow", "swamp", "product_underflow"):
        assert mine[k] == theirs["rates"][k], (mine, theirs["rates"])
en = run["energy"]
assert p["cycles_per_inference"] == sum(l["cycles_per_inference"] for l in en["layers"])
assert abs(p["energy_uj_per_inference"] - en["per_inference"]["total_pj"] * 1e-6) < 1e-9
assert p["order_matches_array"] is True and p["array_order"] == "chunked:16"
os_point = [q for q in points if q["config"]["dataflow"] == "os"][0]
assert os_point["array_order"] == "sequential" and os_point["order_matches_array"] is False
EOF

# A spec error: one line naming file, line and key; exit 2; no folder made.
printf 'trace: %s/traces/fmnist_cnn\nsamples: 2\naxes:\n  acc: [fp16, "M7E4,bias=x"]\n' "$S" > "$T/bad.yaml"
set +e
$A sweep "$T/bad.yaml" --out "$T/bad" 2> "$T/bad.err"; rc=$?
set -e
[ $rc = 2 ] || fail "spec error exit code $rc"
[ "$(wc -l < "$T/bad.err")" = 1 ] || fail "spec error is not one line: $(cat "$T/bad.err")"
grep -q "^accsim: error: $T/bad.yaml:4: axes.acc\[1\]: " "$T/bad.err" || fail "spec error: $(cat "$T/bad.err")"
[ ! -e "$T/bad" ] || fail "a spec error left a folder"
set +e
$A sweep "$T/spec.yaml" --out "$T/x" --shard 3/3 2> "$T/shard.err"; rc=$?
set -e
[ $rc = 2 ] && grep -q "^accsim: error: --shard: " "$T/shard.err" || fail "bad --shard: $rc $(cat "$T/shard.err")"

# A point the cost model cannot serve (float products into an integer
# accumulator): recorded as failed with its reason, the rest go on, exit 1.
cat > "$T/failing.yaml" <<EOF
trace: $S/traces/fmnist_cnn
samples: 4
fixed: {mul: e4m3, prod: exact, scale: none}
axes:
  acc: [fp16, int32]
EOF
set +e
$A sweep "$T/failing.yaml" --out "$T/f" --quiet 2> "$T/f.err"; rc=$?
set -e
[ $rc = 1 ] || fail "failing point: exit code $rc"
grep -q "^accsim: sweep: 1 of 2 points failed" "$T/f.err" || fail "failing point message: $(cat "$T/f.err")"
$PY - "$T/f/points.jsonl" <<'EOF' || fail "failed record"
import json, sys
rs = {r["config"]["acc"]: r for r in map(json.loads, open(sys.argv[1]))}
assert rs["fp16"]["status"] == "ok"
assert rs["int32"]["status"] == "failed" and "\n" not in rs["int32"]["error"] and rs["int32"]["error"], rs["int32"]
EOF
# The fronts as a PNG.
$PY "$S/scripts/plot_sweep.py" "$T/t1" --out "$T/fronts.png" > /dev/null
[ "$(head -c 4 "$T/fronts.png" | tail -c 3)" = PNG ] || fail "plot_sweep.py wrote no PNG"
echo "sweep CLI: all checks passed"
