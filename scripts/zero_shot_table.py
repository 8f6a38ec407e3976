#!/usr/bin/python3
"""The paper's zero-shot table (PAPER.md) on accsim's shipped networks.

Runs `accsim run` on the shipped traces (the CNN, ResNet-8 and the vision
transformer) for the paper's accumulator formats
(M10E5, M9E5, M8E5, M7E5, M6E5, M7E4 with its biases) and narrower ones until
the accuracy collapses, all without fine-tuning, and writes

  docs/zero_shot.md    the table (top-1 per network and format, deltas, events)
  docs/zero_shot.png   the same as a plot

Every number in them comes from accsim's JSON reports (kept in --work), never
typed by hand. Inputs are e3m4 with a power-of-two scale per tensor, the
accumulation is chunked by 16, rounding toward zero with flush to zero, and
the product format is the accumulator's MxEy with the product bias; the
biases follow docs/run.md:

  E5 formats: the default bias 15 for products and accumulator (their 32
    binades hold every product and sum of pow2-scaled e3m4 inputs);
  E4 and narrower exponents: b_prod puts the largest possible product
    (31 * 31 = 961 < 2^10) in the top binade, emax_prod = 9, so
    b_prod = 2^E - 1 - 9, and b_acc = b_prod - log2(16)/2 = b_prod - 2.

Usage (from the repository root, after building accsim):
  /usr/bin/python3 scripts/zero_shot_table.py [--accsim build/release/sim/accsim]
      [--samples N] [--threads N] [--work build/zero_shot]
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRACES = [("fmnist_cnn", "CNN"), ("fmnist_resnet", "ResNet-8"), ("fmnist_vit", "ViT")]
# The networks whose accumulator events get a column of their own.
EVENT_TRACES = [("fmnist_resnet", "ResNet-8"), ("fmnist_vit", "ViT")]
# The ViT's GEMM layers by role, from their ONNX node names (scripts/fmnist_models.py).
VIT_ROLES = [("patch embedding", "/patch_embed/"), ("QKV projection", "/attn/qkv/"),
             ("attention scores Q·Kᵀ", "/attn/MatMul"), ("softmax·V", "/attn/MatMul_1"),
             ("output projection", "/attn/proj/"), ("MLP fc1", "/fc1/"), ("MLP fc2", "/fc2/"),
             ("classifier head", "/head/")]
# Formats whose ViT per-layer events the page breaks down.
VIT_DETAIL = ["M7E4", "M5E4"]
PAPER_FORMATS = [(10, 5), (9, 5), (8, 5), (7, 5), (6, 5), (7, 4)]
NARROWER = [(6, 4), (5, 4), (4, 4), (3, 4), (2, 4), (1, 4)]
CHUNK = 16
# ResNet-18 on ImageNet, zero-shot (PAPER.md), for the plot's second panel.
PAPER_RESNET18 = {"M10E5": 69.50, "M9E5": 68.95, "M8E5": 66.70, "M7E5": 57.09, "M6E5": 20.49, "M7E4": 60.14}
PAPER_RESNET18_FP32 = 69.75


def biases(exp_bits):
    """(b_prod, b_acc) by the rule of docs/run.md."""
    if exp_bits >= 5:
        default = (1 << (exp_bits - 1)) - 1
        return default, default
    b_prod = (1 << exp_bits) - 1 - 9
    return b_prod, b_prod - 2  # log2(16) / 2 = 2


def formats(man, exp):
    b_prod, b_acc = biases(exp)
    prod = f"M{man}E{exp},bias={b_prod},round=rtz,ftz"
    acc = f"M{man}E{exp},bias={b_acc},round=rtz,ftz"
    return prod, acc


def run(accsim, trace, args, work, tag, extra):
    report = os.path.join(work, f"{trace}_{tag}.json")
    cmd = [accsim, "run", "--trace", os.path.join(ROOT, "traces", trace), "--report", report,
           "--threads", str(args.threads), "--timing"] + extra
    if args.samples:
        cmd += ["--samples", str(args.samples)]
    t0 = time.time()
    if not (args.reuse and os.path.exists(report)):
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            sys.exit(f"zero_shot_table: {' '.join(cmd)} failed:\n{proc.stderr}")
    with open(report) as f:
        r = json.load(f)
    print(f"  {trace:14s} {tag:28s} low-bit top-1 {100 * r['accuracy']['lowbit']['top1']:6.2f}%  "
          f"({time.time() - t0:.0f} s)", flush=True)
    return r


def events(report):
    """Overflow, underflow and swamp rates over all accumulator additions of the network."""
    tot = {"ops": 0, "overflow": 0, "underflow": 0, "swamp": 0, "prod_ops": 0, "prod_underflow": 0}
    for layer in report["layers"]:
        for kind in ("accumulate", "merge"):
            e = layer["events"][kind]
            tot["ops"] += e["ops"]
            for k in ("overflow", "underflow", "swamp"):
                tot[k] += e[k]
        tot["prod_ops"] += layer["events"]["product"]["ops"]
        tot["prod_underflow"] += layer["events"]["product"]["underflow"]
    return tot


def pct(x, n):
    return "-" if n == 0 else f"{100 * x / n:.2g}%"


def vit_roles(report):
    """The ViT's layers summed by role: accumulator events, products, and the
    'net' error of the role's last layer in the network."""
    out = {}
    for layer in report["layers"]:
        name = layer["name"]
        role = None
        for label, key in VIT_ROLES:  # the longest match wins: MatMul_1 over MatMul
            if key in name and (role is None or len(key) > len(dict(VIT_ROLES)[role])):
                role = label
        if role is None:
            continue
        r = out.setdefault(role, {"layers": 0, "macs": 0, "ops": 0, "overflow": 0, "underflow": 0, "swamp": 0,
                                  "signal": 0.0, "noise": 0.0, "net_err": []})
        r["layers"] += 1
        r["macs"] += layer["macs_per_sample"]
        for kind in ("accumulate", "merge"):
            e = layer["events"][kind]
            r["ops"] += e["ops"]
            for k in ("overflow", "underflow", "swamp"):
                r[k] += e[k]
        snr = layer["error"]["accumulation"]["snr_db"]
        r["net_err"].append(layer["error"]["network"]["rel_error"])
        r.setdefault("snr", []).append(float(snr))
    return out


def vit_section(by_label, fp32):
    """Where the ViT's damage is: per-role events and errors at VIT_DETAIL."""
    lines = [
        "## The vision transformer, layer by layer",
        "",
        "`fmnist_vit` (scripts/fmnist_models.py `SmallViT`: 7x7 patches, 17 tokens of 64, four pre-norm",
        "encoder blocks of 4 heads, GELU MLPs of 128) has GEMM layers of six kinds per block. The two",
        "attention GEMMs multiply two activations (Q·Kᵀ, and the softmax's probabilities times V); both",
        "operands are rounded to e3m4 per sample with one power-of-two scale per tensor, like every other",
        "layer's activations. Softmax, LayerNormalization and GELU run in FP32. Per role, summed over the",
        "four blocks: accumulator events per addition, the accumulation's own SNR (worst block), and the",
        "relative error of the layer's output against the FP32 run (`err net`, all error up to there; worst",
        "block).",
        "",
    ]
    for label in VIT_DETAIL:
        if label not in by_label:
            continue
        rep = by_label[label]["fmnist_vit"]
        top1 = rep["accuracy"]["lowbit"]["top1"]
        lines += [f"### {label}: ViT top-1 {100 * top1:.2f}% ({100 * (top1 - fp32['fmnist_vit']):+.2f} vs FP32)", "",
                  "| layers | count | MACs per image | overflow | underflow | swamp | SNR acc (dB, worst) | err net (worst) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        roles = vit_roles(rep)
        for role, _ in VIT_ROLES:
            if role not in roles:
                continue
            r = roles[role]
            lines.append(f"| {role} | {r['layers']} | {r['macs']:,} | {pct(r['overflow'], r['ops'])} | "
                         f"{pct(r['underflow'], r['ops'])} | {pct(r['swamp'], r['ops'])} | "
                         f"{min(r['snr']):.1f} | {max(r['net_err']):.2e} |")
        worst_swamp = max(roles.items(), key=lambda kv: kv[1]["swamp"] / max(kv[1]["ops"], 1))
        worst_unfl = max(roles.items(), key=lambda kv: kv[1]["underflow"] / max(kv[1]["ops"], 1))
        overflowing = [k for k, v in roles.items() if v["overflow"]]
        worst_net = max(roles.items(), key=lambda kv: max(kv[1]["net_err"]))
        first_net = roles[VIT_ROLES[0][0]]["net_err"][0] if VIT_ROLES[0][0] in roles else None
        lines += ["", f"At {label} the highest swamp rate is in the {worst_swamp[0]} layers "
                  f"({pct(worst_swamp[1]['swamp'], worst_swamp[1]['ops'])} of their additions) and the highest "
                  f"underflow rate in the {worst_unfl[0]} layers ({pct(worst_unfl[1]['underflow'], worst_unfl[1]['ops'])}); "
                  + ("layers that overflow: " + ", ".join(overflowing) + "." if overflowing else "no layer overflows.")
                  + (f" The error against FP32 accumulates along the network: {first_net:.2e} after the patch "
                     f"embedding, largest at the {worst_net[0]} ({max(worst_net[1]['net_err']):.2e})."
                     if first_net is not None else ""),
                  ""]
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--accsim", default=os.path.join(ROOT, "build", "release", "sim", "accsim"))
    p.add_argument("--samples", type=int, default=0, help="samples per trace (0: all)")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--work", default=os.path.join(ROOT, "build", "zero_shot"), help="where the JSON reports go")
    p.add_argument("--reuse", action="store_true",
                   help="take the reports already in --work instead of running accsim again (same flags assumed)")
    p.add_argument("--collapse", type=float, default=0.5,
                   help="stop the narrower formats once top-1 falls below this fraction of FP32 on every network")
    p.add_argument("--out-md", default=os.path.join(ROOT, "docs", "zero_shot.md"))
    p.add_argument("--out-png", default=os.path.join(ROOT, "docs", "zero_shot.png"))
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)

    rows = []  # (label, prod, acc, {trace: report})
    print("zero-shot table: inputs e3m4 (pow2 per tensor), chunks of 16, rtz + ftz", flush=True)
    # Input rounding alone: e3m4 inputs, exact products, and an accumulator
    # far wider than these sums need (M21E5: 22 significant bits, 2^-14 to
    # 2^16, round to nearest). Unlike fp32, whose grid is too wide for the
    # reference GEMM's exact double-lane fast path, it runs at full speed.
    ref = {t: run(args.accsim, t, args, args.work, "inputs_only",
                  ["--prod", "exact", "--acc", "M21E5", "--order", "sequential"]) for t, _ in TRACES}
    rows.append(("e3m4 inputs only", "exact", "M21E5", ref))
    fp32 = {t: ref[t]["accuracy"]["fp32"]["top1"] for t, _ in TRACES}

    def add(man, exp):
        prod, acc = formats(man, exp)
        res = {t: run(args.accsim, t, args, args.work, f"M{man}E{exp}",
                      ["--prod", prod, "--acc", acc, "--order", f"chunked:{CHUNK}"]) for t, _ in TRACES}
        rows.append((f"M{man}E{exp}", prod, acc, res))
        return res

    for man, exp in PAPER_FORMATS:
        add(man, exp)
    for man, exp in NARROWER:
        res = add(man, exp)
        if all(res[t]["accuracy"]["lowbit"]["top1"] < args.collapse * fp32[t] for t, _ in TRACES):
            break

    samples = {t: ref[t]["trace"]["samples"] for t, _ in TRACES}
    lines = [
        "# Zero-shot accuracy with low-bit accumulators",
        "",
        "Written by `scripts/zero_shot_table.py` from accsim's JSON reports; do not edit by hand.",
        "",
        "No fine-tuning: the networks trained in FP32 (`scripts/train_fmnist.py`) run with e3m4 inputs",
        "(a power-of-two scale per tensor), products rounded into the product format and accumulated in the",
        f"accumulator format, in chunks of {CHUNK} merged in the accumulator format; round toward zero and",
        "flush to zero throughout. Biases as in [run.md](run.md#exponent-biases): default bias 15 for E5",
        "formats; for E4 and narrower, b_prod = 2^E - 1 - 9 and b_acc = b_prod - 2. Samples: " +
        ", ".join(f"{samples[t]} of `{t}`" for t, _ in TRACES) + " (Fashion-MNIST test images).",
        "",
        "| accumulator | product format | accumulator format | " +
        " | ".join(f"{name} top-1 | Δ vs FP32" for _, name in TRACES) + " | " +
        " | ".join(f"{name} events: overflow / underflow / swamp" for _, name in EVENT_TRACES) + " |",
        "|---|---|---|" + "---:|---:|" * len(TRACES) + "---|" * len(EVENT_TRACES),
        "| FP32 | `fp32` | `fp32` (sequential) | " +
        " | ".join(f"{100 * fp32[t]:.2f}% | " for t, _ in TRACES) + " |" + " |" * len(EVENT_TRACES),
    ]
    for label, prod, acc, res in rows:
        cells = []
        for t, _ in TRACES:
            top1 = res[t]["accuracy"]["lowbit"]["top1"]
            cells.append(f"{100 * top1:.2f}% | {100 * (top1 - fp32[t]):+.2f}")
        ev_cells = []
        for t, _ in EVENT_TRACES:
            ev = events(res[t])
            ev_cells.append(f"{pct(ev['overflow'], ev['ops'])} / {pct(ev['underflow'], ev['ops'])} / "
                            f"{pct(ev['swamp'], ev['ops'])}")
        order = " (sequential, rne)" if label == "e3m4 inputs only" else ""
        lines.append(f"| {label} | `{prod}` | `{acc}`{order} | " + " | ".join(cells) + " | " +
                     " | ".join(ev_cells) + " |")
    lines += [
        "",
        "Events are per accumulator addition (chunk sums and merges) over all layers of the network. The",
        "\"e3m4 inputs only\" row isolates input rounding: exact products summed in an accumulator far",
        "wider than these sums need (M21E5; fp32 itself would take the reference GEMM's slow general path).",
        "For comparison, the paper's zero-shot ResNet-18 on ImageNet (FP32 69.75%): " +
        ", ".join(f"{k} {v:.2f}%" for k, v in PAPER_RESNET18.items()) + ".",
        "",
        "![zero-shot accuracy](zero_shot.png)",
        "",
    ]
    lines += vit_section({label: res for label, _, _, res in rows}, fp32)
    os.makedirs(os.path.dirname(args.out_md), exist_ok=True)
    with open(args.out_md, "w") as f:
        f.write("\n".join(lines))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fmt_rows = [r for r in rows if r[0].startswith("M")]
    labels = [r[0] for r in fmt_rows]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for (t, name), marker in zip(TRACES, "osD"):
        ys = [100 * r[3][t]["accuracy"]["lowbit"]["top1"] / fp32[t] for r in fmt_rows]
        ax.plot(range(len(labels)), ys, marker=marker,
                label=f"{name}, Fashion-MNIST (FP32 {100 * fp32[t]:.2f}%)")
    paper = [PAPER_RESNET18.get(lab) for lab in labels]
    xs = [i for i, v in enumerate(paper) if v is not None]
    ax.plot(xs, [100 * paper[i] / PAPER_RESNET18_FP32 for i in xs], marker="^", color="gray", linestyle=":",
            label=f"paper: ResNet-18, ImageNet (FP32 {PAPER_RESNET18_FP32:.2f}%)")
    ax.axhline(100, color="black", linewidth=0.8, linestyle="--")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels)
    ax.set_xlabel("accumulator (and product) format; chunks of 16, round toward zero, flush to zero")
    ax.set_ylabel("top-1, % of the FP32 top-1")
    ax.set_ylim(0, 105)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    ax.set_title("Zero-shot accuracy with low-bit accumulators (e3m4 inputs, no fine-tuning)")
    fig.tight_layout()
    fig.savefig(args.out_png, dpi=120)
    print(f"wrote {args.out_md} and {args.out_png}")


if __name__ == "__main__":
    main()
