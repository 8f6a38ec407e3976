#!/usr/bin/python3
"""Markdown tables for docs/rtl.md from rtl_ref/area/units.csv and energy.csv:
the paper's 12-bit-vs-FP32 claim, our area and energy against Horowitz
(ISSCC 2014, 45 nm) after node scaling, and the accumulator grid.

  rtl_ref/synth/report.py                      # print the tables
  rtl_ref/synth/report.py --write docs/rtl.md  # replace the generated blocks there
  rtl_ref/synth/report.py --check docs/rtl.md  # exit 1 if they are stale (a CTest)
"""

import argparse
import csv
import io
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
AREA = os.path.join(os.path.dirname(HERE), "area")

# Node scaling from 180 nm / 1.8 V to 45 nm / 0.9 V, with Stillmaker and
# Baas's (2017) factors as models/cost uses them (models/cost/data/
# technology.csv names the source), and classical (Dennard) scaling beside
# them: area with L^2, energy with C V^2 ~ L V^2.
TECHNOLOGY = os.path.join(os.path.dirname(os.path.dirname(HERE)), "models", "cost", "data", "technology.csv")
CLASSICAL_AREA_45 = (45 / 180) ** 2
CLASSICAL_ENERGY_45 = (45 / 180) * (0.9 / 1.8) ** 2


def stillmaker_baas_45():
    """(area factor, energy factor) from 180 nm at 1.8 V to 45 nm at its vdd."""
    nodes = {int(r["node_nm"]): r for r in csv.DictReader(l for l in open(TECHNOLOGY) if not l.startswith("#"))}
    poly = lambda r: (float(r["energy_c2"]) * float(r["vdd_v"]) ** 2 + float(r["energy_c1"]) * float(r["vdd_v"])
                      + float(r["energy_c0"]))
    return float(nodes[45]["area_vs_180nm"]), poly(nodes[45]) / poly(nodes[180])


PAPER_ACC, PAPER_PROD = "M7E4,bias=10,round=rtz,ftz", "M7E4,bias=12,round=rtz,ftz"

# Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm.
HOROWITZ = [  # (operation, um^2, pJ, our unit key)
    ("fp16 add", 1360, 0.4, ("acc", "", "", "fp16")),
    ("fp32 add", 4184, 0.9, ("acc", "", "", "fp32")),
    ("fp16 mult", 1640, 1.1, ("mul_round", "fp16", "fp16", "")),
    ("fp32 mult", 7700, 3.7, ("mul_round", "fp32", "fp32", "")),
    ("int8 add", 36, 0.03, ("int_acc", "", "int8", "int8")),
    ("int32 add", 137, 0.1, ("int_acc", "", "int32", "int32")),
    ("int8 mult", 282, 0.2, ("int_mul", "int8", "int16", "")),
    ("int32 mult", 3495, 3.1, ("int_mul", "int32", "int32", "")),
]


def read(path):
    if not os.path.exists(path):
        return []
    return list(csv.DictReader(l for l in open(path) if not l.startswith("#")))


def tables():
    """{"area": markdown, "energy": markdown}: the blocks docs/rtl.md holds."""
    sb_area, sb_energy = stillmaker_baas_45()
    out = {"area": io.StringIO(), "energy": io.StringIO()}
    section = ["area"]

    def print(*args):  # noqa: A001 - the tables below write through this
        out[section[0]].write(" ".join(str(a) for a in args) + "\n")

    units = {(r["unit"], r["operand"], r["product"], r["accumulator"]): r for r in read(os.path.join(AREA, "units.csv"))}
    energy = {r["name"]: r for r in read(os.path.join(AREA, "energy.csv"))}

    def unit(key):
        return units.get(key)

    print("#### The paper's claim: a 12-bit accumulator needs 63% fewer gates than FP32\n")
    print("| accumulator unit | cells | area (um^2) | cells saved vs FP32 | area saved vs FP32 |")
    print("|---|---:|---:|---:|---:|")
    pairs = [
        ("M7E4 acc + M7E4 product (the paper's formats)", ("acc", "", PAPER_PROD, PAPER_ACC),
         ("acc", "", "", "fp32")),
        ("M7E4 acc + M7E4 addend, same format", ("acc", "", "", PAPER_ACC), ("acc", "", "", "fp32")),
        ("M7E4 acc vs FP32 with the same rtz + ftz", ("acc", "", "", PAPER_ACC),
         ("acc", "", "", "fp32,round=rtz,ftz")),
        ("fused: M7E4 acc of exact e4m3 products", ("acc_fused", "e4m3", "", PAPER_ACC),
         ("acc_fused", "e4m3", "", "fp32")),
    ]
    for label, small, big in pairs:
        s, b = unit(small), unit(big)
        if not s or not b:
            continue
        print("| %s | %s (FP32: %s) | %s (FP32: %s) | %.0f%% | %.0f%% |" % (
            label, s["cells"], b["cells"], s["area_um2"], b["area_um2"],
            100 * (1 - int(s["cells"]) / int(b["cells"])), 100 * (1 - float(s["area_um2"]) / float(b["area_um2"]))))

    print("\n#### Area against Horowitz (ISSCC 2014, 45 nm)\n")
    print("Ours at 180 nm, scaled to 45 nm by Stillmaker and Baas's area factor (x%.3f; classical "
          "(45/180)^2 = x%.4f would give %.2fx larger figures).\n" % (sb_area, CLASSICAL_AREA_45, CLASSICAL_AREA_45 / sb_area))
    print("| operation | our unit | cells | ours, 180 nm (um^2) | ours scaled to 45 nm | Horowitz 45 nm | ours / Horowitz |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for op, h_area, _, key in HOROWITZ:
        r = unit(key)
        if not r:
            continue
        scaled = float(r["area_um2"]) * sb_area
        print("| %s | `%s %s` | %s | %s | %.0f | %d | %.2f |" % (
            op, key[0], " ".join(k for k in key[1:] if k), r["cells"], r["area_um2"], scaled, h_area,
            scaled / h_area))

    if energy:
        section[0] = "energy"
        print("#### Energy per MAC (gate-level, fmnist_cnn conv2 operands)\n")
        print("pJ per MAC at 180 nm, 1.8 V; `datapath` is the combinational logic, `regs` the flip-flops' "
              "data and clock energy. The datapath is scaled to 45 nm / 0.9 V by Stillmaker and Baas's energy "
              "factor (x%.4f; classical L V^2 would be x%.4f) beside Horowitz's multiply + add at 45 nm where he "
              "gives both.\n" % (sb_energy, CLASSICAL_ENERGY_45))
        print("| PE | cells | area (um^2) | total | datapath | regs (data + clock) | glitch factor | "
              "datapath scaled to 45 nm | Horowitz mult + add, 45 nm | ours / Horowitz |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        horowitz_mac = {"fp16_fp32": 1.1 + 0.9, "int8_int32": 0.2 + 0.1, "bf16_fp32": None, "e4m3_fp32": None}
        for name in sorted(energy):
            r = energy[name]
            fmt = "%s x %s -> %s -> %s" % (r["operand"], r["operand"], r["product"] or "exact", r["accumulator"])
            h = horowitz_mac.get(name)
            scaled = float(r["comb_pj_per_mac"]) * sb_energy
            print("| %s (`%s`) | %s | %s | %s | %s | %.3f | %s | %.2f | %s | %s |" % (
                name, fmt, r["cells"], r["area_um2"], r["pj_per_mac"], r["comb_pj_per_mac"],
                float(r["flop_pj_per_mac"]) + float(r["clock_pj_per_mac"]), r["glitch_factor"],
                scaled, "%.2f" % h if h else "—", "%.2f" % (scaled / h) if h else "—"))
        ops = {(r["unit"], r["operand"], r["product"], r["accumulator"]): r
               for r in read(os.path.join(AREA, "unit_energy.csv"))}
        if ops:
            print("\n#### Energy per operation against Horowitz (ISSCC 2014, 45 nm)\n")
            print("Each unit simulated alone at gate level on the same stream (adders: running sum and next "
                  "term; multipliers: operand pairs), glitches included; scaled to 45 nm / 0.9 V by "
                  "Stillmaker and Baas (x%.4f).\n" % sb_energy)
            print("| operation | our unit | ours, 180 nm (pJ) | ours scaled to 45 nm (pJ) | Horowitz 45 nm (pJ) | "
                  "ours / Horowitz | glitch factor |")
            print("|---|---|---:|---:|---:|---:|---:|")
            for op, _, h_pj, key in HOROWITZ:
                r = ops.get(key)
                if not r:
                    continue
                scaled = float(r["pj_per_op"]) * sb_energy
                print("| %s | `%s %s` | %.2f | %.3f | %.2f | %.2f | %s |" % (
                    op, key[0], " ".join(k for k in key[1:] if k), float(r["pj_per_op"]), scaled, h_pj,
                    scaled / h_pj, r["glitch_factor"]))
        section[0] = "area"

    grid = {}
    for (u, o, p, a), r in units.items():
        if u == "acc" and not p and a.startswith("M"):
            grid[a] = r
    for suffix, title in (("", "round to nearest even, subnormals"), (",round=rtz,ftz", "rtz, flush to zero")):
        rows = []
        for m in range(2, 24):
            cells = []
            for e in range(3, 9):
                r = grid.get("M%dE%d%s" % (m, e, suffix))
                cells.append(r["area_um2"].split(".")[0] if r else "")
            if any(cells):
                rows.append("| M%d | %s |" % (m, " | ".join(cells)))
        if rows:
            print("\n#### Accumulator adder area (um^2, 180 nm), MxEy + MxEy, %s\n" % title)
            print("| | E3 | E4 | E5 | E6 | E7 | E8 |")
            print("|---|---:|---:|---:|---:|---:|---:|")
            print("\n".join(rows))
    return {k: v.getvalue() for k, v in out.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", metavar="DOC", help="replace the blocks between <!-- report.py: NAME --> and "
                                                   "<!-- report.py: end --> in DOC")
    ap.add_argument("--check", metavar="DOC", help="exit 1 if DOC's blocks differ from the tables")
    args = ap.parse_args()
    blocks = tables()
    doc = args.write or args.check
    if not doc:
        sys.stdout.write(blocks["area"] + "\n" + blocks["energy"])
        return
    text = original = open(doc).read()
    for name, body in blocks.items():
        pattern = re.compile(r"(<!-- report.py: %s -->\n).*?(<!-- report.py: end -->)" % name, re.S)
        if not pattern.search(text):
            sys.exit("%s: no <!-- report.py: %s --> block" % (doc, name))
        text = pattern.sub(lambda m: m.group(1) + "\n" + body + "\n" + m.group(2), text)
    if args.check:
        if text != original:
            sys.exit("%s: generated tables are stale; run rtl_ref/synth/report.py --write %s" % (doc, doc))
        print("%s: generated tables are current" % doc)
        return
    open(doc, "w").write(text)


if __name__ == "__main__":
    main()
