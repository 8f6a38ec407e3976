#!/usr/bin/python3
"""The exponent-bias table of docs/run.md: `accsim run` on the shipped ResNet
trace with the default configuration's product bias B and accumulator bias
B - 2 (the paper's rule for chunks of 16), for B around the default 6.

  scripts/bias_table.py [--accsim build/release/sim/accsim]        # print
  scripts/bias_table.py --write docs/run.md   # replace the generated block there
"""

import argparse
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
from doctools import DEFAULT_ACCSIM, accsim_report, replace_block  # noqa: E402

BIASES = [4, 5, 6, 7, 8]
DEFAULT = 6


def rate(count, ops):
    if ops == 0 or count == 0:
        return "0"
    p = 100.0 * count / ops
    return ("%.2g%%" % p) if p >= 0.001 else ("%.1e%%" % p)


def run(accsim, b):
    return accsim_report(accsim, ["run", "--prod", "M7E4,bias=%d,round=rtz,ftz" % b,
                                  "--acc", "M7E4,bias=%d,round=rtz,ftz" % (b - 2), "--energy-samples", "0"])


def table(accsim):
    rows = []
    fp32 = None
    for b in BIASES:
        j = run(accsim, b)
        fp32 = j["accuracy"]["fp32"]["top1"]
        low = j["accuracy"]["lowbit"]
        tot = {k: 0 for k in ("p_ops", "p_ovf", "p_unf", "a_ops", "a_ovf", "a_unf", "a_swamp")}
        for layer in j["layers"]:
            ev = layer["events"]
            tot["p_ops"] += ev["product"]["ops"]
            tot["p_ovf"] += ev["product"]["overflow"]
            tot["p_unf"] += ev["product"]["underflow"]
            for part in ("accumulate", "merge"):
                tot["a_ops"] += ev[part]["ops"]
                tot["a_ovf"] += ev[part]["overflow"]
                tot["a_unf"] += ev[part]["underflow"]
                tot["a_swamp"] += ev[part]["swamp"]
        rows.append("| %s | %d | %.2f%% (%+.2f) | %.2f%% | %s | %s | %s | %s | %s |" % (
            "%d **(default)**" % b if b == DEFAULT else str(b), b - 2, 100 * low["top1"],
            100 * (low["top1"] - fp32), 100 * low["agreement_with_fp32"], rate(tot["p_ovf"], tot["p_ops"]),
            rate(tot["p_unf"], tot["p_ops"]), rate(tot["a_ovf"], tot["a_ops"]), rate(tot["a_unf"], tot["a_ops"]),
            rate(tot["a_swamp"], tot["a_ops"])))
    head = ("| b_prod | b_acc | low-bit top-1 (Δ vs FP32 %.2f%%) | agrees with FP32 | products overflowed | "
            "products flushed | sums overflowed | sums flushed | sums swamped |\n"
            "|---|---|---|---|---|---|---|---|---|\n" % (100 * fp32))
    return head + "\n".join(rows) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accsim", default=DEFAULT_ACCSIM)
    ap.add_argument("--write", metavar="DOC")
    args = ap.parse_args()
    body = table(args.accsim)
    if args.write:
        replace_block(args.write, "bias_table.py", body)
    else:
        sys.stdout.write(body)


if __name__ == "__main__":
    main()
