#!/usr/bin/python3
"""Export a PyTorch classifier and a set of samples as an accsim trace.

A trace is a folder holding model.onnx, inputs.npy, labels.npy, golden.npy and
trace.json; traces/README.md is its specification.

Library use (any torch.nn.Module taking one NCHW float32 tensor):

    from export_trace import export_trace
    export_trace(model, inputs, labels, "traces/my_net", "my_net",
                 dataset={...}, preprocessing={...}, provenance_extra={...})

Command line (re-export a checkpoint written by scripts/train_fmnist.py):

    /usr/bin/python3 scripts/export_trace.py --checkpoint build/fmnist/resnet.pt \
        --out traces/fmnist_resnet --samples 2000        # or --samples 10000
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import sys

import numpy as np
import torch

try:
    import onnx
    from onnx import numpy_helper, shape_inference
except ImportError:  # export still works; checks and MAC counting from ONNX are skipped
    onnx = None

TRACE_FORMAT = "accsim-trace"
TRACE_FORMAT_VERSION = 1
OPSET = 13


# ---------------------------------------------------------------------------
# A small NumPy interpreter for the ONNX ops the shipped traces use (the
# CNNs' and the vision transformer's). It is
# only a check that the exported graph (after the exporter's constant folding
# and BatchNorm fusion) computes what PyTorch computed; it is not fast.
# ---------------------------------------------------------------------------
def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pads(a, nd):
    p = list(a.get("pads", [0] * (2 * nd)))
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise NotImplementedError("auto_pad")
    return p


def _im2col(x, kh, kw, sh, sw, dh, dw, pads, pad_value=0.0):
    n, c, h, w = x.shape
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])),
               constant_values=pad_value)
    ho = (x.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (x.shape[3] - dw * (kw - 1) - 1) // sw + 1
    cols = np.empty((n, c, kh, kw, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = x[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh,
                                 j * dw:j * dw + sw * (wo - 1) + 1:sw]
    return cols, ho, wo


def _run_node(node, v):
    op, a = node.op_type, _attrs(node)
    ins = [v[i] if i else None for i in node.input]
    if op == "Conv":
        x, w = ins[0], ins[1]
        b = ins[2] if len(ins) > 2 else None
        g = a.get("group", 1)
        kh, kw = w.shape[2], w.shape[3]
        sh, sw = a.get("strides", [1, 1])
        dh, dw = a.get("dilations", [1, 1])
        cols, ho, wo = _im2col(x.astype(np.float64), kh, kw, sh, sw, dh, dw, _pads(a, 2))
        n, c = x.shape[:2]
        cg, og = c // g, w.shape[0] // g
        out = np.empty((n, w.shape[0], ho, wo))
        for gi in range(g):
            cg_cols = cols[:, gi * cg:(gi + 1) * cg].reshape(n, cg * kh * kw, ho * wo)
            wg = w[gi * og:(gi + 1) * og].reshape(og, -1).astype(np.float64)
            out[:, gi * og:(gi + 1) * og] = np.einsum("ok,nkp->nop", wg, cg_cols).reshape(n, og, ho, wo)
        if b is not None:
            out += b.astype(np.float64)[None, :, None, None]
        return [out.astype(np.float32)]
    if op == "Relu":
        return [np.maximum(ins[0], 0).astype(np.float32)]
    if op == "Add":
        return [(ins[0] + ins[1]).astype(np.float32)]
    if op == "MaxPool":
        if a.get("ceil_mode", 0):
            raise NotImplementedError("MaxPool ceil_mode")
        kh, kw = a["kernel_shape"]
        sh, sw = a.get("strides", [1, 1])
        dh, dw = a.get("dilations", [1, 1])
        cols, _, _ = _im2col(ins[0], kh, kw, sh, sw, dh, dw, _pads(a, 2), -np.inf)
        return [cols.max(axis=(2, 3)).astype(np.float32)]
    if op == "AveragePool":
        if a.get("ceil_mode", 0) or any(_pads(a, 2)):
            raise NotImplementedError("AveragePool with pads/ceil_mode")
        kh, kw = a["kernel_shape"]
        sh, sw = a.get("strides", [1, 1])
        cols, _, _ = _im2col(ins[0].astype(np.float64), kh, kw, sh, sw, 1, 1, [0, 0, 0, 0])
        return [cols.mean(axis=(2, 3)).astype(np.float32)]
    if op == "GlobalAveragePool":
        return [ins[0].astype(np.float64).mean(axis=(2, 3), keepdims=True).astype(np.float32)]
    if op == "Flatten":
        ax = a.get("axis", 1)
        x = ins[0]
        return [x.reshape(int(np.prod(x.shape[:ax])), -1)]
    if op == "Reshape":
        return [ins[0].reshape([int(s) for s in ins[1]])]
    if op == "Gemm":
        A, B = ins[0].astype(np.float64), ins[1].astype(np.float64)
        if a.get("transA", 0):
            A = A.T
        if a.get("transB", 0):
            B = B.T
        y = a.get("alpha", 1.0) * (A @ B)
        if len(ins) > 2 and ins[2] is not None:
            y = y + a.get("beta", 1.0) * ins[2].astype(np.float64)
        return [y.astype(np.float32)]
    if op == "MatMul":
        return [(ins[0].astype(np.float64) @ ins[1].astype(np.float64)).astype(np.float32)]
    if op == "BatchNormalization":
        x, s, bb, m, var = ins[:5]
        eps = a.get("epsilon", 1e-5)
        sh = (1, -1) + (1,) * (x.ndim - 2)
        y = (x - m.reshape(sh)) / np.sqrt(var.reshape(sh) + eps) * s.reshape(sh) + bb.reshape(sh)
        return [y.astype(np.float32)]
    if op == "Identity":
        return [ins[0]]
    if op == "Constant":
        return [numpy_helper.to_array(a["value"]) if "value" in a else None]
    # Transformer operators: float64 where PyTorch computes more than one
    # float operation per element, the rest as NumPy's float32 does.
    binary = {"Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power, "Equal": np.equal}
    if op in binary:
        return [binary[op](ins[0], ins[1])]
    if op == "Sqrt":
        return [np.sqrt(ins[0])]
    if op == "Neg":
        return [-ins[0]]
    if op == "Erf":
        from math import erf
        return [np.vectorize(erf)(ins[0].astype(np.float64)).astype(np.float32)]
    if op == "Tanh":
        return [np.tanh(ins[0].astype(np.float64)).astype(np.float32)]
    if op == "Softmax":
        x = ins[0].astype(np.float64)
        e = np.exp(x - x.max(axis=a.get("axis", -1), keepdims=True))
        return [(e / e.sum(axis=a.get("axis", -1), keepdims=True)).astype(np.float32)]
    if op == "LayerNormalization":
        x = ins[0].astype(np.float64)
        axes = tuple(range(a.get("axis", -1) % x.ndim, x.ndim))
        mu = x.mean(axis=axes, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
        y = (x - mu) / np.sqrt(var + a.get("epsilon", 1e-5)) * ins[1]
        if len(ins) > 2 and ins[2] is not None:
            y = y + ins[2]
        return [y.astype(np.float32)]
    if op == "ReduceMean":
        axes = a.get("axes", ins[1].tolist() if len(ins) > 1 else None)
        return [ins[0].astype(np.float64).mean(axis=tuple(axes) if axes else None,
                                               keepdims=bool(a.get("keepdims", 1))).astype(np.float32)]
    if op == "Transpose":
        return [np.transpose(ins[0], a.get("perm"))]
    if op == "Gather":
        return [np.take(ins[0], ins[1], axis=a.get("axis", 0))]
    if op == "Slice":
        x = ins[0]
        axes = ins[3].tolist() if len(ins) > 3 else list(range(len(ins[1])))
        steps = ins[4].tolist() if len(ins) > 4 else [1] * len(axes)
        idx = [slice(None)] * x.ndim
        for st, en, ax, sp in zip(ins[1].tolist(), ins[2].tolist(), axes, steps):
            idx[ax] = slice(st, en, sp)
        return [x[tuple(idx)]]
    if op == "Concat":
        return [np.concatenate(ins, axis=a["axis"])]
    if op == "Unsqueeze":
        axes = a.get("axes", ins[1].tolist() if len(ins) > 1 else None)
        return [np.expand_dims(ins[0], tuple(axes))]
    if op == "Squeeze":
        axes = a.get("axes", ins[1].tolist() if len(ins) > 1 else None)
        return [np.squeeze(ins[0], tuple(axes) if axes is not None else None)]
    if op == "Expand":
        return [ins[0] * np.ones(ins[1].tolist(), dtype=ins[0].dtype)]
    if op == "Where":
        return [np.where(ins[0], ins[1], ins[2])]
    if op == "Cast":
        return [ins[0].astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[a["to"]])]
    if op == "Shape":
        return [np.array(ins[0].shape, dtype=np.int64)]
    if op == "ConstantOfShape":
        value = numpy_helper.to_array(a["value"]) if "value" in a else np.zeros(1, np.float32)
        return [np.full(ins[0].tolist(), value.reshape(-1)[0], dtype=value.dtype)]
    if op == "Split":
        axis = a.get("axis", 0)
        sizes = a.get("split", ins[1].tolist() if len(ins) > 1 else None)
        if sizes is None:
            return np.split(ins[0], len(node.output), axis=axis)
        return np.split(ins[0], np.cumsum(sizes)[:-1], axis=axis)
    raise NotImplementedError(f"numpy reference has no {op}")


def run_onnx_numpy(model_proto, x, values=None):
    """Run an ONNX graph on one input array with NumPy; returns the first
    output (and fills `values`, when given, with every tensor by name)."""
    g = model_proto.graph
    v = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    v[g.input[0].name] = x
    for node in g.node:
        for name, val in zip(node.output, _run_node(node, v)):
            v[name] = val
    if values is not None:
        values.update(v)
    return v[g.output[0].name]


# ---------------------------------------------------------------------------
def onnx_macs(model_proto, sample=None):
    """MACs per inference of Conv, Gemm and MatMul nodes, from inferred shapes
    (or, given a sample, from the shapes the NumPy interpreter computes)."""
    shapes = {}
    if sample is not None:
        values = {}
        run_onnx_numpy(model_proto, sample, values)
        shapes = {name: list(np.shape(val)) for name, val in values.items()}
    else:
        m = shape_inference.infer_shapes(model_proto)
        for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
            dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            shapes[vi.name] = dims
        for t in m.graph.initializer:
            shapes[t.name] = list(t.dims)
    per_node, total = [], 0
    for node in model_proto.graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        a = _attrs(node)
        if node.op_type == "Conv":
            w = shapes[node.input[1]]
            out = shapes[node.output[0]]
            macs = int(np.prod(out)) * int(np.prod(w[1:]))
            shape = {"weight": w, "output": out}
        else:
            A, B = shapes[node.input[0]], shapes[node.input[1]]
            if node.op_type == "Gemm":
                Mdim = A[1] if a.get("transA", 0) else A[0]
                K = A[0] if a.get("transA", 0) else A[1]
                N = B[0] if a.get("transB", 0) else B[1]
            else:  # batched: M counts every matrix of the batch
                Mdim, K, N = int(np.prod(A[:-1])), A[-1], B[-1]
                if len(B) > 2:
                    Mdim = int(np.prod(np.broadcast_shapes(tuple(A[:-2]), tuple(B[:-2])))) * A[-2]
            macs = int(Mdim) * int(K) * int(N)
            shape = {"M": int(Mdim), "K": int(K), "N": int(N)}
        per_node.append({"node": node.name, "op": node.op_type, "macs": macs, **shape})
        total += macs
    return total, per_node


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


@torch.no_grad()
def torch_logits(model, inputs, batch_size=1):
    """FP32 logits of `model` in eval mode, one forward per `batch_size` samples."""
    model.eval()
    out = []
    x = torch.from_numpy(inputs)
    for i in range(0, len(x), batch_size):
        out.append(model(x[i:i + batch_size]).float().numpy())
    return np.concatenate(out).astype(np.float32)


def export_trace(model, inputs, labels, out_dir, name, dataset, preprocessing,
                 provenance_extra=None, full_test_accuracy=None, opset=OPSET,
                 verify_samples=16, golden_batch_size=1):
    """Write an accsim trace folder and return its trace.json contents.

    model         torch.nn.Module, one input [1, C, H, W] float32 -> [1, classes]
    inputs        np.float32 [N, C, H, W], already preprocessed
    labels        integer [N]
    dataset       dict describing the samples (name, split, first_index, ...)
    preprocessing dict describing how inputs were made from raw data
    provenance_extra  dict merged into trace.json "provenance"
    full_test_accuracy  optional dict {"top1", "correct", "samples"} measured
                  by the caller on the whole test split
    """
    os.makedirs(out_dir, exist_ok=True)
    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    assert inputs.ndim == 4 and len(inputs) == len(labels) > 0
    n = len(inputs)
    model = model.eval().float()

    # --- ONNX, static shape [1, C, H, W] -----------------------------------
    onnx_path = os.path.join(out_dir, "model.onnx")
    dummy = torch.from_numpy(inputs[:1].copy())
    torch.onnx.export(model, dummy, onnx_path, export_params=True,
                      opset_version=opset, do_constant_folding=True,
                      input_names=["input"], output_names=["logits"],
                      training=torch.onnx.TrainingMode.EVAL)

    # --- golden logits from the framework itself ----------------------------
    golden = torch_logits(model, inputs, golden_batch_size)
    pred = golden.argmax(axis=1)
    correct = int((pred == labels).sum())

    np.save(os.path.join(out_dir, "inputs.npy"), inputs)
    np.save(os.path.join(out_dir, "labels.npy"), labels)
    np.save(os.path.join(out_dir, "golden.npy"), golden)

    info = {
        "format": TRACE_FORMAT,
        "format_version": TRACE_FORMAT_VERSION,
        "name": name,
        "files": {"model": "model.onnx", "inputs": "inputs.npy",
                  "labels": "labels.npy", "golden": "golden.npy"},
        "num_samples": n,
        "dataset": dataset,
        "preprocessing": preprocessing,
        "framework": {"name": "torch", "version": torch.__version__,
                      "numpy": np.__version__,
                      "onnx": onnx.__version__ if onnx else None},
        "model": {
            "input_name": "input",
            "input_shape": [1] + list(inputs.shape[1:]),
            "input_dtype": "float32",
            "output_name": "logits",
            "output_shape": [1, int(golden.shape[1])],
            "output_dtype": "float32",
            "batch": "static 1: run the graph once per sample",
            "onnx_opset": opset,
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "onnx_sha256": _sha256(onnx_path),
        },
        "golden": {"dtype": "float32", "shape": list(golden.shape),
                   "computed_by": f"torch {torch.__version__} eval mode, FP32, CPU",
                   "torch_threads": torch.get_num_threads(),
                   "batch_size": golden_batch_size},
        "accuracy": {"framework_top1": correct / n, "framework_correct": correct,
                     "samples": n, "tie_break": "lowest class index (argmax)"},
    }
    if full_test_accuracy is not None:
        info["accuracy"]["full_test_top1"] = full_test_accuracy["top1"]
        info["accuracy"]["full_test_correct"] = full_test_accuracy["correct"]
        info["accuracy"]["full_test_samples"] = full_test_accuracy["samples"]

    if onnx is not None:
        proto = onnx.load(onnx_path)
        onnx.checker.check_model(proto, full_check=True)
        op_counts = {}
        for node in proto.graph.node:
            op_counts[node.op_type] = op_counts.get(node.op_type, 0) + 1
        total_macs, per_node = onnx_macs(proto, inputs[:1])
        info["model"].update({
            "ir_version": proto.ir_version,
            "producer": f"{proto.producer_name} {proto.producer_version}",
            "op_types": sorted(op_counts),
            "op_counts": dict(sorted(op_counts.items())),
            "batchnorm_folded_into_conv": "BatchNormalization" not in op_counts,
            "macs_per_image": total_macs,
            "macs_by_node": per_node,
            "onnx_parameters": int(sum(np.prod(t.dims) for t in proto.graph.initializer)),
        })
        k = min(verify_samples, n)
        diffs, agree = [], 0
        for i in range(k):
            y = run_onnx_numpy(proto, inputs[i:i + 1])
            diffs.append(float(np.max(np.abs(y[0] - golden[i]))))
            agree += int(np.argmax(y[0]) == pred[i])
        info["verification"] = {
            "onnx_checker": "passed (full_check)",
            "numpy_onnx_reference": {"samples": k, "max_abs_diff_vs_golden": max(diffs),
                                     "argmax_agree": agree},
        }
    else:
        info["model"]["op_types"] = None
        info["verification"] = {"onnx_checker": "skipped (python onnx not installed)"}

    prov = {
        "export_script": "scripts/export_trace.py",
        "export_date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform(), "python": platform.python_version()},
    }
    prov.update(provenance_extra or {})
    info["provenance"] = prov

    with open(os.path.join(out_dir, "trace.json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    return info


# ---------------------------------------------------------------------------
def main(argv=None):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import fmnist_models as fm

    ap = argparse.ArgumentParser(description="Re-export a train_fmnist.py checkpoint as an accsim trace.")
    ap.add_argument("--checkpoint", required=True, help=".pt written by train_fmnist.py")
    ap.add_argument("--out", required=True, help="trace folder to write")
    ap.add_argument("--name", default=None, help="trace name (default: folder name)")
    ap.add_argument("--samples", type=int, default=2000,
                    help="first N images of the 10k test split (10000 = all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--verify-samples", type=int, default=16)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    ckpt = torch.load(args.checkpoint, map_location="cpu")
    model = fm.build_model(ckpt["model"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()

    images, labels = fm.load_raw("test")
    n = min(args.samples, len(images))
    mean, std = ckpt["mean"], ckpt["std"]
    inputs = fm.preprocess(images[:n], mean, std)
    name = args.name or os.path.basename(os.path.normpath(args.out))
    prov = dict(ckpt["provenance"])
    prov["export_command"] = " ".join(["scripts/export_trace.py"] + (argv or sys.argv[1:]))
    info = export_trace(model, inputs, labels[:n], args.out, name,
                        fm.dataset_record(n), fm.preprocessing_record(mean, std),
                        prov, full_test_accuracy=ckpt.get("full_test_accuracy"),
                        verify_samples=args.verify_samples, opset=ckpt.get("opset", OPSET))
    acc = info["accuracy"]
    print(f"{args.out}: {n} samples, top-1 {acc['framework_top1']:.4f} "
          f"({acc['framework_correct']}/{n}), ops {info['model'].get('op_types')}")


if __name__ == "__main__":
    main()
