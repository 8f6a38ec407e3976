#!/usr/bin/python3
"""Gate-level energy per operation of rtl_ref/ processing elements.

For each PE configuration:
  1. synthesize it (synth/synth.py's flow: Yosys + abc onto OSU 0.18 um) and
     write the mapped netlist;
  2. build an operand stream from a shipped trace: the dot products of
     fmnist_cnn's second convolution (K = 16 x 3 x 3 = 144 terms), weights
     from model.onnx and input activations computed from inputs.npy through
     conv1, ReLU and max-pool (torch), quantized into the operand format;
  3. simulate the netlist in Icarus Verilog with the OSU Verilog cell models
     (their specify delays on: glitches count), counting every transition of
     every net;
  4. energy = sum over cell outputs of transitions x (Liberty internal
     energy at the net's load + 1/2 C V^2), plus input-pin internal energy
     (flip-flop D pins), plus the clock (every flop's CLK internal energy and
     pin capacitance, every cycle), plus leakage over the run.
The same netlist is also simulated without delays: its outputs must match
the timed run (else the clock is too fast) and its toggle count gives the
glitch-free figure.

  energy.py [--only NAME] [--macs N] [--period-ns 40]   -> rtl_ref/area/energy.csv

Only /usr/bin/python3 with numpy, torch and onnx (Debian packages) is needed.
"""

import argparse
import csv
import io
import math
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RTL_REF = os.path.dirname(HERE)
REPO = os.path.dirname(RTL_REF)
sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.join(RTL_REF, "synth"))
import synth  # noqa: E402

CELLS_V = "/usr/share/qflow/tech/osu018/osu018_stdcells.v"
OUT = os.path.join(RTL_REF, "area", "energy.csv")
UNIT_OUT = os.path.join(RTL_REF, "area", "unit_energy.csv")
K_TERMS = 144  # conv2's dot-product length, 16 x 3 x 3
ARGS = None
VDD = 1.8  # V, the Liberty's nominal voltage
SLEW_NS = 0.1  # input transition at which internal energies are read

PAPER_ACC, PAPER_PROD = "M7E4,bias=10,round=rtz,ftz", "M7E4,bias=12,round=rtz,ftz"
# name: (unit, operand, product ("exact": fused), accumulator)
CONFIGS = {
    "paper": ("pe", "e4m3", PAPER_PROD, PAPER_ACC),
    "e4m3_fused_m7e4": ("pe", "e4m3", "exact", PAPER_ACC),
    "e4m3_fp16": ("pe", "e4m3", "exact", "fp16"),
    "e4m3_fp32": ("pe", "e4m3", "exact", "fp32"),
    "e4m3_bf16": ("pe", "e4m3", "exact", "bf16"),
    "e4m3_m10e5": ("pe", "e4m3", "exact", "M10E5"),
    "bf16_fp32": ("pe", "bf16", "exact", "fp32"),
    "fp16_fp32": ("pe", "fp16", "exact", "fp32"),
    "int8_int32": ("int_pe", "int8", "", "int32"),
}


# --- Liberty ---------------------------------------------------------------------

def parse_liberty(path):
    """Nested groups as dicts: {'attrs': {...}, 'groups': [(kind, arg, group)]}."""
    text = open(path).read().replace("\\\n", " ")
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    tokens = re.findall(r'"[^"]*"|[A-Za-z_][\w.\-]*|-?[0-9.]+(?:[eE][-+]?\d+)?|[{}();:,]', text)
    pos = 0

    def group():
        nonlocal pos
        g = {"attrs": {}, "groups": []}
        while pos < len(tokens) and tokens[pos] != "}":
            name = tokens[pos]
            pos += 1
            if tokens[pos] == ":":
                pos += 1
                vals = []
                while tokens[pos] != ";":
                    vals.append(tokens[pos])
                    pos += 1
                pos += 1
                g["attrs"][name] = " ".join(vals).strip('"')
            elif tokens[pos] == "(":
                pos += 1
                args = []
                while tokens[pos] != ")":
                    if tokens[pos] != ",":
                        args.append(tokens[pos].strip('"'))
                    pos += 1
                pos += 1
                if pos < len(tokens) and tokens[pos] == "{":
                    pos += 1
                    sub = group()
                    pos += 1  # }
                    g["groups"].append((name, args[0] if args else "", sub))
                else:
                    if pos < len(tokens) and tokens[pos] == ";":
                        pos += 1
                    g["attrs"][name] = args
            else:
                pos += 1
        return g

    return group()


def table(g):
    """(index_1, index_2, values) of a power table group."""
    def floats(v):
        items = v if isinstance(v, list) else [v]
        return [float(x) for s in items for x in str(s).replace(",", " ").split()]
    i1 = floats(g["attrs"].get("index_1", ["0"]))
    i2 = floats(g["attrs"]["index_2"]) if "index_2" in g["attrs"] else None
    vals = floats(g["attrs"]["values"])
    return i1, i2, vals


def lookup(tbl, x1, x2=None):
    """Bilinear interpolation, clamped to the table's range."""
    i1, i2, vals = tbl

    def bracket(idx, x):
        if len(idx) == 1:
            return 0, 0, 0.0
        x = min(max(x, idx[0]), idx[-1])
        for k in range(len(idx) - 1):
            if x <= idx[k + 1]:
                return k, k + 1, (x - idx[k]) / (idx[k + 1] - idx[k])
        return len(idx) - 2, len(idx) - 1, 1.0

    if i2 is None:
        a, b, t = bracket(i1, x1)
        return vals[a] * (1 - t) + vals[b] * t
    a, b, t = bracket(i1, x1)
    c, d, u = bracket(i2, x2)
    n2 = len(i2)
    v = lambda r, s: vals[r * n2 + s]
    return (v(a, c) * (1 - t) * (1 - u) + v(b, c) * t * (1 - u) + v(a, d) * (1 - t) * u + v(b, d) * t * u)


class Library:
    def __init__(self, path):
        lib = parse_liberty(path)
        root = lib["groups"][0][2]
        self.cells = {}
        for kind, name, cell in root["groups"]:
            if kind != "cell":
                continue
            c = {"area": float(cell["attrs"].get("area", 0)),
                 "leakage_nw": float(cell["attrs"].get("cell_leakage_power", 0)),
                 "inputs": {}, "outputs": {}}
            for pk, pname, pin in cell["groups"]:
                if pk != "pin":
                    continue
                direction = pin["attrs"].get("direction")
                powers = [sub for k, _, sub in pin["groups"] if k == "internal_power"]
                if direction == "input":
                    passive = None
                    for p in powers:
                        if "related_pin" in p["attrs"]:
                            continue
                        rise = [table(s) for k, _, s in p["groups"] if k == "rise_power"]
                        fall = [table(s) for k, _, s in p["groups"] if k == "fall_power"]
                        passive = (rise[0] if rise else None, fall[0] if fall else None)
                    c["inputs"][pname] = {"cap": float(pin["attrs"].get("capacitance", 0)), "passive": passive}
                else:
                    arcs = []
                    for p in powers:
                        rise = [table(s) for k, _, s in p["groups"] if k == "rise_power"]
                        fall = [table(s) for k, _, s in p["groups"] if k == "fall_power"]
                        arcs.append((rise[0] if rise else None, fall[0] if fall else None))
                    c["outputs"][pname] = arcs
            self.cells[name] = c

    def output_energy_pj(self, cell, pin, load_pf):
        """Mean energy of one output transition: internal + 1/2 C V^2."""
        arcs = self.cells[cell]["outputs"][pin]
        internal = []
        for rise, fall in arcs:
            vals = [lookup(t, load_pf, SLEW_NS) for t in (rise, fall) if t is not None]
            if vals:
                internal.append(sum(vals) / len(vals))
        e_int = sum(internal) / len(internal) if internal else 0.0
        return e_int + 0.5 * load_pf * VDD * VDD

    def input_energy_pj(self, cell, pin):
        passive = self.cells[cell]["inputs"][pin]["passive"]
        if not passive:
            return 0.0
        vals = [lookup(t, SLEW_NS) for t in passive if t is not None]
        return sum(vals) / len(vals) if vals else 0.0


# --- netlist ----------------------------------------------------------------------

INST_RE = re.compile(r"^\s*([A-Z][A-Z0-9]*)\s+(\S+)\s*\((.*?)\);", re.S | re.M)
PIN_RE = re.compile(r"\.(\w+)\(\s*([^()]*?)\s*\)")


def parse_netlist(text, lib):
    cells = []
    for m in INST_RE.finditer(text):
        ctype = m.group(1)
        if ctype not in lib.cells:
            continue
        # An escaped identifier ends at whitespace: keep one after it.
        pins = {p: (n + " " if n.startswith("\\") and " " not in n else n) for p, n in PIN_RE.findall(m.group(3))}
        cells.append((ctype, m.group(2), pins))
    return cells


def is_net(expr):
    return expr and not re.match(r"^\d+'[hbd]", expr) and not expr.startswith("{")


# --- operand stream from the shipped trace -----------------------------------------

def conv2_stream(n_dots, seed=0):
    """(weights, activations) rows of fmnist_cnn's conv2 dot products, float."""
    import numpy as np
    import onnx
    import torch
    from onnx import numpy_helper
    trace = os.path.join(REPO, "traces", "fmnist_cnn")
    model = onnx.load(os.path.join(trace, "model.onnx"))
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    w1, b1 = init[convs[0].input[1]], init[convs[0].input[2]]
    w2 = init[convs[1].input[1]]
    pads1 = [a.ints for a in convs[0].attribute if a.name == "pads"][0]
    pads2 = [a.ints for a in convs[1].attribute if a.name == "pads"][0]
    x = np.array(np.load(os.path.join(trace, "inputs.npy"))[:4])
    with torch.no_grad():
        h = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w1), torch.from_numpy(b1),
                                       padding=pads1[0])
        h = torch.nn.functional.max_pool2d(torch.relu(h), 2)
        cols = torch.nn.functional.unfold(h, 3, padding=pads2[0])  # [N, 144, L]
    cols = cols.permute(0, 2, 1).reshape(-1, cols.shape[1]).numpy()
    wrows = w2.reshape(w2.shape[0], -1)
    rng = np.random.default_rng(seed)
    pick_c = rng.integers(0, cols.shape[0], n_dots)
    pick_w = rng.integers(0, wrows.shape[0], n_dots)
    return wrows[pick_w], cols[pick_c]


def quantize_float(x, exp_bits, man_bits, bias, specials):
    """Nearest-even, subnormals, saturating: encodings of a numpy array."""
    import numpy as np
    emin = 1 - bias
    top_field = (1 << exp_bits) - (2 if specials == 1 else 1)
    max_frac = (1 << man_bits) - (2 if specials == 2 else 1)
    max_val = (1 + max_frac / (1 << man_bits)) * 2.0 ** (top_field - bias)
    mag = np.minimum(np.abs(x.astype(np.float64)), max_val)
    e = np.floor(np.log2(np.where(mag > 0, mag, 1.0)))
    e = np.maximum(e, emin)
    ulp = 2.0 ** (e - man_bits)
    q = np.round(mag / ulp) * ulp  # numpy rounds half to even
    q = np.minimum(q, max_val)
    out = np.zeros(x.shape, dtype=np.uint64)
    for i, (v, s) in enumerate(zip(q.ravel(), np.signbit(x).ravel())):
        if v == 0:
            bits = 0
        elif v < 2.0 ** emin:
            bits = int(round(v / 2.0 ** (emin - man_bits)))
        else:
            ev = math.floor(math.log2(v))
            frac = int(round((v / 2.0 ** ev - 1) * (1 << man_bits)))
            bits = ((ev + bias) << man_bits) | frac
        out.ravel()[i] = bits | (int(s) << (exp_bits + man_bits))
    return out


def operands(fmts, operand, n_dots):
    """Encodings (a = weights, b = activations) and the per-tensor scales."""
    import numpy as np
    w, x = conv2_stream(n_dots)
    f = fmts.get(operand)
    if f["kind"] == "int":
        qmax = (1 << (f["BITS"] - 1)) - 1
        enc = lambda t: (np.round(t * (qmax / np.abs(t).max())).astype(np.int64) & ((1 << f["BITS"]) - 1)).astype(np.uint64)
        return enc(w), enc(x)
    # Power-of-two scale per tensor: the largest magnitude lands in the top
    # binade below the format's maximum.
    top = (1 << f["EXP_W"]) - (2 if f["SPECIALS"] == 1 else 1) - f["BIAS"]
    enc = lambda t: quantize_float(t * 2.0 ** (top - math.ceil(math.log2(np.abs(t).max()))),
                                   f["EXP_W"], f["MAN_W"], f["BIAS"], f["SPECIALS"])
    return enc(w), enc(x)


# --- simulation ---------------------------------------------------------------------

def instrument(netlist, top, cells, inputs):
    """Adds a transition counter on every net to the top module."""
    nets = []
    seen = set()
    for _, _, pins in cells:
        for n in pins.values():
            if is_net(n) and n not in seen:
                seen.add(n)
                nets.append(n)
    for n in inputs:
        if n not in seen:
            seen.add(n)
            nets.append(n)
    n = len(nets)
    # __cnt: every transition (with delays: glitches too). __fcnt: settled
    # changes, sampled once a cycle when the TB fires __sample.
    lines = ["  integer __cnt [0:%d];" % (n - 1), "  integer __fcnt [0:%d];" % (n - 1),
             "  reg __prev [0:%d];" % (n - 1), "  reg __counting;", "  integer __k;", "  event __sample;",
             "  initial begin __counting = 0; for (__k = 0; __k < %d; __k = __k + 1) begin __cnt[__k] = 0; "
             "__fcnt[__k] = 0; __prev[__k] = 0; end end" % n]
    for k, net in enumerate(nets):
        lines.append("  always @(%s) if (__counting) __cnt[%d] = __cnt[%d] + 1;" % (net, k, k))
    lines.append("  always @(__sample) begin")
    for k, net in enumerate(nets):
        lines.append("    if (__counting && %s !== __prev[%d]) __fcnt[%d] = __fcnt[%d] + 1; __prev[%d] = %s;"
                     % (net, k, k, k, k, net))
    lines.append("  end")
    lines.append("  task __dump(input integer f); integer i; begin for (i = 0; i < %d; i = i + 1) "
                 "$fdisplay(f, \"%%0d %%0d\", __cnt[i], __fcnt[i]); end endtask" % n)
    # Insert before the top module's endmodule.
    m = re.search(r"module\s+%s\s*\(.*?endmodule" % re.escape(top), netlist, re.S)
    if not m:
        m = re.search(r"module\s+\S*%s\S*\s*\(.*?endmodule" % re.escape(top), netlist, re.S)
    end = m.end() - len("endmodule")
    return netlist[:end] + "\n".join(lines) + "\n" + netlist[end:], nets, netlist[m.start():m.end()]


def testbench(top_name, is_int, a_w, acc_w, n_cycles, period_ns):
    ports = [".clk(clk)", ".rst_n(rst_n)", ".in_valid(in_valid)", ".in_clear(in_clear)", ".a(a)", ".b(b)",
             ".a_out(a_out)", ".b_out(b_out)", ".out_valid(out_valid)", ".acc(acc)", ".acc_events(acc_events)"]
    if not is_int:
        ports += [".sr_prod(32'd0)", ".sr_acc(32'd0)", ".prod_events(prod_events)"]
    return """`timescale 1ns/10ps
module tb;
  reg clk = 0, rst_n = 0, in_valid = 0, in_clear = 0;
  reg [{aw}-1:0] a = 0, b = 0;
  wire [{aw}-1:0] a_out, b_out;
  wire out_valid;
  wire [{accw}-1:0] acc;
  wire [4:0] acc_events, prod_events;
  reg [2*{aw}+1:0] stim [0:{n}-1];
  integer i, f;
  {top} dut ({ports});
  always #{half} clk = ~clk;
  // Settled values, just before each rising edge.
  always @(negedge clk) begin #({half} - 0.5); -> dut.__sample; end
  initial begin
    $readmemh("stim.hex", stim);
    f = $fopen("outputs.txt");
    repeat (3) @(negedge clk);
    rst_n = 1;
    @(negedge clk);
    dut.__counting = 1;
    for (i = 0; i < {n}; i = i + 1) begin
      {{in_clear, in_valid, a, b}} = stim[i];
      @(negedge clk);
      if (out_valid) $fdisplay(f, "%h %h", acc, acc_events);
    end
    in_valid = 0;
    repeat (4) begin @(negedge clk); if (out_valid) $fdisplay(f, "%h %h", acc, acc_events); end
    dut.__counting = 0;
    $fclose(f);
    f = $fopen("counts.txt");
    dut.__dump(f);
    $fclose(f);
    $finish;
  end
endmodule
""".format(aw=a_w, accw=acc_w, n=n_cycles, top=top_name, half=period_ns / 2, ports=", ".join(ports))


def simulate(workdir, netlist_file, tb_file, timed):
    exe = os.path.join(workdir, "sim_timed" if timed else "sim_zero")
    flags = ["-gspecify"] if timed else []
    r = subprocess.run(["iverilog", "-g2005", *flags, "-o", exe, "-s", "tb", CELLS_V, netlist_file, tb_file],
                       capture_output=True, text=True, cwd=workdir)
    if r.returncode != 0:
        sys.exit("iverilog failed:\n" + r.stderr[-3000:])
    r = subprocess.run(["vvp", "-n", exe], capture_output=True, text=True, cwd=workdir)
    if r.returncode != 0:
        sys.exit("vvp failed:\n" + r.stdout[-2000:] + r.stderr[-2000:])
    counts = [tuple(int(v) for v in l.split()) for l in open(os.path.join(workdir, "counts.txt"))]
    outputs = open(os.path.join(workdir, "outputs.txt")).read()
    return counts, outputs


def simulate_netlist(name, lib, text, top, inputs, stim_words, tb, cycles, period_ns):
    """Simulates a mapped netlist timed and zero-delay on a stimulus; returns
    the energies (pJ over the run) and activity of its cells."""
    cells = parse_netlist(text, lib)
    instr, nets, _ = instrument(text, top, cells, inputs)
    with tempfile.TemporaryDirectory() as tmp:
        inst_file = os.path.join(tmp, "netlist_counted.v")
        open(inst_file, "w").write(instr)
        with open(os.path.join(tmp, "stim.hex"), "w") as f:
            f.writelines("%x\n" % w for w in stim_words)
        tb_file = os.path.join(tmp, "tb.v")
        # Yosys names the parameterized top after its parameters; find it.
        mod = re.search(r"^module\s+(\S+)\s*\(", text, re.M).group(1)
        open(tb_file, "w").write(tb(mod))
        t0 = time.time()
        _, zero_out = simulate(tmp, inst_file, tb_file, timed=False)
        counts, timed_out = simulate(tmp, inst_file, tb_file, timed=True)
        sim_s = time.time() - t0
    if zero_out != timed_out:
        sys.exit("%s: outputs with delays differ from zero-delay ones; raise --period-ns" % name)
    timed_counts = [c[0] for c in counts]
    settled_counts = [c[1] for c in counts]
    index = {n: k for k, n in enumerate(nets)}
    # Load of each net: input pin capacitances of its fanout.
    load = {n: 0.0 for n in nets}
    for ctype, _, pins in cells:
        for p, n in pins.items():
            if p in lib.cells[ctype]["inputs"] and is_net(n):
                load[n] += lib.cells[ctype]["inputs"][p]["cap"]
    e = {"comb": 0.0, "flop": 0.0, "clock": 0.0, "leak_nw": 0.0, "flops": 0, "sim_s": sim_s}
    for ctype, _, pins in cells:
        c = lib.cells[ctype]
        e["leak_nw"] += c["leakage_nw"]
        is_flop = ctype.startswith("DFF")
        kind = "flop" if is_flop else "comb"
        for p, n in pins.items():
            if not is_net(n):
                continue
            t = timed_counts[index[n]]
            if p in c["outputs"]:
                e[kind] += t * lib.output_energy_pj(ctype, p, load[n])
            elif p in c["inputs"]:
                if is_flop and p == "CLK":
                    continue
                e[kind] += t * lib.input_energy_pj(ctype, p)
        if is_flop:
            e["flops"] += 1
            clk_cap = c["inputs"]["CLK"]["cap"]
            e["clock"] += cycles * (2 * lib.input_energy_pj(ctype, "CLK") + clk_cap * VDD * VDD)
    e["leak"] = e["leak_nw"] * cycles * period_ns * 1e-6  # nW * ns = 1e-18 J = 1e-6 pJ
    comb_nets = [index[pins[p]] for ctype, _, pins in cells for p in lib.cells[ctype]["outputs"]
                 if not ctype.startswith("DFF") and is_net(pins.get(p, ""))]
    e["comb_toggles"] = sum(timed_counts[k] for k in comb_nets)
    e["glitch"] = e["comb_toggles"] / max(1, sum(settled_counts[k] for k in comb_nets))
    # Register bit flips (flip-flop outputs): the activity the cycle model
    # counts, so models/cost can scale this stream's energies to a workload's.
    flop_nets = [index[pins[p]] for ctype, _, pins in cells if ctype.startswith("DFF")
                 for p in lib.cells[ctype]["outputs"] if is_net(pins.get(p, ""))]
    e["reg_toggles"] = sum(settled_counts[k] for k in flop_nets)
    return e


def pe_stream(fmts, operand):
    """(clear, a, b) per MAC: fmnist_cnn conv2 dot products, a clear at each start."""
    n_dots = max(1, ARGS.macs // K_TERMS)
    w, x = operands(fmts, operand, n_dots)
    return [(1 if k == 0 else 0, int(w[d, k]), int(x[d, k])) for d in range(n_dots) for k in range(K_TERMS)]


def run_config(name, lib, fmts, args):
    unit, operand, product, accumulator = CONFIGS[name]
    top, params, key = synth.elaborate(fmts, unit, operand, product, accumulator)
    a_f, acc_f = fmts.get(operand), fmts.get(accumulator)
    is_int = a_f["kind"] == "int"
    a_w = a_f["BITS"] if is_int else 1 + a_f["EXP_W"] + a_f["MAN_W"]
    acc_w = acc_f["BITS"] if is_int else 1 + acc_f["EXP_W"] + acc_f["MAN_W"]
    stim = pe_stream(fmts, operand)
    macs = len(stim)
    words = [(clear << (2 * a_w + 1)) | (1 << (2 * a_w)) | (a << a_w) | b for clear, a, b in stim]
    with tempfile.TemporaryDirectory() as tmp:
        net_file = os.path.join(tmp, "netlist.v")
        area = synth.synthesize(args.yosys, top, params, netlist=net_file)
        text = open(net_file).read()
    inputs = ["a[%d]" % i for i in range(a_w)] + ["b[%d]" % i for i in range(a_w)] + ["in_clear", "in_valid"]
    cycles = macs + 4 + 1
    e = simulate_netlist(name, lib, text, top, inputs, words,
                         lambda mod: testbench(mod, is_int, a_w, acc_w, macs, args.period_ns), cycles, args.period_ns)
    total = e["comb"] + e["flop"] + e["clock"] + e["leak"]
    row = {"name": name, "unit": key[0], "operand": key[1], "product": key[2], "accumulator": key[3],
           "macs": macs, "cells": area["cells"], "flops": e["flops"], "area_um2": area["area_um2"],
           "pj_per_mac": "%.3f" % (total / macs), "comb_pj_per_mac": "%.3f" % (e["comb"] / macs),
           "flop_pj_per_mac": "%.3f" % (e["flop"] / macs), "clock_pj_per_mac": "%.3f" % (e["clock"] / macs),
           "leakage_pj_per_mac": "%.5f" % (e["leak"] / macs), "glitch_factor": "%.2f" % e["glitch"],
           "comb_toggles_per_mac": "%.0f" % (e["comb_toggles"] / macs),
           "reg_toggles_per_mac": "%.3f" % (e["reg_toggles"] / macs),
           "clock_pj_per_flop_cycle": "%.5f" % (e["clock"] / max(1, e["flops"] * cycles)),
           "leakage_nw": "%.1f" % e["leak_nw"], "period_ns": args.period_ns}
    print("%-16s %5d cells  %.3f pJ/MAC (comb %.3f, flops %.3f, clock %.3f, leak %.5f; %.0f comb toggles/MAC, "
          "glitch x%.2f) [%.0f s sim]" % (name, area["cells"], total / macs, e["comb"] / macs, e["flop"] / macs,
                                          e["clock"] / macs, e["leak"] / macs, e["comb_toggles"] / macs,
                                          e["glitch"], e["sim_s"]), flush=True)
    return row


# --- single operations, for the comparison with Horowitz's per-operation figures ---

# name: (unit, operand, product, accumulator); the operation Horowitz names.
UNIT_CONFIGS = {
    "fp16_add": ("acc", "", "", "fp16"),
    "fp32_add": ("acc", "", "", "fp32"),
    "fp16_mult": ("mul_round", "fp16", "fp16", ""),
    "fp32_mult": ("mul_round", "fp32", "fp32", ""),
    "int8_add": ("int_acc", "", "int8", "int8"),
    "int32_add": ("int_acc", "", "int32", "int32"),
    "int8_mult": ("int_mul", "int8", "int16", ""),
    "int32_mult": ("int_mul", "int32", "int32", ""),
}


def unit_stream(fmts, unit, operand, product, accumulator):
    """(x, y) input pairs of a single operation on the conv2 dot products:
    multipliers get the operand pairs; adders get (running sum, next term),
    the running sum rounded once into the format (two's complement wrap for
    integers), the term the product in the addend format."""
    import numpy as np
    n_dots = max(1, ARGS.macs // K_TERMS)
    if unit in ("mul_round", "int_mul"):
        w, x = operands(fmts, operand, n_dots)
        return [(int(w[d, k]), int(x[d, k])) for d in range(n_dots) for k in range(K_TERMS)]
    f = fmts.get(accumulator)
    if unit == "int_acc":
        bits = f["BITS"]
        mask = (1 << bits) - 1
        # int8 x int8 products for the 32-bit adder; the activations themselves for the 8-bit one.
        w, x = operands(fmts, "int8", n_dots)
        sx = lambda v: int(v) - 256 if v >= 128 else int(v)
        terms = [[sx(w[d, k]) * sx(x[d, k]) if bits > 8 else sx(x[d, k]) for k in range(K_TERMS)]
                 for d in range(n_dots)]
        out = []
        for t in terms:
            s = 0
            for v in t:
                out.append((s & mask, v & mask))
                s += v
        return out
    w, x = conv2_stream(n_dots)
    p = w.astype(np.float64) * x.astype(np.float64)
    top = (1 << f["EXP_W"]) - 2 - f["BIAS"]
    p = p * 2.0 ** (top - 3 - math.ceil(math.log2(np.abs(np.cumsum(p, axis=1)).max())))
    sums = np.concatenate([np.zeros((n_dots, 1)), np.cumsum(p, axis=1)[:, :-1]], axis=1)
    enc = lambda t: quantize_float(t, f["EXP_W"], f["MAN_W"], f["BIAS"], f["SPECIALS"])
    a, b = enc(sums), enc(p)
    return [(int(a[d, k]), int(b[d, k])) for d in range(n_dots) for k in range(K_TERMS)]


def unit_testbench(top_name, unit, x_w, y_w, out_w, n, period_ns):
    names = {"acc": ("acc", "addend", "sum"), "int_acc": ("acc", "addend", "sum"),
             "mul_round": ("a", "b", "p"), "int_mul": ("a", "b", "p")}[unit]
    ports = ".%s(x), .%s(y), .%s(out), .events(events)" % names
    if unit in ("acc", "mul_round"):
        ports += ", .sr_rand(32'd0)"
    return """`timescale 1ns/10ps
module tb;
  reg clk = 0;
  reg [{xw}-1:0] x = 0;
  reg [{yw}-1:0] y = 0;
  wire [{ow}-1:0] out;
  wire [4:0] events;
  reg [{xw}+{yw}-1:0] stim [0:{n}-1];
  integer i, f;
  {top} dut ({ports});
  always #{half} clk = ~clk;
  always @(negedge clk) begin #({half} - 0.5); -> dut.__sample; end
  initial begin
    $readmemh("stim.hex", stim);
    f = $fopen("outputs.txt");
    @(negedge clk);
    dut.__counting = 1;
    for (i = 0; i < {n}; i = i + 1) begin
      {{x, y}} = stim[i];
      @(negedge clk);
      $fdisplay(f, "%h %h", out, events);
    end
    dut.__counting = 0;
    $fclose(f);
    f = $fopen("counts.txt");
    dut.__dump(f);
    $fclose(f);
    $finish;
  end
endmodule
""".format(xw=x_w, yw=y_w, ow=out_w, n=n, top=top_name, half=period_ns / 2, ports=ports)


def run_unit(name, lib, fmts, args):
    unit, operand, product, accumulator = UNIT_CONFIGS[name]
    top, params, key = synth.elaborate(fmts, unit, operand, product, accumulator)
    width = lambda s: fmts.get(s)["BITS"] if fmts.get(s)["kind"] == "int" else \
        1 + fmts.get(s)["EXP_W"] + fmts.get(s)["MAN_W"]
    if unit in ("mul_round", "int_mul"):
        x_w = y_w = width(operand)
        out_w = width(product)
    else:
        x_w = out_w = width(accumulator)
        y_w = width(product) if product else x_w
    stim = unit_stream(fmts, unit, operand, product, accumulator)
    ops = len(stim)
    words = [(a << y_w) | b for a, b in stim]
    with tempfile.TemporaryDirectory() as tmp:
        net_file = os.path.join(tmp, "netlist.v")
        area = synth.synthesize(args.yosys, top, params, netlist=net_file)
        text = open(net_file).read()
    in_names = ("acc", "addend") if unit in ("acc", "int_acc") else ("a", "b")
    inputs = ["%s[%d]" % (in_names[0], i) for i in range(x_w)] + ["%s[%d]" % (in_names[1], i) for i in range(y_w)]
    cycles = ops + 1
    e = simulate_netlist(name, lib, text, top, inputs, words,
                         lambda mod: unit_testbench(mod, unit, x_w, y_w, out_w, ops, args.period_ns), cycles,
                         args.period_ns)
    total = e["comb"] + e["leak"]
    print("%-16s %5d cells  %.3f pJ/op (leak %.5f; glitch x%.2f) [%.0f s sim]" % (
        name, area["cells"], total / ops, e["leak"] / ops, e["glitch"], e["sim_s"]), flush=True)
    return {"name": name, "unit": key[0], "operand": key[1], "product": key[2], "accumulator": key[3],
            "ops": ops, "cells": area["cells"], "area_um2": area["area_um2"], "pj_per_op": "%.4f" % (total / ops),
            "leakage_pj_per_op": "%.6f" % (e["leak"] / ops), "glitch_factor": "%.2f" % e["glitch"],
            "period_ns": args.period_ns}


COLUMNS = ["name", "unit", "operand", "product", "accumulator", "macs", "cells", "flops", "area_um2",
           "pj_per_mac", "comb_pj_per_mac", "flop_pj_per_mac", "clock_pj_per_mac", "leakage_pj_per_mac",
           "glitch_factor", "comb_toggles_per_mac", "reg_toggles_per_mac", "clock_pj_per_flop_cycle",
           "leakage_nw", "period_ns"]


UNIT_COLUMNS = ["name", "unit", "operand", "product", "accumulator", "ops", "cells", "area_um2", "pj_per_op",
                "leakage_pj_per_op", "glitch_factor", "period_ns"]


def update_table(path, header, columns, name, row):
    rows = {}
    if os.path.exists(path):
        rows = {r["name"]: r for r in csv.DictReader(l for l in open(path) if not l.startswith("#"))}
    rows[name] = row
    out = io.StringIO()
    out.write(header)
    w = csv.DictWriter(out, columns, lineterminator="\n")
    w.writeheader()
    for k in sorted(rows):
        w.writerow({c: rows[k].get(c, "") for c in columns})
    open(path, "w").write(out.getvalue())


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", choices=sorted(CONFIGS) + sorted(UNIT_CONFIGS))
    ap.add_argument("--macs", type=int, default=1440, help="MACs (operations) simulated per configuration "
                                                         "(144 per dot product)")
    ap.add_argument("--period-ns", type=float, default=40.0)
    ap.add_argument("--yosys", default="yosys")
    ap.add_argument("--params-tool")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--unit-out", default=UNIT_OUT)
    args = ARGS = ap.parse_args()
    lib = Library(synth.LIBERTY)
    fmts = synth.Formats(synth.find_params_tool(args.params_tool))
    stream = "# Stream: fmnist_cnn conv2 dot products (K=144), per-tensor power-of-two scaled operands.\n"
    for name in args.only or list(CONFIGS) + list(UNIT_CONFIGS):
        if name in CONFIGS:
            update_table(args.out, "# Gate-level energy per MAC of rtl_ref/ PEs at 180 nm (OSU 0.18um, 1.8 V), pJ.\n"
                         "# Generated by rtl_ref/energy/energy.py; do not edit. Method: docs/rtl.md.\n" + stream,
                         COLUMNS, name, run_config(name, lib, fmts, args))
        else:
            update_table(args.unit_out, "# Gate-level energy per operation of single rtl_ref/ units at 180 nm "
                         "(OSU 0.18um, 1.8 V), pJ: the operations Horowitz (ISSCC 2014) lists.\n"
                         "# Generated by rtl_ref/energy/energy.py; do not edit. Method: docs/rtl.md.\n" + stream +
                         "# Adders: (running sum, next term) pairs; multipliers: the operand pairs.\n",
                         UNIT_COLUMNS, name, run_unit(name, lib, fmts, args))


if __name__ == "__main__":
    main()
