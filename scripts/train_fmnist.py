#!/usr/bin/python3
"""Train a small network on Fashion-MNIST and export it as an accsim trace.

    /usr/bin/python3 scripts/train_fmnist.py --model cnn    --out traces/fmnist_cnn
    /usr/bin/python3 scripts/train_fmnist.py --model resnet --out traces/fmnist_resnet
    /usr/bin/python3 scripts/train_fmnist.py --model vit    --out traces/fmnist_vit

Deterministic for a given seed, thread count and torch build. The checkpoint
(state dict + metadata) goes to build/fmnist/<model>.pt, which git ignores;
scripts/export_trace.py --checkpoint can re-export it with another --samples.
"""
import argparse
import datetime
import json
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist_models as fm  # noqa: E402
from export_trace import export_trace  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Per-model training recipes (the defaults used for the shipped traces).
RECIPES = {
    "cnn": dict(epochs=12, batch_size=128, optimizer="adam", lr=2e-3,
                weight_decay=0.0, augment="flip", label_smoothing=0.0),
    "resnet": dict(epochs=8, batch_size=128, optimizer="sgd", lr=0.2,
                   weight_decay=5e-4, augment="none", label_smoothing=0.0),
    "vit": dict(epochs=12, batch_size=128, optimizer="adamw", lr=2e-3,
                weight_decay=0.05, augment="flip", label_smoothing=0.0),
}

# ONNX opset each model is exported at: the transformer at 17, which has
# LayerNormalization as one operator (13 spells it out as ReduceMean, Sub,
# Pow, Sqrt, Div; accsim reads both).
OPSETS = {"cnn": 13, "resnet": 13, "vit": 17}


def augment_batch(x, mode, gen):
    """x: float [B,1,28,28] in [0,1] (before normalization)."""
    if mode in ("flip", "crop+flip"):
        flip = torch.rand(x.shape[0], generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if mode == "crop+flip":
        pad = 2
        xp = F.pad(x, (pad, pad, pad, pad))
        off = torch.randint(0, 2 * pad + 1, (x.shape[0], 2), generator=gen).tolist()
        x = torch.stack([xp[i, :, dy:dy + 28, dx:dx + 28] for i, (dy, dx) in enumerate(off)])
    return x


@torch.no_grad()
def evaluate(model, x, y, batch_size=1000):
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    return correct


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(RECIPES), required=True)
    ap.add_argument("--out", required=True, help="trace folder to write, e.g. traces/fmnist_cnn")
    ap.add_argument("--name", default=None, help="trace name (default: folder name)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--samples", type=int, default=2000, help="test images exported to the trace")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (training and golden)")
    ap.add_argument("--checkpoint", default=None, help="default build/fmnist/<model>.pt")
    ap.add_argument("--augment", choices=["none", "flip", "crop+flip"], default=None)
    ap.add_argument("--lr", type=float, default=None, help="peak one-cycle learning rate")
    ap.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], default=None)
    ap.add_argument("--weight-decay", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--label-smoothing", type=float, default=None)
    args = ap.parse_args()

    recipe = dict(RECIPES[args.model])
    for k in ("epochs", "augment", "lr", "optimizer", "weight_decay", "batch_size", "label_smoothing"):
        if getattr(args, k) is not None:
            recipe[k] = getattr(args, k)

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(args.seed)

    t_start = time.time()
    train_u8, train_y = fm.load_raw("train")
    test_u8, test_y = fm.load_raw("test")
    mean, std = fm.dataset_stats(train_u8)
    assert abs(mean - fm.FMNIST_MEAN) < 1e-12 and abs(std - fm.FMNIST_STD) < 1e-12, (mean, std)
    mean, std = fm.FMNIST_MEAN, fm.FMNIST_STD

    x_train01 = torch.from_numpy(train_u8.astype(np.float32) / np.float32(255.0))[:, None]
    y_train = torch.from_numpy(train_y)
    x_test = torch.from_numpy(fm.preprocess(test_u8, mean, std))
    y_test = torch.from_numpy(test_y)

    model = fm.build_model(args.model)
    params = fm.count_params(model)
    macs = fm.count_macs_torch(model)
    print(f"model {args.model}: {params} parameters, {macs} MACs/image; recipe {recipe}", flush=True)

    bs, epochs = recipe["batch_size"], recipe["epochs"]
    steps_per_epoch = (len(x_train01) + bs - 1) // bs
    if recipe["optimizer"] == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    elif recipe["optimizer"] == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    else:
        opt = torch.optim.SGD(model.parameters(), lr=recipe["lr"], momentum=0.9, nesterov=True,
                              weight_decay=recipe["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe["lr"], epochs=epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.25)

    t_train = time.time()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(x_train01), generator=gen)
        tot_loss, tot_correct, t_ep = 0.0, 0, time.time()
        for s in range(steps_per_epoch):
            idx = perm[s * bs:(s + 1) * bs]
            xb = augment_batch(x_train01[idx], recipe["augment"], gen)
            xb = (xb - mean) / std
            yb = y_train[idx]
            out = model(xb)
            loss = F.cross_entropy(out, yb, label_smoothing=recipe["label_smoothing"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += float(loss) * len(idx)
            tot_correct += int((out.argmax(1) == yb).sum())
        print(f"epoch {ep + 1}/{epochs}: loss {tot_loss / len(x_train01):.4f} "
              f"train acc {tot_correct / len(x_train01):.4f} ({time.time() - t_ep:.1f} s)", flush=True)
    train_time = time.time() - t_train

    correct = evaluate(model, x_test, y_test)
    full = {"top1": correct / len(x_test), "correct": correct, "samples": len(x_test)}
    print(f"full test top-1 {full['top1']:.4f} ({correct}/{len(x_test)}); "
          f"training {train_time:.1f} s", flush=True)

    provenance = {
        "train_script": "scripts/train_fmnist.py",
        "train_command": " ".join(["scripts/train_fmnist.py"] + sys.argv[1:]),
        "model_builder": f"scripts/fmnist_models.py build_model({args.model!r})",
        "seed": args.seed,
        "epochs": epochs,
        "recipe": recipe,
        "training_time_s": round(train_time, 1),
        "training_threads": args.threads,
        "train_date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "training_data": "fashion-mnist train split, 60,000 images",
    }
    ckpt_path = args.checkpoint or os.path.join(REPO, "build", "fmnist", f"{args.model}.pt")
    os.makedirs(os.path.dirname(ckpt_path), exist_ok=True)
    torch.save({"model": args.model, "opset": OPSETS[args.model], "state_dict": model.state_dict(),
                "mean": mean, "std": std,
                "provenance": provenance, "full_test_accuracy": full}, ckpt_path)
    print(f"checkpoint {ckpt_path}", flush=True)

    n = min(args.samples, len(test_u8))
    name = args.name or os.path.basename(os.path.normpath(args.out))
    info = export_trace(model, x_test[:n].numpy(), test_y[:n], args.out, name,
                        fm.dataset_record(n), fm.preprocessing_record(mean, std),
                        provenance, full_test_accuracy=full, opset=OPSETS[args.model])
    acc = info["accuracy"]
    print(f"trace {args.out}: {n} samples, top-1 {acc['framework_top1']:.4f} "
          f"({acc['framework_correct']}/{n}); ops {info['model'].get('op_types')}; "
          f"MACs/image {info['model'].get('macs_per_image')}; "
          f"verification {json.dumps(info['verification'])}; total {time.time() - t_start:.1f} s",
          flush=True)


if __name__ == "__main__":
    main()
