#!/usr/bin/python3
"""Speed of `accsim sweep` against one-by-one `accsim run` + `accsim cost` calls.

Runs the sweep of SPEC (default scripts/bench/sweep_fmnist_cnn.yaml, 96 points)
into a fresh folder, then times the one-by-one way for the same points:
`accsim run` once per distinct numerics setting (each point of that setting
would repeat exactly that run, so its time is counted once per point) and
`accsim cost` for every point. `accsim run` has no --array flag: it measures
energy on an array of --array-cols columns whose rows follow the chunk size,
the nearest thing it offers. Prints a table.

  scripts/bench_sweep.py [--accsim build/release/sim/accsim] [--spec SPEC] [--threads 2] [--work DIR]
"""
import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd):
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return time.monotonic() - t0, p.returncode, p.stderr.strip().splitlines()[-1:] if p.stderr else []


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accsim", default=os.path.join(ROOT, "build/release/sim/accsim"))
    ap.add_argument("--spec", default=os.path.join(ROOT, "scripts/bench/sweep_fmnist_cnn.yaml"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="/tmp/accsim_bench_sweep")
    args = ap.parse_args()

    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    out = os.path.join(args.work, "sweep")
    load_before = os.getloadavg()
    sweep_s, rc, tail = timed([args.accsim, "sweep", args.spec, "--out", out, "--threads", str(args.threads), "--quiet"])
    if rc not in (0, 1):
        sys.exit(f"sweep failed ({rc}): {tail}")
    points = [json.loads(l) for l in open(os.path.join(out, "points.jsonl"))]
    reuse = [l for l in open(os.path.join(out, "sweep.log")) if "reuse:" in l][-1].split("] ", 2)[-1].strip()

    groups = collections.OrderedDict()
    for p in points:
        c = p["config"]
        groups.setdefault((c["trace"], c["mul"], c["prod"], c["acc"], c["order"], c["scale"]), []).append(p)
    trace_dir = os.path.join(os.path.dirname(os.path.abspath(args.spec)), points[0]["config"]["trace"])
    run_s = {}
    for g, members in groups.items():
        _, mul, prod, acc, order, scale = g
        cols = members[0]["config"]["array"].split("x")[1]
        run_s[g], rc, tail = timed([args.accsim, "run", "--trace", trace_dir, "--samples", str(points[0]["samples"]),
                                    "--mul", mul, "--prod", prod, "--acc", acc, "--order", order, "--scale", scale,
                                    "--threads", str(args.threads), "--energy-samples", "1", "--array-cols", cols,
                                    "--node", str(members[0]["config"]["node"])])
        if rc != 0:
            sys.exit(f"accsim run failed: {tail}")
    cost_s = 0.0
    for p in points:
        c = p["config"]
        cmd = [args.accsim, "cost", "--mul", c["mul"], "--acc", c["acc"], "--array", c["array"], "--node", str(c["node"]),
               "--ibuf", str(c["ibuf"]), "--wbuf", str(c["wbuf"]), "--obuf", str(c["obuf"])]
        if c["prod"] != "exact":
            cmd += ["--prod", c["prod"]]
        s, _, _ = timed(cmd)
        cost_s += s
    one_by_one = sum(run_s[g] * len(m) for g, m in groups.items()) + cost_s
    load_after = os.getloadavg()

    ok = sum(p["status"] == "ok" for p in points)
    print(f"accsim sweep benchmark: {len(points)} points ({ok} ok), {len(groups)} numerics settings, "
          f"{points[0]['samples']} samples, --threads {args.threads} on {os.cpu_count()} cores")
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f}")
    print()
    print(f"{'numerics (prod / acc)':<60}{'points':>7}{'accsim run s':>14}")
    for g, m in groups.items():
        print(f"{g[2] + ' / ' + g[3]:<60}{len(m):>7}{run_s[g]:>14.1f}")
    print()
    print(f"{'way':<46}{'seconds':>10}{'points/min':>12}")
    print(f"{'accsim sweep':<46}{sweep_s:>10.1f}{60 * len(points) / sweep_s:>12.2f}")
    print(f"{'one by one: accsim run + accsim cost per point':<46}{one_by_one:>10.1f}{60 * len(points) / one_by_one:>12.2f}")
    print(f"  (accsim run timed once per numerics setting and counted for each of its points; "
          f"accsim cost timed for all {len(points)}: {cost_s:.1f}s)")
    print(f"speed-up: {one_by_one / sweep_s:.1f}x")
    print(f"sweep's own account: {reuse}")


if __name__ == "__main__":
    main()
