#!/usr/bin/python3
"""Speed of fine-tuning through the bindings, for docs/finetune.md.

  scripts/finetune_bench.py [--batches 8] [--write docs/finetune.md]

Measures, in one run on this machine:
1. the reference GEMM's emulated MAC/s on one core (tests/bench/bench_gemm,
   BM_ReferenceGemm with the paper's M7E4 accumulator, chunks of 16, 1 thread);
2. the bindings' forward of ResNet-8 (traces/fmnist_resnet, `accsim run`'s
   M7E4 defaults) on batches of 128 training images, 1 thread: MAC/s per core,
   and its ratio to (1);
3. fine-tuning steps (STE, M7E4, 2 threads): seconds per batch of 128, the share
   spent in the bindings' forward, and the time of one epoch of 60,000 images
   projected from them (469 batches; a projection, not a measured epoch).
The load average is printed with the figures: other jobs on the machine slow
every number here.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import doctools  # noqa: E402
import fmnist_models as fm  # noqa: E402
from finetune_layers import OnnxNet, Timer, accsim  # noqa: E402

REPO = doctools.REPO


def bench_gemm(path):
    out = subprocess.run([path, "--benchmark_filter=BM_ReferenceGemm/acc:0/chunked:1/threads:1/",
                          "--benchmark_format=json", "--benchmark_min_time=1"],
                         capture_output=True, text=True, check=True).stdout
    b = json.loads(out)["benchmarks"][0]
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
    macs = 256 ** 3  # bench_gemm's kSize^3 per iteration
    return macs / (b["real_time"] * scale), macs / (b["cpu_time"] * scale), b["label"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--bench-gemm", default=os.path.join(REPO, "build", "release", "tests", "bench", "bench_gemm"),
                    help="a bench_gemm built with the same flags as the module (release or ci preset)")
    ap.add_argument("--write", metavar="DOC")
    args = ap.parse_args()

    torch.set_num_threads(1)
    load0 = os.getloadavg()
    gemm_wall, gemm_cpu, label = bench_gemm(args.bench_gemm)

    trace = os.path.join(REPO, "traces", "fmnist_resnet")
    info = json.load(open(os.path.join(trace, "trace.json")))
    macs = info["model"]["macs_per_image"]
    images, labels = fm.load_raw("train")
    x = torch.from_numpy(fm.preprocess(images[:128 * args.batches]))
    y = torch.from_numpy(labels[:128 * args.batches])
    net = OnnxNet(os.path.join(trace, "model.onnx"))
    arith = [a for _, a in accsim.layer_arithmetic(os.path.join(trace, "model.onnx"))]

    # 2. Forward only, 1 thread.
    net.set_accsim(arith, threads=1)
    Timer.forward_seconds = 0.0
    cpu0 = time.process_time()
    with torch.no_grad():
        for b in range(min(2, args.batches)):
            net(x[b * 128:(b + 1) * 128])
    fwd_macs = min(2, args.batches) * 128 * macs
    fwd_wall, fwd_cpu = fwd_macs / Timer.forward_seconds, fwd_macs / (time.process_time() - cpu0)

    # 3. Training steps, 2 threads.
    net.set_accsim(arith, grad="ste", threads=2)
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    Timer.forward_seconds = 0.0
    t0, cpu0 = time.perf_counter(), time.process_time()
    for b in range(args.batches):
        loss = F.cross_entropy(net(x[b * 128:(b + 1) * 128]), y[b * 128:(b + 1) * 128])
        opt.zero_grad()
        loss.backward()
        opt.step()
    step = (time.perf_counter() - t0) / args.batches
    step_cpu = (time.process_time() - cpu0) / args.batches  # all threads of this process
    share = Timer.forward_seconds / (step * args.batches)
    load1 = os.getloadavg()

    body = (
        f"Measured by `scripts/finetune_bench.py --batches {args.batches}` on {os.cpu_count()} cores, "
        f"load average {load0[0]:.1f} before and {load1[0]:.1f} after: other engineers' builds and training "
        "shared the machine, so wall-clock figures are slower than on an idle machine; CPU-time figures "
        "(the process's own CPU seconds) are less affected.\n\n"
        "| what | wall clock | CPU time |\n|---|---|---|\n"
        f"| reference GEMM, `bench_gemm` {label}, 1 thread | {gemm_wall / 1e6:.0f} M MAC/s | {gemm_cpu / 1e6:.0f} M MAC/s |\n"
        f"| bindings' forward of ResNet-8 (M7E4 defaults), batches of 128, 1 thread | {fwd_wall / 1e6:.0f} M MAC/s "
        f"({fwd_wall / gemm_wall:.2f}× bench_gemm) | {fwd_cpu / 1e6:.0f} M MAC/s ({fwd_cpu / gemm_cpu:.2f}× bench_gemm) |\n"
        f"| fine-tuning step (STE, M7E4), batch of 128, 2 threads | {step:.2f} s, {100 * share:.0f}% of it in the "
        f"bindings' forward | {step_cpu:.2f} CPU s |\n"
        f"| one epoch (469 batches), **projected** from those {args.batches} steps | {step * 469 / 60:.1f} min | "
        f"{step_cpu * 469 / 60:.1f} CPU min, {step_cpu * 469 / 120:.1f} min if both cores were ours |\n")
    print(body)
    if args.write:
        doctools.replace_block(args.write, "finetune_bench.py", body)


if __name__ == "__main__":
    main()
