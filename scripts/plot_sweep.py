#!/usr/bin/python3
"""Pareto fronts of an accsim sweep: top-1 against array area and against
energy per inference, one point per design point, coloured by the
accumulator's width in bits, front points joined and ringed.

  scripts/plot_sweep.py DIR [--out DIR/fronts.png] [--title TEXT]

Reads DIR/points.jsonl (docs/sweep.md); failed points are left out. Uses
Debian's matplotlib (/usr/bin/python3).
"""
import argparse
import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NAMED_WIDTHS = {"fp32": 32, "fp16": 16, "bf16": 16, "e4m3": 8, "e5m2": 8, "e3m4": 8, "int8": 8, "int16": 16,
                "int32": 32}


def width(fmt):
    """Bits of a format string: sign + exponent + mantissa for MxEy."""
    name = fmt.split(",")[0]
    if name in NAMED_WIDTHS:
        return NAMED_WIDTHS[name]
    m = re.fullmatch(r"M(\d+)E(\d+)", name)
    if not m:
        sys.exit(f"plot_sweep: cannot tell the width of format '{fmt}'")
    return 1 + int(m.group(1)) + int(m.group(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--out")
    ap.add_argument("--title")
    args = ap.parse_args()
    path = os.path.join(args.dir, "points.jsonl")
    try:
        records = [json.loads(line) for line in open(path)]
    except OSError as e:
        sys.exit(f"plot_sweep: {path}: {e.strerror}")
    ok = [r for r in records if r["status"] == "ok"]
    if not ok:
        sys.exit(f"plot_sweep: {path}: no ok points to plot")
    widths = sorted({width(r["config"]["acc"]) for r in ok})
    cmap = plt.get_cmap("viridis", max(len(widths), 2))
    colour = {w: cmap(i) for i, w in enumerate(widths)}

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    panels = [("area", lambda r: r["area_um2"]["array"] * 1e-6, "array area, mm$^2$ (PEs + SRAM buffers)"),
              ("energy", lambda r: r["energy_uj_per_inference"], "energy per inference, µJ")]
    for ax, (front, cost, label) in zip(axes, panels):
        for w in widths:
            pts = [r for r in ok if width(r["config"]["acc"]) == w]
            ax.scatter([cost(r) for r in pts], [100 * r["top1"] for r in pts], s=18, color=colour[w],
                       label=f"{w}-bit accumulator", alpha=0.8)
        on = sorted((r for r in ok if r.get("pareto") and r["pareto"][front]), key=cost)
        ax.plot([cost(r) for r in on], [100 * r["top1"] for r in on], color="black", lw=1, drawstyle="steps-post")
        ax.scatter([cost(r) for r in on], [100 * r["top1"] for r in on], s=60, facecolors="none", edgecolors="black",
                   label="Pareto front" if front == "area" else None)
        costs = [cost(r) for r in ok]
        if min(costs) > 0 and max(costs) / min(costs) > 10:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("top-1 accuracy, %")
    axes[0].legend(fontsize=8, loc="lower right")
    r0 = ok[0]
    fig.suptitle(args.title or f"{os.path.basename(r0['trace']['path'])}, {r0['samples']} samples: "
                 f"{len(ok)} design points")
    fig.tight_layout()
    out = args.out or os.path.join(args.dir, "fronts.png")
    fig.savefig(out, dpi=90)
    print(f"plot_sweep: wrote {out}")


if __name__ == "__main__":
    main()
