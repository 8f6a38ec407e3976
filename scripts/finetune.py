#!/usr/bin/python3
"""Accumulator-aware fine-tuning (Blumenfeld, Hubara and Soudry, ICLR 2024) of a
shipped trace's network, with accsim's own arithmetic in the forward pass.

  scripts/finetune.py --trace traces/fmnist_resnet --acc M7E4,bias=4,round=rtz,ftz \\
      --out traces/fmnist_resnet_m7e4_ft

Rebuilds the network from the trace's model.onnx (FP32 weights, BatchNorm
folded), replaces every Conv and Gemm by a layer whose forward is accsim's
executor (scripts/finetune_layers.py over the `accsim` Python module), trains
on the Fashion-MNIST training split in stages (the paper's: first without
underflow, i.e. the product and accumulator formats without flush-to-zero,
then the full formats), and exports a new trace (ONNX, the source trace's
samples, golden FP32 logits) whose trace.json records the recipe and the
low-bit top-1 it reached. `accsim run --trace NEW` with the flags in
trace.json's provenance.finetune.accsim_run_flags reproduces that top-1
exactly. docs/finetune.md explains the gradient variants and the results.
"""
import argparse
import datetime
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist_models as fm  # noqa: E402
from export_trace import export_trace  # noqa: E402
from finetune_layers import VARIANTS, OnnxNet, Timer, accsim  # noqa: E402

STAGES = ("noftz", "full")


def without_ftz(fmt):
    """The format string without flush-to-zero (subnormals kept): stage one of the paper's schedule."""
    return ",".join(p for p in fmt.split(",") if p != "ftz")


def parse_stages(text, epochs):
    out = []
    for part in text.split(","):
        name, _, ep = part.partition(":")
        if name not in STAGES:
            sys.exit(f"finetune: error: --stages: '{name}' is not one of {', '.join(STAGES)}")
        try:
            e = float(ep) if ep else epochs
        except ValueError:
            sys.exit(f"finetune: error: --stages: '{ep}' is not a number of epochs")
        if not e > 0:
            sys.exit(f"finetune: error: --stages: epochs must be > 0 (got {e})")
        out.append((name, e))
    return out


def stage_arithmetic(args, onnx, stage):
    """Per-layer accsim.Arithmetic for a stage, resolved by accsim's own --layer logic."""
    prod, acc = args.prod, args.acc
    if stage == "noftz":
        prod = prod if prod == "exact" else without_ftz(prod)
        acc = without_ftz(acc)
    base = accsim.Arithmetic(mul=args.mul, prod=prod, acc=acc, order=args.order, scale=args.scale)
    layer = [without_ftz_override(f) if stage == "noftz" else f for f in args.layer]
    return base, [a for _, a in accsim.layer_arithmetic(onnx, base, layer)]


def without_ftz_override(flag):
    name, _, setting = flag.partition(":")
    key, _, value = setting.partition("=")
    return f"{name}:{key}={without_ftz(value)}" if key in ("prod", "acc") else flag


def accsim_top1(net, x, y, batch=500):
    """Top-1 of the network with its current accsim arithmetic (= accsim's executor, bit for bit)."""
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += int((net(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    return correct


def fmt_time(s):
    s = int(max(s, 0))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trace", required=True, help="source trace folder (its model.onnx gives the FP32 weights)")
    ap.add_argument("--acc", required=True, help="accumulator format, e.g. M7E4,bias=4,round=rtz,ftz")
    ap.add_argument("--prod", default="M7E4,bias=6,round=rtz,ftz", help="product format, or 'exact'")
    ap.add_argument("--mul", default="e3m4", help="multiplier (input) format")
    ap.add_argument("--order", default="chunked:16")
    ap.add_argument("--scale", default="pow2")
    ap.add_argument("--layer", action="append", default=[], metavar="NAME:KEY=VALUE",
                    help="per-layer setting, as accsim run --layer (repeatable)")
    ap.add_argument("--stages", default="noftz,full",
                    help="comma list of stages NAME[:EPOCHS], NAME noftz (formats without flush-to-zero) or full; "
                         "EPOCHS may be fractional (default --epochs)")
    ap.add_argument("--grad", choices=VARIANTS, default="ste", help="gradient variant (docs/finetune.md)")
    ap.add_argument("--epochs", type=float, default=1.0, help="epochs per stage unless --stages says otherwise")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=0.002, help="initial learning rate of each stage (cosine to 0)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0, help="accsim threads (0: all) ; torch uses 1")
    ap.add_argument("--skip-zero-shot", action="store_true",
                    help="do not measure the zero-shot top-1 first (it is the same for every seed and variant)")
    ap.add_argument("--stage-eval", action="store_true", help="measure the low-bit top-1 after every stage")
    ap.add_argument("--full-test", action="store_true",
                    help="also measure FP32 and low-bit top-1 on all 10,000 test images (slow)")
    ap.add_argument("--out", required=True, help="trace folder to write")
    ap.add_argument("--name", default=None)
    args = ap.parse_args()

    onnx = os.path.join(args.trace, "model.onnx")
    src_info = json.load(open(os.path.join(args.trace, "trace.json")))
    stages = parse_stages(args.stages, args.epochs)
    try:
        arith = {name: stage_arithmetic(args, onnx, name) for name, _ in stages}
        final_base, final_layers = stage_arithmetic(args, onnx, "full")
    except ValueError as e:
        sys.exit(f"finetune: error: {e}")

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    pre = src_info["preprocessing"]
    mean, std = pre["mean"][0], pre["std"][0]
    train_u8, train_y = fm.load_raw("train")
    x_train = torch.from_numpy(fm.preprocess(train_u8, mean, std))
    y_train = torch.from_numpy(train_y)
    x_trace = np.load(os.path.join(args.trace, "inputs.npy"))
    y_trace = np.load(os.path.join(args.trace, "labels.npy"))

    net = OnnxNet(onnx)
    zero_shot = None
    if not args.skip_zero_shot:
        # Zero-shot top-1 with the final arithmetic on the trace's samples (what `accsim run` reports).
        net.set_accsim(final_layers, threads=args.threads)
        zero_shot = accsim_top1(net, torch.from_numpy(x_trace), torch.from_numpy(y_trace))
    print(f"finetune: {args.trace} ({len(net.layers)} GEMM layers), grad {args.grad}, seed {args.seed}; zero-shot "
          f"low-bit top-1 on {len(x_trace)} trace samples " +
          ("not measured" if zero_shot is None else f"{100 * zero_shot / len(x_trace):.2f}%"), flush=True)

    bs = args.batch_size
    steps = [(name, max(1, math.ceil(ep * len(x_train) / bs))) for name, ep in stages]
    total_steps = sum(s for _, s in steps)
    done_steps, t_start = 0, time.time()
    Timer.forward_seconds = 0.0
    history = []
    for stage_index, (name, n_steps) in enumerate(steps):
        base, layers = arith[name]
        net.set_accsim(layers, grad=args.grad, threads=args.threads)
        opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, nesterov=True)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=n_steps)
        order = np.concatenate([rng.permutation(len(x_train)) for _ in range(math.ceil(n_steps * bs / len(x_train)))])
        loss_avg, t_stage, cpu_stage, fwd_stage = None, time.time(), time.process_time(), Timer.forward_seconds
        load_stage = os.getloadavg()[0]
        for step in range(n_steps):
            idx = torch.from_numpy(order[step * bs:(step + 1) * bs])
            out = net(x_train[idx])
            loss = F.cross_entropy(out, y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_avg = float(loss) if loss_avg is None else 0.98 * loss_avg + 0.02 * float(loss)
            done_steps += 1
            elapsed = time.time() - t_start
            left = elapsed / done_steps * (total_steps - done_steps)
            epoch = (step + 1) * bs / len(x_train)
            print(f"\rstage {stage_index + 1}/{len(steps)} {name:5s} epoch {epoch:5.2f}/{stages[stage_index][1]:g} "
                  f"batch {step + 1}/{n_steps} loss {loss_avg:.4f} elapsed {fmt_time(elapsed)} "
                  f"left {fmt_time(left)}   ", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        record = {"stage": name, "epochs": stages[stage_index][1], "steps": n_steps, "arithmetic": repr(base),
                  "loss_ema": loss_avg, "seconds": round(time.time() - t_stage, 1),
                  # This process's CPU seconds (all its threads) and the wall seconds in the bindings' forward;
                  # the machine's 1-minute load average at the stage's start and end (other jobs slow the wall
                  # clock, less the CPU seconds).
                  "cpu_seconds": round(time.process_time() - cpu_stage, 1),
                  "bindings_forward_seconds": round(Timer.forward_seconds - fwd_stage, 1),
                  "load_average": [round(load_stage, 1), round(os.getloadavg()[0], 1)]}
        text = ""
        if args.stage_eval:  # the last stage's result is measured on the exported model below
            correct = accsim_top1(net, torch.from_numpy(x_trace), torch.from_numpy(y_trace))
            record["trace_samples_top1_after"] = correct / len(x_trace)
            text = f", low-bit top-1 ({repr(base)}) on trace samples {100 * correct / len(x_trace):.2f}%"
        history.append(record)
        print(f"stage {name}: {n_steps} batches in {record['seconds']:.0f} s, loss {loss_avg:.4f}{text}", flush=True)
    train_seconds = time.time() - t_start

    # Export the plain FP32 network (torch.onnx sees nn.Conv2d / nn.Linear) with the same samples.
    net.set_accsim(None)
    net.eval()
    full = None
    test_u8, test_y = fm.load_raw("test")
    x_test = fm.preprocess(test_u8, mean, std)
    if args.full_test:
        with torch.no_grad():
            fp32_pred = torch.cat([net(torch.from_numpy(x_test[i:i + 1000])).argmax(1)
                                   for i in range(0, len(x_test), 1000)]).numpy()
        c = int((fp32_pred == test_y).sum())
        full = {"top1": c / len(test_y), "correct": c, "samples": len(test_y)}
    flags = ["--mul", args.mul, "--prod", args.prod, "--acc", args.acc, "--order", args.order, "--scale", args.scale]
    for f in args.layer:
        flags += ["--layer", f]
    recipe = {
        "method": "accumulator-aware fine-tuning (Blumenfeld, Hubara, Soudry, ICLR 2024), scripts/finetune.py",
        "command": " ".join(["scripts/finetune.py"] + sys.argv[1:]),
        "source_trace": os.path.normpath(args.trace),
        "source_onnx_sha256": src_info["model"].get("onnx_sha256"),
        "grad": args.grad, "seed": args.seed, "stages": history, "batch_size": bs, "optimizer": "sgd nesterov 0.9",
        "lr": args.lr, "lr_schedule": "cosine to 0 within each stage", "weight_decay": 0.0,
        "training_data": "fashion-mnist train split, 60,000 images, reshuffled every epoch",
        "accsim_run_flags": flags,
        "zero_shot_trace_samples_top1": None if zero_shot is None else zero_shot / len(x_trace),
        "training_seconds": round(train_seconds, 1),
        "bindings_forward_seconds": round(Timer.forward_seconds, 1),
        "accsim_threads": args.threads, "torch_threads": 1, "cpu_count": os.cpu_count(),
        "finetune_date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    name = args.name or os.path.basename(os.path.normpath(args.out))
    prov = dict(src_info.get("provenance", {}))
    prov["finetune"] = recipe
    info = export_trace(net, x_trace, y_trace, args.out, name, src_info["dataset"], pre, prov,
                        full_test_accuracy=full)

    # The exported model through accsim's executor with the tuned configuration: what `accsim run` reports.
    new_onnx = os.path.join(args.out, "model.onnx")
    run = accsim.run_network(new_onnx, x_trace, base=final_base, layer=args.layer, threads=args.threads)
    lowbit = int((run["logits"].argmax(1) == y_trace).sum())
    recipe["lowbit_trace_samples_top1"] = lowbit / len(x_trace)
    recipe["lowbit_trace_samples_correct"] = lowbit
    if args.full_test:
        run = accsim.run_network(new_onnx, x_test, base=final_base, layer=args.layer, threads=args.threads)
        c = int((run["logits"].argmax(1) == test_y).sum())
        recipe["lowbit_full_test_top1"] = c / len(test_y)
        recipe["lowbit_full_test_correct"] = c
    info["provenance"]["finetune"] = recipe
    with open(os.path.join(args.out, "trace.json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    print(f"finetune: wrote {args.out}: FP32 top-1 {100 * info['accuracy']['framework_top1']:.2f}%, low-bit "
          f"top-1 {100 * lowbit / len(x_trace):.2f}% on {len(x_trace)} samples; training {train_seconds:.0f} s, of which the bindings' "
          f"forward {Timer.forward_seconds:.0f} s ({100 * Timer.forward_seconds / max(train_seconds, 1e-9):.0f}%)",
          flush=True)


if __name__ == "__main__":
    main()
