#!/usr/bin/python3
"""The PE cost table of docs/cost.md, from `accsim cost` itself.

For e4m3 multipliers into fp32, fp16, bf16, M10E5 and M7E4 accumulators (the
paper's M7E4 fused, and with its M7E4 product format), and an int8 multiplier
into int32: PE area and its breakdown, the accumulator adder's share, and
energy per MAC, at 45 nm (and 7 nm), each against the e4m3 -> fp32 PE.

  scripts/cost_table.py [--accsim build/release/sim/accsim]             # print
  scripts/cost_table.py --write docs/cost.md   # replace the generated block there
  scripts/cost_table.py --check docs/cost.md   # exit 1 if that block is stale (a CTest)
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
from doctools import DEFAULT_ACCSIM, accsim_report, replace_block  # noqa: E402

PAPER_ACC, PAPER_PROD = "M7E4,bias=10,round=rtz,ftz", "M7E4,bias=12,round=rtz,ftz"
# (label, multiplier, product or None (fused), accumulator)
PES = [
    ("fp32", "e4m3", None, "fp32"),
    ("fp16", "e4m3", None, "fp16"),
    ("bf16", "e4m3", None, "bf16"),
    ("M10E5", "e4m3", None, "M10E5"),
    ("M7E4 (paper's, fused)", "e4m3", None, PAPER_ACC),
    ("M7E4 (paper's, M7E4 products)", "e4m3", PAPER_PROD, PAPER_ACC),
    ("int32", "int8", None, "int32"),
]


def cost(accsim, mul, prod, acc, node):
    args = ["cost", "--mul", mul, "--acc", acc, "--node", str(node), "--no-synth"]
    return accsim_report(accsim, args + (["--prod", prod] if prod else []))


def table(accsim):
    rows = []
    for label, mul, prod, acc in PES:
        rows.append((label, mul, prod, acc, cost(accsim, mul, prod, acc, 45), cost(accsim, mul, prod, acc, 7)))
    base45 = rows[0][4]
    out = []
    out.append("| accumulator | multiplier | PE area, 45 nm (um^2) | adder | multiplier | registers | "
               "area vs fp32 | energy/MAC, 45 nm (pJ) | energy vs fp32 | PE area, 7 nm (um^2) | "
               "energy/MAC, 7 nm (pJ) | energy from |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for label, mul, prod, acc, r45, r7 in rows:
        a, e = r45["pe_area_um2"], r45["pe_energy_per_mac_pj"]
        total = a["total"]
        share = lambda part: "%.0f%%" % (100 * part / total)
        out.append("| %s | %s | %.0f | %s | %s | %s | %.2f | %.2f | %.2f | %.1f | %.3f | %s |" % (
            label, mul, total, share(a["adder"]["um2"]), share(a["multiplier"]["um2"]),
            share(a["registers"]["um2"]), total / base45["pe_area_um2"]["total"], e["total"],
            e["total"] / base45["pe_energy_per_mac_pj"]["total"], r7["pe_area_um2"]["total"],
            r7["pe_energy_per_mac_pj"]["total"], "gate-level" if e["characterized"] else "estimated"))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accsim", default=DEFAULT_ACCSIM)
    ap.add_argument("--write", metavar="DOC")
    ap.add_argument("--check", metavar="DOC")
    args = ap.parse_args()
    body = table(args.accsim)
    if args.write or args.check:
        replace_block(args.write or args.check, "cost_table.py", body, check=bool(args.check))
    else:
        sys.stdout.write(body)


if __name__ == "__main__":
    main()
