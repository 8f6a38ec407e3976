#!/usr/bin/python3
"""Markdown tables for docs/rtl.md from rtl_ref/area/units.csv and energy.csv:
the paper's 12-bit-vs-FP32 claim, our area and energy against Horowitz
(ISSCC 2014, 45 nm) after node scaling, and the accumulator grid.

  rtl_ref/synth/report.py > /tmp/tables.md
"""

import csv
import os

HERE = os.path.dirname(os.path.abspath(__file__))
AREA = os.path.join(os.path.dirname(HERE), "area")

# Classical (Dennard) scaling from 180 nm / 1.8 V to 45 nm / 0.9 V:
# area with L^2, energy with C V^2 ~ L V^2. Stillmaker & Baas (2017) fit
# measured-model curves instead; these factors are the textbook ones.
AREA_180_TO_45 = (45 / 180) ** 2
ENERGY_180_TO_45 = (45 / 180) * (0.9 / 1.8) ** 2

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


def main():
    units = {(r["unit"], r["operand"], r["product"], r["accumulator"]): r for r in read(os.path.join(AREA, "units.csv"))}
    energy = {r["name"]: r for r in read(os.path.join(AREA, "energy.csv"))}

    def unit(key):
        return units.get(key)

    print("### The paper's claim: a 12-bit accumulator needs 63% fewer gates than FP32\n")
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

    print("\n### Area against Horowitz (ISSCC 2014, 45 nm)\n")
    print("Ours at 180 nm, scaled to 45 nm by (45/180)^2 (classical scaling).\n")
    print("| operation | our unit | cells | ours, 180 nm (um^2) | ours scaled to 45 nm | Horowitz 45 nm | ours / Horowitz |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for op, h_area, _, key in HOROWITZ:
        r = unit(key)
        if not r:
            continue
        scaled = float(r["area_um2"]) * AREA_180_TO_45
        print("| %s | `%s %s` | %s | %s | %.0f | %d | %.2f |" % (
            op, key[0], " ".join(k for k in key[1:] if k), r["cells"], r["area_um2"], scaled, h_area,
            scaled / h_area))

    if energy:
        print("\n### Energy per MAC (gate-level, fmnist_cnn conv2 operands)\n")
        print("pJ per MAC at 180 nm, 1.8 V; `datapath` is the combinational logic, `regs` the flip-flops' "
              "data and clock energy. The datapath is scaled to 45 nm / 0.9 V by 1/16 (classical: L V^2) "
              "beside Horowitz's multiply + add at 45 nm where he gives both.\n")
        print("| PE | cells | area (um^2) | total | datapath | regs (data + clock) | glitch factor | "
              "datapath scaled to 45 nm | Horowitz mult + add, 45 nm |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        horowitz_mac = {"fp16_fp32": 1.1 + 0.9, "int8_int32": 0.2 + 0.1, "bf16_fp32": None, "e4m3_fp32": None}
        for name in sorted(energy):
            r = energy[name]
            fmt = "%s x %s -> %s -> %s" % (r["operand"], r["operand"], r["product"] or "exact", r["accumulator"])
            h = horowitz_mac.get(name)
            print("| %s (`%s`) | %s | %s | %s | %s | %.3f | %s | %.2f | %s |" % (
                name, fmt, r["cells"], r["area_um2"], r["pj_per_mac"], r["comb_pj_per_mac"],
                float(r["flop_pj_per_mac"]) + float(r["clock_pj_per_mac"]), r["glitch_factor"],
                float(r["comb_pj_per_mac"]) * ENERGY_180_TO_45, "%.2f" % h if h else "—"))

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
            print("\n### Accumulator adder area (um^2, 180 nm), MxEy + MxEy, %s\n" % title)
            print("| | E3 | E4 | E5 | E6 | E7 | E8 |")
            print("|---|---:|---:|---:|---:|---:|---:|")
            print("\n".join(rows))


if __name__ == "__main__":
    main()
