#!/usr/bin/python3
"""Writes tests/network/corpus/ops/: small ONNX models of the operators a
transformer uses, each with an input and the output an independent
implementation computed for it (PyTorch for what PyTorch exports, NumPy for
hand-built graphs that exercise corners PyTorch never emits). test_ops.cpp
runs each model through accsim's FP32 executor and compares.

    /usr/bin/python3 tests/network/make_op_corpus.py

Each case is <name>.onnx, <name>.in.npy, <name>.out.npy. Names ending in
"_exact" hold only data movement and exactly rounded float operations: accsim
must reproduce their outputs bit for bit. The files are committed; rerun this
only to add cases (torch 1.13, onnx 1.12).
"""
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "ops")


def save(name, model_bytes, x, y):
    with open(os.path.join(OUT, name + ".onnx"), "wb") as f:
        f.write(model_bytes)
    np.save(os.path.join(OUT, name + ".in.npy"), np.ascontiguousarray(x, dtype=np.float32))
    np.save(os.path.join(OUT, name + ".out.npy"), np.ascontiguousarray(y, dtype=np.float32))


def export_torch(name, module, x, opset):
    module.eval()
    path = os.path.join(OUT, name + ".onnx")
    with torch.no_grad():
        y = module(torch.from_numpy(x)).numpy()
        torch.onnx.export(module, torch.from_numpy(x), path, opset_version=opset, do_constant_folding=True,
                          input_names=["x"], output_names=["y"])
    with open(path, "rb") as f:
        save(name, f.read(), x, y)
    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    print(f"{name}: opset {opset}, ops {ops}")


class Block(nn.Module):
    """A pre-norm transformer encoder block, attention written out."""

    def __init__(self, dim=8, heads=2, gelu="none"):
        super().__init__()
        self.heads, self.hd = heads, dim // heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc1, self.fc2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)
        self.act = nn.GELU(approximate=gelu)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4)
        a = ((q @ k.transpose(-2, -1)) * self.hd ** -0.5).softmax(-1)
        x = x + self.proj((a @ v).transpose(1, 2).reshape(b, t, c))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class Movement(nn.Module):
    """Split, Slice, Gather, Squeeze/Unsqueeze, Expand, Concat, Transpose,
    Where on a constant mask, Neg, Cast, Equal."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mask", torch.tensor([[True, False, True, False]]))
        self.cls = nn.Parameter(torch.arange(4, dtype=torch.float32).reshape(1, 1, 4))

    def forward(self, x):  # x [1, 6, 4]
        a, b = x.split([2, 4], dim=1)
        c = a.unsqueeze(0).squeeze(0).transpose(1, 2)          # [1, 4, 2]
        d = b[:, ::2, 1:]                                        # [1, 2, 3]
        e = torch.where(self.mask, x, -x)                        # [1, 6, 4]
        f = x[:, 3]                                              # Gather: [1, 4]
        g = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)  # [1, 7, 4]
        h = (x == x[:, :1]).to(torch.float32)                    # Equal, Cast
        return torch.cat([c.flatten(1), d.flatten(1), e.flatten(1), f, g.flatten(1), h.flatten(1),
                          x.to(torch.float64).to(torch.float32).flatten(1)], dim=1)


class Arith(nn.Module):
    """Broadcasting Sub/Mul/Div/Add/Pow, Sqrt, ReduceMean, Erf, Tanh."""

    def forward(self, x):  # x [1, 3, 5]
        m = x.mean(-1, keepdim=True)
        v = (x - m).pow(2).mean(-1, keepdim=True)
        y = (x - m) / torch.sqrt(v + 1e-5)
        return torch.cat([y, torch.erf(x), torch.tanh(x), x * 0.5 + 1, x.mean(1, keepdim=True) / 3], dim=1)


class BatchedMatMul(nn.Module):
    """Activation x activation with a broadcast batch dimension, and a
    constant batched (per-head) B."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(3, 4, 2))

    def forward(self, x):  # x [2, 3, 4, 4]
        y = x @ x.transpose(-1, -2)[:1]   # [2,3,4,4] x [1,3,4,4]
        z = x @ self.w                    # [2,3,4,4] x [3,4,2]
        return torch.cat([y.flatten(), z.flatten()]).reshape(1, -1)


def hand_built():
    """Corners PyTorch does not export: negative Slice steps, Squeeze without
    axes, Gather with negative 2-D indices, Split by an input, shape
    arithmetic through Shape/Gather/Unsqueeze/Concat into Reshape."""
    x = np.arange(1, 25, dtype=np.float32).reshape(1, 2, 3, 4) / 7
    ints = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)
    nodes = [
        helper.make_node("Slice", ["x", "s_st", "s_en", "s_ax", "s_sp"], ["sl"]),          # [1,2,3,2] reversed
        helper.make_node("Squeeze", ["sl"], ["sq"]),                                       # [2,3,2]
        helper.make_node("Gather", ["sq", "g_idx"], ["ga"], axis=1),                       # [2,2,2,2]
        helper.make_node("Split", ["x", "sp"], ["p0", "p1"], axis=3),                     # [1,2,3,1], [1,2,3,3]
        helper.make_node("Shape", ["x"], ["shp"]),
        helper.make_node("Gather", ["shp", "zero"], ["n"], axis=0),                        # scalar 1
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),                  # [1, -1]
        helper.make_node("Reshape", ["ga", "target"], ["r0"]),
        helper.make_node("Reshape", ["p1", "target"], ["r1"]),
        helper.make_node("Neg", ["p0"], ["np0"]),
        helper.make_node("Reshape", ["np0", "target"], ["r2"]),
        helper.make_node("Concat", ["r0", "r1", "r2"], ["y"], axis=1),
    ]
    inits = [ints("s_st", [-1, 0]), ints("s_en", [-2**63, 4]), ints("s_ax", [3, 2]), ints("s_sp", [-2, 1]),
             ints("g_idx", [[-1, 0], [1, 1]]), ints("sp", [1, 3]), ints("zero", 0), ints("ax0", [0]),
             ints("minus1", [-1])]
    sl = x[:, :, :, ::-2]
    sq = np.squeeze(sl)
    ga = np.take(sq, np.array([[-1, 0], [1, 1]]), axis=1)
    p0, p1 = x[..., :1], x[..., 1:]
    y = np.concatenate([ga.reshape(1, -1), p1.reshape(1, -1), (-p0).reshape(1, -1)], axis=1)
    g = helper.make_graph(nodes, "hand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(y.shape))], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model, full_check=True)
    save("hand_shapes_exact", model.SerializeToString(), x, y)
    print("hand_shapes_exact: opset 13")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 5, 8)).astype(np.float32)
    block = Block()
    with torch.no_grad():
        for p in block.parameters():  # LayerNorm away from 1 and 0
            p.add_(0.3 * torch.randn_like(p))
    export_torch("encoder_block_opset13", block, x, 13)
    export_torch("encoder_block_opset17", block, x, 17)
    tanh_block = Block(gelu="tanh")
    tanh_block.load_state_dict(block.state_dict())
    export_torch("encoder_block_tanh_gelu", tanh_block, x, 13)
    export_torch("movement_exact", Movement(), rng.standard_normal((1, 6, 4)).astype(np.float32), 13)
    export_torch("arith", Arith(), rng.standard_normal((1, 3, 5)).astype(np.float32), 13)
    export_torch("batched_matmul", BatchedMatMul(), rng.standard_normal((2, 3, 4, 4)).astype(np.float32), 13)
    hand_built()


if __name__ == "__main__":
    main()
