#!/usr/bin/python3
"""Writes the generated tables and the plot of docs/finetune.md: FP32, zero-shot
M7E4 and fine-tuned M7E4 for the shipped networks, and, for narrower
accumulators, the straight-through estimator against the fine-grained gradient
variants over several seeds.

  scripts/finetune_table.py --write docs/finetune.md

Every fine-tuning run is scripts/finetune.py writing a trace folder under
build/finetune/ (the M7E4 ResNet-8: traces/fmnist_resnet_m7e4_ft); a run whose
trace.json records its final low-bit top-1 is done and is not run again, so an
interrupted sweep resumes where it stopped. Evaluations of the full test split
(10,000 images, through the bindings' run_network, which is accsim's executor)
and zero-shot `accsim run` figures are kept in build/finetune/evaluations/, one
file per key (model hash and arithmetic).
Long jobs run under `nice -n 10`.
"""
import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import doctools  # noqa: E402
import zero_shot_table  # noqa: E402

REPO = doctools.REPO
RUNS = os.path.join(REPO, "build", "finetune")
SHIPPED_FT = os.path.join(REPO, "traces", "fmnist_resnet_m7e4_ft")
NETS = {"fmnist_resnet": "ResNet-8", "fmnist_cnn": "CNN"}
M7E4_PROD, M7E4_ACC = zero_shot_table.formats(7, 4)


def sh(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def run_dir(net, fmt, grad, seed):
    if net == "fmnist_resnet" and fmt == "M7E4" and grad == "ste" and seed == 0:
        return SHIPPED_FT
    return os.path.join(RUNS, f"{net}_{fmt}_{grad}_s{seed}")


def finetune(net, fmt, grad, seed, stages, args, any_stages=False):
    """The run's trace.json (running scripts/finetune.py first when it has not finished). With any_stages, a
    finished run with another stage schedule counts too (the table prints the recipe it used)."""
    out = run_dir(net, fmt, grad, seed)
    info_path = os.path.join(out, "trace.json")

    def done():
        if not os.path.exists(info_path):
            return None
        info = json.load(open(info_path))
        ft = info.get("provenance", {}).get("finetune", {})
        spec = ",".join(f"{st['stage']}:{st['epochs']:g}" for st in ft.get("stages", []))
        return info if "lowbit_trace_samples_top1" in ft and (any_stages or spec == stages) else None

    info = done()
    if info is None:
        if args.no_train:
            return None
        prod, acc = zero_shot_table.formats(int(fmt[1]), int(fmt[3]))
        nice = ["nice", "-n", "10"] if os.nice(0) == 0 else []  # long jobs under nice 10, not 19
        cmd = nice + [sys.executable, os.path.join(REPO, "scripts", "finetune.py"),
               "--trace", os.path.join(REPO, "traces", net), "--prod", prod, "--acc", acc, "--grad", grad,
               "--seed", str(seed), "--stages", stages, "--lr", str(args.lr if fmt == "M7E4" else args.narrow_lr),
               "--threads", str(args.threads), "--skip-zero-shot", "--out", out]
        print("finetune_table: " + " ".join(cmd[len(nice):]), flush=True)
        t0 = time.time()
        subprocess.run(cmd, check=True)
        print(f"finetune_table: done in {time.time() - t0:.0f} s", flush=True)
        info = done()
        if info is None:
            sys.exit(f"finetune_table: {out}: the run did not finish")
    return info


def cached(key, compute):
    """compute()'s value, kept in build/finetune/evaluations/<hash of key>.json (one file per key, written
    atomically, so concurrent sweeps never lose each other's entries); None when it is missing and compute is."""
    path = os.path.join(RUNS, "evaluations", hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")
    if os.path.exists(path):
        return json.load(open(path))["value"]
    if compute is None:
        return None
    value = compute()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump({"key": key, "value": value}, f)
    os.replace(path + ".tmp", path)
    return value


def full_test_lowbit(onnx, prod, acc, args):
    """Low-bit top-1 on all 10,000 test images through accsim's executor (cached by model hash)."""
    def compute():
        import fmnist_models as fm
        from finetune_layers import accsim
        images, labels = fm.load_raw("test")
        x = fm.preprocess(images)
        if os.nice(0) < 10:
            os.nice(10 - os.nice(0))
        t0 = time.time()
        run = accsim.run_network(onnx, x, base=accsim.Arithmetic(prod=prod, acc=acc), threads=args.threads)
        correct = int((run["logits"].argmax(1) == labels).sum())
        print(f"finetune_table: {onnx} {acc}: {correct}/10000 on the full test split ({time.time() - t0:.0f} s)",
              flush=True)
        return correct / len(labels)
    return cached(f"full test {sh(onnx)} {prod} {acc}", None if args.no_train else compute)


def zero_shot(net, fmt, args):
    """`accsim run`'s low-bit top-1 of the shipped trace (its 2,000 samples) with the format (cached)."""
    prod, acc = zero_shot_table.formats(int(fmt[1]), int(fmt[3]))
    trace = os.path.join(REPO, "traces", net)

    def compute():
        rep = doctools.accsim_report(args.accsim, ["run", "--trace", trace, "--prod", prod, "--acc", acc,
                                                   "--energy-samples", "0", "--threads", str(args.threads)])
        return rep["accuracy"]["lowbit"]["top1"]
    return cached(f"accsim run {sh(os.path.join(trace, 'model.onnx'))} {prod} {acc}",
                  None if args.no_train else compute)


def accsim_run_top1(trace, flags, args):
    """`accsim run --trace TRACE FLAGS`'s low-bit top-1 (cached by the trace's model hash and the flags)."""
    def compute():
        rep = doctools.accsim_report(args.accsim, ["run", "--trace", trace, "--energy-samples", "0",
                                                   "--threads", str(args.threads)] + flags)
        return rep["accuracy"]["lowbit"]["top1"]
    return cached(f"accsim run {sh(os.path.join(trace, 'model.onnx'))} {' '.join(flags)}", compute)


def default_flags():
    """finetune.py's accsim_run_flags for a run with the M7E4 formats and every other setting at its default."""
    return ["--mul", "e3m4", "--prod", M7E4_PROD, "--acc", M7E4_ACC, "--order", "chunked:16", "--scale", "pow2"]


def pct(x):
    return "–" if x is None else f"{100 * x:.2f}%"


def delta(x, ref):
    return "" if x is None or ref is None else f" ({100 * (x - ref):+.2f})"


def m7e4_table(args):
    rows = ["| network | samples | FP32 | zero-shot M7E4 | fine-tuned M7E4 | fine-tuned network's own FP32 | "
            "`accsim run` on the fine-tuned trace |",
            "|---|---|---|---|---|---|---|"]
    for net in args.nets:
        trace = os.path.join(REPO, "traces", net)
        src = json.load(open(os.path.join(trace, "trace.json")))
        info = finetune(net, "M7E4", "ste", 0, args.m7e4_stages, args, any_stages=True)
        if info is None:
            rows.append(f"| {NETS[net]} | – | – | – | not run | – | – |")
            continue
        ft = info["provenance"]["finetune"]
        fp32 = src["accuracy"]["framework_top1"]
        zero = zero_shot(net, "M7E4", args)
        tuned = ft["lowbit_trace_samples_top1"]
        out = run_dir(net, "M7E4", "ste", 0)
        got = accsim_run_top1(out, ft["accsim_run_flags"], args)
        same = "reproduces it exactly" if got == tuned else f"DIFFERS: {pct(got)}"
        n = src["num_samples"]
        rows.append(f"| {NETS[net]} | first {n:,} | {pct(fp32)} | {pct(zero)}{delta(zero, fp32)} | "
                    f"**{pct(tuned)}**{delta(tuned, fp32)} | {pct(info['accuracy']['framework_top1'])} | "
                    f"{pct(got)}: {same} |")
        fp32_full = src["accuracy"].get("full_test_top1")
        zero_full = full_test_lowbit(os.path.join(trace, "model.onnx"), M7E4_PROD, M7E4_ACC, args)
        if "lowbit_full_test_top1" in ft and ft["accsim_run_flags"] == default_flags():
            tuned_full = ft["lowbit_full_test_top1"]  # finetune.py --full-test: the same run_network evaluation
        else:
            tuned_full = full_test_lowbit(os.path.join(out, "model.onnx"), M7E4_PROD, M7E4_ACC, args)
        own_full = info["accuracy"].get("full_test_top1")
        rows.append(f"| {NETS[net]} | all 10,000 | {pct(fp32_full)} | {pct(zero_full)}{delta(zero_full, fp32_full)} | "
                    f"**{pct(tuned_full)}**{delta(tuned_full, fp32_full)} | {pct(own_full)} | – |")
        stages = ", ".join(f"{s['stage']} {s['epochs']:g} epoch{'s' if s['epochs'] != 1 else ''} "
                           f"({s['steps']} batches of {ft['batch_size']})" for s in ft["stages"])
        rows.append(f"| | recipe | {ft['grad']}, seed {ft['seed']}: {stages}; lr {ft['lr']:g} cosine; "
                    f"{ft['training_seconds']:.0f} s of training ({ft['bindings_forward_seconds']:.0f} s in the "
                    f"bindings' forward) | | | | |")
    return "\n".join(rows) + "\n"


def narrow_results(args):
    res = {}
    # Seed-major, so that an interrupted sweep has every cell with as many seeds as possible.
    for seed in args.seeds:
        for net in args.narrow_nets:
            for fmt in args.narrow_formats[net]:
                for grad in args.grads:
                    info = finetune(net, fmt, grad, seed, args.narrow_stages[net], args)
                    if info is not None:
                        res[(net, fmt, grad, seed)] = info["provenance"]["finetune"]
    return res


def summary(values):
    if not values:
        return "–"
    m = statistics.mean(values)
    if len(values) == 1:
        return f"{100 * m:.2f}% (1 seed)"
    sd = statistics.stdev(values)
    return f"{100 * m:.2f} ± {100 * sd:.2f}% ({100 * min(values):.2f}–{100 * max(values):.2f}, {len(values)} seeds)"


def narrow_table(args, res):
    rows = ["| network | accumulator (and product) | FP32 | zero-shot | " +
            " | ".join(f"fine-tuned, {g}" for g in args.grads) + " |",
            "|---|---|---|---|" + "---|" * len(args.grads)]
    for net in args.narrow_nets:
        src = json.load(open(os.path.join(REPO, "traces", net, "trace.json")))
        for fmt in args.narrow_formats[net]:
            got = {g: [res[(net, fmt, g, s)]["lowbit_trace_samples_top1"] for s in args.seeds
                       if (net, fmt, g, s) in res] for g in args.grads}
            zero = zero_shot(net, fmt, args)
            prod, acc = zero_shot_table.formats(int(fmt[1]), int(fmt[3]))
            rows.append(f"| {NETS[net]} | `{acc}` (`{prod}`) | {pct(src['accuracy']['framework_top1'])} | "
                        f"{pct(zero)} | " + " | ".join(summary(got[g]) for g in args.grads) + " |")
    rows.append("")
    for net in args.narrow_nets:
        runs = [r for (n, _, _, _), r in res.items() if n == net]
        sched = ", ".join(f"{st['stage']} {st['epochs']:g} epoch ({st['steps']} batches of {runs[0]['batch_size']})"
                          for st in runs[0]["stages"]) if runs else args.narrow_stages[net]
        rows.append(f"{NETS[net]}, every run: stages {sched}, SGD lr {args.narrow_lr:g} with a cosine decay per "
                    f"stage, seeds {', '.join(map(str, args.seeds))} as finished.  ")
    rows.append("Zero-shot from `accsim run` on the same samples.")
    return "\n".join(rows) + "\n"


def plot(args, res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    nets = args.narrow_nets
    fig, axes = plt.subplots(1, len(nets), figsize=(5.5 * len(nets), 4), squeeze=False)
    for ax, net in zip(axes[0], nets):
        src = json.load(open(os.path.join(REPO, "traces", net, "trace.json")))
        ax.axhline(100 * src["accuracy"]["framework_top1"], color="k", lw=1, ls="--", label="FP32")
        formats = args.narrow_formats[net]
        xs = range(len(formats))
        zero = []
        for fmt in formats:
            z = zero_shot(net, fmt, args)
            zero.append(float("nan") if z is None else 100 * z)
        ax.plot(xs, zero, "x", color="gray", ms=8, label="zero-shot")
        for gi, grad in enumerate(args.grads):
            means, lo, hi = [], [], []
            for fmt in formats:
                v = [100 * res[(net, fmt, grad, s)]["lowbit_trace_samples_top1"] for s in args.seeds
                     if (net, fmt, grad, s) in res]
                m = statistics.mean(v) if v else float("nan")
                means.append(m)
                lo.append(m - min(v) if v else 0)
                hi.append(max(v) - m if v else 0)
            ax.errorbar([x + 0.12 * (gi - 1) for x in xs], means, yerr=[lo, hi], fmt="o", capsize=3,
                        label=f"fine-tuned, {grad} (mean, min–max over seeds)")
        ax.set_xticks(list(xs))
        ax.set_xticklabels(formats)
        ax.set_xlabel("accumulator and product format (chunks of 16, e3m4 inputs)")
        ax.set_ylabel(f"top-1 on the trace's {src['num_samples']:,} test samples (%)")
        ax.set_title(f"{NETS[net]}, fine-tuned {args.narrow_stages[net]}", fontsize=10)
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"finetune_table: wrote {path}")


def per_net(values, nets, flag, parse):
    """{net: parse(value)} from VALUE (every network) and NET=VALUE (one network) items, later items winning;
    values without NET= accumulate for list-valued flags (--formats M5E4 M4E4)."""
    out, common = {}, []
    for v in values:
        net, eq, rest = v.partition("=")
        if eq and net in NETS:
            out[net] = parse(rest)
        elif eq and "," not in net and ":" not in net and net.isidentifier():
            sys.exit(f"finetune_table: error: {flag}: unknown network '{net}'")
        else:
            common.append(v)
    result = {}
    for net in nets:
        if net in out:
            result[net] = out[net]
        elif flag == "--formats":
            result[net] = [f for v in common for f in parse(v)]
        elif common:
            result[net] = parse(common[-1])
        else:
            sys.exit(f"finetune_table: error: {flag}: nothing given for {net}")
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accsim", default=doctools.DEFAULT_ACCSIM)
    ap.add_argument("--nets", nargs="*", default=list(NETS), help="networks of the M7E4 table")
    ap.add_argument("--narrow-nets", nargs="+", default=list(NETS), help="networks of the narrow-accumulator table")
    ap.add_argument("--formats", nargs="+", default=["M5E4", "M4E4", "fmnist_resnet=M5E4"],
                    help="narrow formats, FMT for every network or NET=FMT[,FMT...] for one (fmnist_resnet=M5E4)")
    ap.add_argument("--grads", nargs="+", default=["ste", "fine", "recursive"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--m7e4-stages", default="noftz:0.1,full:0.1")
    ap.add_argument("--narrow-stages", nargs="+", default=["fmnist_cnn=noftz:0.05,full:0.05",
                                                           "fmnist_resnet=noftz:0.02,full:0.02"],
                    help="stage schedule of the narrow runs, SPEC for every network or NET=SPEC for one")
    ap.add_argument("--lr", type=float, default=0.002, help="learning rate of the M7E4 runs")
    ap.add_argument("--narrow-lr", type=float, default=0.005, help="learning rate of the narrow-format runs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-train", action="store_true", help="only tabulate runs that have finished")
    ap.add_argument("--write", metavar="DOC", help="write the blocks into DOC (docs/finetune.md) and its plot")
    args = ap.parse_args()
    args.narrow_stages = per_net(args.narrow_stages, args.narrow_nets, "--narrow-stages", lambda v: v)
    args.narrow_formats = per_net(args.formats, args.narrow_nets, "--formats", lambda v: v.split(","))

    m7e4 = m7e4_table(args)
    print(m7e4)
    res = narrow_results(args)
    narrow = narrow_table(args, res)
    print(narrow)
    if args.write:
        doctools.replace_block(args.write, "finetune_table.py: m7e4", m7e4)
        doctools.replace_block(args.write, "finetune_table.py: narrow", narrow)
        plot(args, res, os.path.join(os.path.dirname(args.write), "finetune.png"))


if __name__ == "__main__":
    main()
