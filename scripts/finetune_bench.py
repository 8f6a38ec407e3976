#!/usr/bin/python3
"""Speed of fine-tuning through the bindings, for docs/finetune.md.

  scripts/finetune_bench.py [--batches 4] [--write docs/finetune.md]

Measures, in one run on this machine, CPU seconds of this process (what the
other jobs on a shared machine disturb least) and wall seconds:
1. the reference GEMM's emulated MAC/s on one core: tests/bench/bench_gemm's
   BM_ReferenceGemm with the paper's M7E4 accumulator, chunks of 16 (e4m3
   inputs, exact products, 256 x 256 x 256), and the same size through the
   bindings with `accsim run`'s arithmetic (e3m4 inputs, M7E4 products and
   accumulator, chunks of 16): the rate the forward could reach;
2. the bindings' forward of ResNet-8 (traces/fmnist_resnet, `accsim run`'s M7E4
   defaults) on batches of 128 training images, 1 thread: samples stacked into
   a few GEMMs (what fine-tuning runs) and, as the baseline, the executor one
   sample at a time (per_sample=True); the same with the masks of `fine`;
3. fine-tuning steps (STE, M7E4, 2 threads): seconds per batch of 128 and the
   share spent in the bindings' forward;
4. the measured epoch: the `full` stage of traces/fmnist_resnet_m7e4_ft (one
   epoch of the 60,000 training images), as its trace.json recorded it.
The load average is printed with the figures.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import doctools  # noqa: E402
import fmnist_models as fm  # noqa: E402
import finetune_layers  # noqa: E402
from finetune_layers import OnnxNet, Timer, accsim  # noqa: E402

REPO = doctools.REPO
BENCH_ROW = "BM_ReferenceGemm/M7E4,bias=-4,round=rtz,ftz/chunked:16/threads:1"


def bench_gemm(path):
    out = subprocess.run([path, f"--benchmark_filter={BENCH_ROW}$", "--benchmark_format=json",
                          "--benchmark_min_time=1"], capture_output=True, text=True, check=True).stdout
    runs = json.loads(out)["benchmarks"]
    if not runs:
        sys.exit(f"finetune_bench: {path} has no benchmark {BENCH_ROW}")
    b = runs[0]
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
    macs = 256 ** 3  # bench_gemm's kSize^3 per iteration
    return macs / (b["real_time"] * scale), macs / (b["cpu_time"] * scale), b["label"]


def timed(fn, reps=1):
    """(wall, CPU) seconds of reps calls of fn."""
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(reps):
        fn()
    return time.perf_counter() - t0, time.process_time() - c0


def dense_rate():
    """MAC/s of a 256 x 256 x 256 GEMM through the bindings with accsim run's arithmetic, 1 thread."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 256)).astype(np.float32)
    w = rng.standard_normal((256, 256)).astype(np.float32)
    a = accsim.Arithmetic()
    accsim.linear(x, w, arithmetic=a, threads=1)
    reps = 4
    wall, cpu = timed(lambda: accsim.linear(x, w, arithmetic=a, threads=1), reps)
    return reps * 256 ** 3 / wall, reps * 256 ** 3 / cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--bench-gemm", default=os.path.join(REPO, "build", "release", "tests", "bench", "bench_gemm"),
                    help="a bench_gemm built with the same flags as the module (release or ci preset)")
    ap.add_argument("--write", metavar="DOC")
    args = ap.parse_args()

    torch.set_num_threads(1)
    load0 = os.getloadavg()
    gemm_wall, gemm_cpu, label = bench_gemm(args.bench_gemm)
    dense_wall, dense_cpu = dense_rate()

    trace = os.path.join(REPO, "traces", "fmnist_resnet")
    info = json.load(open(os.path.join(trace, "trace.json")))
    macs = info["model"]["macs_per_image"]
    images, labels = fm.load_raw("train")
    x = torch.from_numpy(fm.preprocess(images[:128 * args.batches]))
    y = torch.from_numpy(labels[:128 * args.batches])
    net = OnnxNet(os.path.join(trace, "model.onnx"))
    arith = [a for _, a in accsim.layer_arithmetic(os.path.join(trace, "model.onnx"))]

    # 2. Forward only, 1 thread: stacked (default), per sample (the executor's loop), and with fine's masks.
    def forward(grad, per_sample=False):
        net.set_accsim(arith, grad=grad, threads=1)
        if per_sample:  # the executor one sample at a time, as before the stacked path
            finetune_layers.accsim = _PerSample(accsim)
        try:
            with torch.no_grad():
                return timed(lambda: net(x[:128]))
        finally:
            finetune_layers.accsim = accsim
    fwd = {k: forward(*v) for k, v in {"stacked": ("ste",), "per_sample": ("ste", True), "fine": ("fine",)}.items()}
    fwd_macs = 128 * macs

    # 3. Training steps, 2 threads.
    net.set_accsim(arith, grad="ste", threads=2)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    Timer.forward_seconds = 0.0

    def steps():
        for b in range(args.batches):
            loss = F.cross_entropy(net(x[b * 128:(b + 1) * 128]), y[b * 128:(b + 1) * 128])
            opt.zero_grad()
            loss.backward()
            opt.step()
    step_wall, step_cpu = timed(steps)
    share = Timer.forward_seconds / step_wall
    step_wall /= args.batches
    step_cpu /= args.batches
    load1 = os.getloadavg()

    def rate(wall, cpu):
        return (f"{fwd_macs / wall / 1e6:.0f} M MAC/s | {fwd_macs / cpu / 1e6:.0f} M MAC/s "
                f"({fwd_macs / cpu / gemm_cpu:.2f}× bench_gemm, {fwd_macs / cpu / dense_cpu:.2f}× the same "
                "arithmetic on 256³)")
    body = (
        f"Measured by `scripts/finetune_bench.py --batches {args.batches}` on {os.cpu_count()} cores, "
        f"load average {load0[0]:.1f} before and {load1[0]:.1f} after ("
        + ("other jobs shared the machine: wall-clock figures are slower than on an idle machine; "
           if max(load0[0], load1[0]) > 2 else "")
        + "CPU figures are the process's own CPU seconds).\n\n"
        "| what | wall clock | CPU time |\n|---|---|---|\n"
        f"| reference GEMM, `bench_gemm` {label} (e4m3 inputs, exact products), 256³, 1 thread | "
        f"{gemm_wall / 1e6:.0f} M MAC/s | {gemm_cpu / 1e6:.0f} M MAC/s |\n"
        f"| the same 256³ GEMM through the bindings with `accsim run`'s arithmetic (e3m4 inputs, M7E4 products), "
        f"1 thread | {dense_wall / 1e6:.0f} M MAC/s | {dense_cpu / 1e6:.0f} M MAC/s "
        f"({dense_cpu / gemm_cpu:.2f}× bench_gemm) |\n"
        f"| bindings' forward of ResNet-8 (M7E4 defaults), batch of 128, 1 thread, samples stacked into a few "
        f"GEMMs | {rate(*fwd['stacked'])} |\n"
        f"| the same, the executor one sample at a time (`per_sample=True`, the path before the stacking) | "
        f"{rate(*fwd['per_sample'])} |\n"
        f"| the same with the masks of `fine` (replay of every accumulation) | "
        f"{fwd['fine'][0]:.2f} s | {fwd['fine'][1]:.2f} CPU s, {fwd['fine'][1] / fwd['stacked'][1]:.1f}× the "
        "stacked forward |\n"
        f"| fine-tuning step (STE, M7E4), batch of 128, 2 threads | {step_wall:.2f} s, {100 * share:.0f}% of it "
        f"in the bindings' forward | {step_cpu:.2f} CPU s |\n"
        f"| one epoch (469 batches), **projected** from those {args.batches} steps | {step_wall * 469 / 60:.1f} min | "
        f"{step_cpu * 469 / 60:.1f} CPU min |\n")
    body += measured_epoch()
    print(body)
    if args.write:
        doctools.replace_block(args.write, "finetune_bench.py", body)


class _PerSample:
    """The accsim module with conv2d/linear forced to per_sample=True."""

    def __init__(self, module):
        self._m = module

    def __getattr__(self, name):
        f = getattr(self._m, name)
        if name in ("conv2d", "linear"):
            return lambda *a, **k: f(*a, per_sample=True, **k)
        return f


def measured_epoch():
    """The `full` stage of the shipped fine-tuned trace: one epoch of the training split, measured."""
    path = os.path.join(REPO, "traces", "fmnist_resnet_m7e4_ft", "trace.json")
    ft = json.load(open(path))["provenance"]["finetune"]
    full = [s for s in ft["stages"] if s["stage"] == "full" and s["epochs"] == 1 and "cpu_seconds" in s]
    if not full:
        return "\nThe shipped trace's recipe has no measured full epoch.\n"
    s = full[0]
    return (
        f"\n**Measured epoch**: the `full` stage of `traces/fmnist_resnet_m7e4_ft` (its `trace.json`, "
        f"`provenance.finetune.stages`), {s['steps']} batches of {ft['batch_size']} = one epoch of the 60,000 "
        f"training images with the M7E4 accumulator (STE, {ft['accsim_threads']} accsim threads, "
        f"{ft['cpu_count']} cores): **{s['seconds'] / 60:.1f} min** of wall clock at `nice -n 10` with the load "
        f"average at {s['load_average'][0]:g} when it started and {s['load_average'][1]:g} when it ended; "
        f"{s['cpu_seconds'] / 60:.1f} CPU min of the process ({s['cpu_seconds'] / 120:.1f} min if it had both "
        f"cores to itself); {100 * s['bindings_forward_seconds'] / s['seconds']:.0f}% of the wall clock in the "
        "bindings' forward.\n")


if __name__ == "__main__":
    main()
