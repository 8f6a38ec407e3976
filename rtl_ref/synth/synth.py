#!/usr/bin/python3
"""Synthesizes rtl_ref/ units with Yosys and maps them onto the OSU 0.18 um
standard cells (Debian's qflow-tech-osu018) with abc; reports cells and
area in um^2 and keeps the area table rtl_ref/area/units.csv.

  synth.py unit acc 'M7E4,bias=10,round=rtz,ftz' 'M7E4,bias=12,round=rtz,ftz'
  synth.py unit mul e4m3 [--netlist out.v] [--row]
  synth.py grid [--only named|configs|acc_rne|acc_rtz_ftz] [--time-budget 1200]
  synth.py check          # CTest: re-synthesize two small units, compare with the table

Units (what each row of the table is):
  acc        ACC [ADDEND]         fp_add: ADDEND encoding (default: ACC's format) + acc, rounded once
  acc_fused  OPERAND ACC          fp_acc: the exact product of two OPERANDs + acc
  mul        OPERAND              fp_mul: exact product (no rounding)
  mul_round  OPERAND PRODUCT      fp_mul_round: product rounded into PRODUCT
  pe         OPERAND PRODUCT ACC  pe: registers + multiplier + adder (PRODUCT `exact`: fused)
  int_mul    OPERAND PRODUCT      int_mul
  int_acc    ACC ADDEND           int_acc
  int_pe     OPERAND ACC          int_pe (exact 2N-bit product)

Formats are accsim format strings; rtl_format_params (built with the
project) turns them into RTL parameters exactly as accsim::num does.
Only /usr/bin/python3's standard library is used.
"""

import argparse
import csv
import datetime
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RTL_REF = os.path.dirname(HERE)
RTL = os.path.join(RTL_REF, "rtl")
REPO = os.path.dirname(RTL_REF)
TABLE = os.path.join(RTL_REF, "area", "units.csv")
LIBERTY = "/usr/share/qflow/tech/osu018/osu018_stdcells.lib"
SOURCES = ["fp_decode.sv", "round_pack.sv", "fp_mul.sv", "fp_mul_round.sv", "fp_acc.sv", "fp_add.sv",
           "pe.sv", "int_mul.sv", "int_acc.sv", "int_pe.sv"]
COLUMNS = ["unit", "operand", "product", "accumulator", "top", "cells", "flops", "area_um2",
           "flop_area_um2", "cell_counts"]
SKIP = 77  # CTest SKIP_RETURN_CODE

# The two small units `check` re-synthesizes.
CHECK_UNITS = [("acc", "", "", "M2E3"),
               ("acc", "", "M7E4,bias=12,round=rtz,ftz", "M7E4,bias=10,round=rtz,ftz")]


def die(msg, code=2):
    print("synth.py: " + msg, file=sys.stderr)
    sys.exit(code)


def find_params_tool(explicit):
    if explicit:
        return explicit
    for build in sorted(os.listdir(os.path.join(REPO, "build"))) if os.path.isdir(os.path.join(REPO, "build")) else []:
        cand = os.path.join(REPO, "build", build, "rtl_ref", "rtl_format_params")
        if os.access(cand, os.X_OK):
            return cand
    die("rtl_format_params not found; build it (ninja -C BUILD rtl_format_params) or pass --params-tool")


class Formats:
    """Format string -> parameters, through rtl_format_params (cached)."""

    def __init__(self, tool):
        self.tool = tool
        self.cache = {}

    def get(self, text):
        if text not in self.cache:
            r = subprocess.run([self.tool, text], capture_output=True, text=True)
            if r.returncode != 0:
                die(r.stderr.strip() or "bad format " + text)
            fields = dict(kv.split("=", 1) for kv in r.stdout.split(" ") if "=" in kv)
            # format= itself contains '=' and ','; take it from the line's start.
            fields["format"] = r.stdout.split(" kind=")[0][len("format="):]
            self.cache[text] = {k: (v.strip() if k in ("format", "kind") else int(v)) for k, v in fields.items()}
        return self.cache[text]


def float_params(f, prefix, full):
    p = {prefix + "EXP_W": f["EXP_W"], prefix + "MAN_W": f["MAN_W"], prefix + "BIAS": f["BIAS"],
         prefix + "SPECIALS": f["SPECIALS"]}
    if full:
        p.update({prefix + "ROUND": f["ROUND"], prefix + "SUBNORMALS": f["SUBNORMALS"],
                  prefix + "SATURATE": f["SATURATE"]})
    return p


def prod_xw(e, bias):
    """`FP_PROD_XW of fp_defs.svh."""
    lo, hi = 2 * (1 - bias) + 1, 2 * ((1 << e) - 1 - bias) + 1
    m = max(-lo, hi + 1)
    return (m - 1).bit_length() + 1


def elaborate(fmts, unit, operand, product, accumulator):
    """(top module, parameters, canonical row key) of a unit."""
    F = fmts.get
    canon = lambda s: F(s)["format"] if s and s != "exact" else s
    if unit == "acc":
        acc = F(accumulator)
        add = F(product) if product else acc
        params = float_params(acc, "ACC_", True)
        params.update(float_params(add, "ADD_", False))
        return "fp_add", params, (unit, "", canon(product) if product else "", canon(accumulator))
    if unit == "acc_fused":
        a, acc = F(operand), F(accumulator)
        params = float_params(acc, "ACC_", True)
        params.update({"ADD_SIG_W": 2 * (a["MAN_W"] + 1), "ADD_EXP_W": prod_xw(a["EXP_W"], a["BIAS"])})
        return "fp_acc", params, (unit, canon(operand), "", canon(accumulator))
    if unit == "mul":
        return "fp_mul", float_params(F(operand), "", False), (unit, canon(operand), "", "")
    if unit == "mul_round":
        params = float_params(F(operand), "A_", False)
        params.update(float_params(F(product), "P_", True))
        return "fp_mul_round", params, (unit, canon(operand), canon(product), "")
    if unit == "pe":
        params = float_params(F(operand), "A_", False)
        if product == "exact":
            params["PRODUCT_ROUNDED"] = 0
            params.update(float_params(F(accumulator), "P_", True))  # unused, any valid format
        else:
            params["PRODUCT_ROUNDED"] = 1
            params.update(float_params(F(product), "P_", True))
        params.update(float_params(F(accumulator), "ACC_", True))
        return "pe", params, (unit, canon(operand), canon(product), canon(accumulator))
    if unit == "int_mul":
        a, p = F(operand), F(product)
        return "int_mul", {"IN_W": a["BITS"], "OUT_W": p["BITS"], "SATURATE": p["SATURATE"]}, \
            (unit, canon(operand), canon(product), "")
    if unit == "int_acc":
        acc, add = F(accumulator), F(product)
        return "int_acc", {"ACC_W": acc["BITS"], "ADD_W": add["BITS"], "SATURATE": acc["SATURATE"]}, \
            (unit, "", canon(product), canon(accumulator))
    if unit == "int_pe":
        a, acc = F(operand), F(accumulator)
        return "int_pe", {"IN_W": a["BITS"], "PROD_W": 2 * a["BITS"], "ACC_W": acc["BITS"],
                          "SATURATE": acc["SATURATE"]}, (unit, canon(operand), "", canon(accumulator))
    die("unknown unit " + unit)


def yosys_version(yosys):
    return subprocess.run([yosys, "-V"], capture_output=True, text=True).stdout.strip()


def synthesize(yosys, top, params, netlist=None):
    """Runs the flow; returns {cells, flops, area_um2, flop_area_um2, cell_counts}."""
    chparams = " ".join("-chparam %s %d" % (k, v) for k, v in sorted(params.items()))
    files = " ".join(os.path.join(RTL, s) for s in SOURCES)
    with tempfile.TemporaryDirectory() as tmp:
        stat = os.path.join(tmp, "stat.txt")
        script = [
            "read_verilog -sv -I%s %s" % (RTL, files),
            "hierarchy -check -top %s %s" % (top, chparams),
            "synth -flatten -top %s" % top,
            "dfflibmap -liberty %s" % LIBERTY,
            "abc -liberty %s" % LIBERTY,
            "opt_clean -purge",
            "tee -q -o %s stat -liberty %s" % (stat, LIBERTY),
        ]
        if netlist:
            script.append("write_verilog -noattr -noexpr %s" % netlist)
        # Yosys keeps a command history in $HOME/.yosys_history even with -p;
        # give it the scratch directory as its home, so that neither a
        # developer's grid run nor accsim's synthesis on demand writes there.
        env = dict(os.environ, HOME=tmp)
        r = subprocess.run([yosys, "-q", "-p", "; ".join(script)], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            die("yosys failed on %s %s:\n%s" % (top, params, (r.stdout + r.stderr)[-3000:]))
        text = open(stat).read()
    area = float(re.search(r"Chip area for module .*: ([0-9.]+)", text).group(1))
    counts = {}
    for m in re.finditer(r"^\s+([A-Z][A-Z0-9]+)\s+(\d+)\s*$", text, re.M):
        counts[m.group(1)] = int(m.group(2))
    cell_area = liberty_areas()
    flops = sum(n for c, n in counts.items() if c.startswith("DFF") or c == "LATCH")
    flop_area = sum(n * cell_area[c] for c, n in counts.items() if c.startswith("DFF") or c == "LATCH")
    return {"cells": sum(counts.values()), "flops": flops, "area_um2": "%.1f" % area,
            "flop_area_um2": "%.1f" % flop_area,
            "cell_counts": ";".join("%s:%d" % (c, n) for c, n in sorted(counts.items()))}


_AREAS = None


def liberty_areas():
    global _AREAS
    if _AREAS is None:
        _AREAS = {}
        cell = None
        for line in open(LIBERTY):
            m = re.match(r"\s*cell\s*\((\w+)\)", line)
            if m:
                cell = m.group(1)
            m = re.match(r"\s*area\s*:\s*([0-9.]+)", line)
            if m and cell and cell not in _AREAS:
                _AREAS[cell] = float(m.group(1))
    return _AREAS


# --- the table -----------------------------------------------------------------

def read_table(path):
    rows, header = {}, []
    if not os.path.exists(path):
        return rows, header
    lines = open(path).read().splitlines()
    header = [l for l in lines if l.startswith("#")]
    for row in csv.DictReader(l for l in lines if not l.startswith("#")):
        rows[(row["unit"], row["operand"], row["product"], row["accumulator"])] = row
    return rows, header


def write_table(path, rows, command, version):
    out = io.StringIO()
    out.write("# Area of rtl_ref/ units: Yosys synth + abc onto OSU 0.18um standard cells\n")
    out.write("# (%s), areas in um^2 at 180 nm as the Liberty gives them;\n" % LIBERTY)
    out.write("# cells counts every mapped cell, flops the flip-flops among them.\n")
    out.write("# Generated by rtl_ref/synth/synth.py; do not edit. Regenerate or extend with\n")
    out.write("#   rtl_ref/synth/synth.py grid   (resumable: keeps finished rows; --redo starts over)\n")
    out.write("# Last run: %s\n" % command)
    out.write("# Tool: %s. Rows: see rtl_ref/synth/synth.py for what each unit is.\n" % version)
    w = csv.DictWriter(out, COLUMNS, lineterminator="\n")
    w.writeheader()
    for key in sorted(rows):
        w.writerow({c: rows[key][c] for c in COLUMNS})
    tmp = path + ".tmp"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(tmp, "w") as f:
        f.write(out.getvalue())
    os.replace(tmp, path)


def named_units():
    paper_acc, paper_prod = "M7E4,bias=10,round=rtz,ftz", "M7E4,bias=12,round=rtz,ftz"
    units = [
        ("acc", "", paper_prod, paper_acc),
        ("acc", "", "", paper_acc),
        ("acc", "", "", "fp32"), ("acc", "", "", "fp16"), ("acc", "", "", "bf16"),
        ("acc", "", "", "fp32,round=rtz,ftz"), ("acc", "", "", "M10E5"), ("acc", "", "", "M23E8"),
        ("acc_fused", "e4m3", "", paper_acc), ("acc_fused", "e4m3", "", "fp32"),
        ("acc_fused", "e4m3", "", "fp16"), ("acc_fused", "e4m3", "", "bf16"), ("acc_fused", "e4m3", "", "M10E5"),
        ("acc_fused", "bf16", "", "fp32"), ("acc_fused", "fp16", "", "fp32"),
        ("mul", "e4m3", "", ""), ("mul", "e5m2", "", ""), ("mul", "e3m4", "", ""),
        ("mul", "bf16", "", ""), ("mul", "fp16", "", ""), ("mul", "fp32", "", ""),
        ("mul_round", "e4m3", paper_prod, ""), ("mul_round", "fp16", "fp16", ""),
        ("mul_round", "fp32", "fp32", ""), ("mul_round", "bf16", "bf16", ""),
        ("int_mul", "int8", "int16", ""), ("int_mul", "int16", "int32", ""), ("int_mul", "int32", "int32", ""),
        ("int_acc", "", "int32", "int32"), ("int_acc", "", "int16", "int32"), ("int_acc", "", "int8", "int8"),
        ("int_acc", "", "int16", "int16"), ("int_acc", "", "int32", "int32,sat"),
        ("pe", "e4m3", paper_prod, paper_acc), ("pe", "e4m3", "exact", paper_acc),
        ("pe", "e4m3", "exact", "fp32"), ("pe", "e4m3", "exact", "fp16"), ("pe", "e4m3", "exact", "bf16"),
        ("pe", "e4m3", "exact", "M10E5"), ("pe", "bf16", "exact", "fp32"), ("pe", "fp16", "exact", "fp32"),
        ("int_pe", "int8", "", "int32"),
    ]
    return units


# The PE configurations the project itself runs and documents: accsim run's
# default, the bias table and the equivalence of docs/run.md, its per-layer
# example, and docs/zero_shot.md's rows. Their units ship in the table, so
# that the main job and the documented commands never synthesize on demand
# (a CTest runs them with --no-synth). (operand, product or "exact", accumulator).
def shipped_configurations():
    rtz = ",round=rtz,ftz"
    configs = [("e3m4", "M7E4,bias=6" + rtz, "M7E4,bias=4" + rtz),            # accsim run's default
               ("M4E3,bias=6", "M7E4,bias=12" + rtz, "M7E4,bias=10" + rtz),   # the same, paper's biases
               ("e3m4", "M7E4,bias=6" + rtz, "M8E4,bias=4" + rtz)]            # docs/run.md's --layer-config
    configs += [("e3m4", "M7E4,bias=%d" % b + rtz, "M7E4,bias=%d" % (b - 2) + rtz) for b in range(4, 9)]
    # docs/zero_shot.md (scripts/zero_shot_table.py): E5 at the default bias,
    # E4 at b_prod = 6, b_acc = 4; and exact products into M21E5.
    configs += [("e3m4", "M%dE5" % m + rtz, "M%dE5" % m + rtz) for m in range(6, 11)]
    configs += [("e3m4", "M%dE4,bias=6" % m + rtz, "M%dE4,bias=4" % m + rtz) for m in range(1, 8)]
    configs.append(("e3m4", "exact", "M21E5"))
    return configs


def configuration_units(fmts):
    """The units models/cost composes each shipped configuration's PE from
    (models/cost/cost.cpp, pe_units): multiplier and adder."""
    units = []
    for operand, product, accumulator in shipped_configurations():
        if product == "exact":
            units += [("mul", operand, "", ""), ("acc_fused", operand, "", accumulator)]
            continue
        # An adder whose addend is in its own format has an empty addend column.
        same = fmts.get(product)["format"] == fmts.get(accumulator)["format"]
        units += [("mul_round", operand, product, ""), ("acc", "", "" if same else product, accumulator)]
    return units


def grid_units(options):
    return [("acc", "", "", "M%dE%d%s" % (m, e, options)) for e in range(3, 9) for m in range(2, 24)]


def cmd_unit(args):
    fmts = Formats(find_params_tool(args.params_tool))
    unit, fs = args.unit, args.formats
    spec = {"acc": lambda: ("", fs[1] if len(fs) > 1 else "", fs[0]),
            "acc_fused": lambda: (fs[0], "", fs[1]),
            "mul": lambda: (fs[0], "", ""),
            "mul_round": lambda: (fs[0], fs[1], ""),
            "pe": lambda: (fs[0], fs[1], fs[2]),
            "int_mul": lambda: (fs[0], fs[1], ""),
            "int_acc": lambda: ("", fs[1], fs[0]),
            "int_pe": lambda: (fs[0], "", fs[1])}
    if unit not in spec:
        die("unknown unit %s (expected %s)" % (unit, ", ".join(spec)))
    try:
        operand, product, accumulator = spec[unit]()
    except IndexError:
        die("%s needs more formats; see --help" % unit)
    top, params, key = elaborate(fmts, unit, operand, product, accumulator)
    t0 = time.time()
    r = synthesize(args.yosys, top, params, args.netlist)
    if args.row:  # for models/cost, which synthesizes units missing from the table on demand
        w = csv.DictWriter(sys.stdout, COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerow(dict(zip(("unit", "operand", "product", "accumulator"), key), top=top, **r))
        return
    print("%s %s: %d cells (%d flops), %s um^2 [%.1f s]" % (unit, " ".join(k for k in key[1:] if k), r["cells"],
                                                            r["flops"], r["area_um2"], time.time() - t0))
    print("  " + r["cell_counts"])


def cmd_grid(args):
    fmts = Formats(find_params_tool(args.params_tool))
    version = yosys_version(args.yosys)
    rows, _ = read_table(args.out)
    groups = {"named": named_units, "configs": lambda: configuration_units(fmts), "acc_rne": lambda: grid_units(""),
              "acc_rtz_ftz": lambda: grid_units(",round=rtz,ftz")}
    order = args.only or ["named", "configs", "acc_rne", "acc_rtz_ftz"]
    command = "rtl_ref/synth/synth.py grid" + "".join(" --only " + o for o in (args.only or []))
    start = time.time()
    for group in order:
        for unit, operand, product, accumulator in groups[group]():
            top, params, key = elaborate(fmts, unit, operand, product, accumulator)
            if key in rows and not args.redo:
                continue
            if args.time_budget and time.time() - start > args.time_budget:
                print("time budget spent; rerun to continue (finished rows are kept)")
                write_table(args.out, rows, command, version)
                return
            t0 = time.time()
            r = synthesize(args.yosys, top, params)
            row = dict(zip(("unit", "operand", "product", "accumulator"), key), top=top, **r)
            rows[key] = row
            write_table(args.out, rows, command, version)
            print("%-9s %-28s %-28s %-28s %6d cells %10s um^2  [%.1f s]" % (
                key[0], key[1], key[2], key[3], r["cells"], r["area_um2"], time.time() - t0), flush=True)
    write_table(args.out, rows, command, version)


def cmd_check(args):
    fmts = Formats(find_params_tool(args.params_tool))
    rows, header = read_table(TABLE)
    version = yosys_version(args.yosys)
    if not any(version in h for h in header):
        print("SKIP: the table was made with another tool version than %s" % version)
        return SKIP
    bad = 0
    for unit, operand, product, accumulator in CHECK_UNITS:
        top, params, key = elaborate(fmts, unit, operand, product, accumulator)
        if key not in rows:
            print("MISSING from %s: %s" % (TABLE, key))
            bad += 1
            continue
        r = synthesize(args.yosys, top, params)
        want = rows[key]
        same = all(str(r[c]) == want[c] for c in ("cells", "flops", "area_um2", "cell_counts"))
        print("%s %s: %d cells, %s um^2; table: %s cells, %s um^2 -> %s" % (
            key[0], key[3] + (" + " + key[2] if key[2] else ""), r["cells"], r["area_um2"], want["cells"],
            want["area_um2"], "ok" if same else "MISMATCH"))
        bad += not same
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--yosys", default=shutil.which("yosys") or "yosys")
    ap.add_argument("--params-tool", help="path of rtl_format_params (default: found under build/)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("unit", help="synthesize one unit and print its cells and area")
    u.add_argument("unit")
    u.add_argument("formats", nargs="+")
    u.add_argument("--netlist", help="also write the mapped netlist (Verilog) here")
    u.add_argument("--row", action="store_true", help="print the table row (CSV with its header) instead")
    g = sub.add_parser("grid", help="synthesize the table's units (resumable)")
    g.add_argument("--only", action="append", choices=["named", "configs", "acc_rne", "acc_rtz_ftz"])
    g.add_argument("--out", default=TABLE)
    g.add_argument("--redo", action="store_true", help="re-synthesize rows already in the table")
    g.add_argument("--time-budget", type=float, default=0, help="stop starting new units after this many seconds")
    sub.add_parser("check", help="re-synthesize two small units and compare with the table")
    args = ap.parse_args()
    if not os.path.exists(LIBERTY):
        print("SKIP: %s missing (apt-get install qflow-tech-osu018)" % LIBERTY)
        sys.exit(SKIP if args.cmd == "check" else 2)
    if args.cmd == "unit":
        cmd_unit(args)
    elif args.cmd == "grid":
        cmd_grid(args)
    else:
        sys.exit(cmd_check(args))


if __name__ == "__main__":
    main()
