#!/usr/bin/python3
"""PyTorch layers whose forward runs through accsim, and a trace's network
rebuilt from its ONNX file out of them (for scripts/finetune.py).

AccsimConv2d and AccsimLinear are drop-in nn.Conv2d / nn.Linear: with
`accsim` set to an accsim.Arithmetic they compute their forward with the
`accsim` Python module (python/, built by the project's CMake) exactly as
`accsim run` computes that node of a trace, bit for bit; with `accsim` None
they are the plain PyTorch layers (FP32, and what torch.onnx exports).

The backward is one function per gradient variant (docs/finetune.md gives
the equations):
  ste        the gradient of the exact GEMM (straight-through estimator)
  fine       minus the products whose own rounding, or the addition that took
             them in, had no derivative (flushed, swamped, saturated)
  recursive  minus the products any later step of their accumulation chain
             cut off as well (a later sum that saturated or was flushed)
"""
import glob
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_accsim():
    """Imports the `accsim` module: $ACCSIM_PYTHON_DIR, else build/release/python, else build/ci/python."""
    dirs = [os.environ.get("ACCSIM_PYTHON_DIR")] + [os.path.join(REPO, "build", p, "python") for p in ("release", "ci")]
    for d in dirs:
        if d and glob.glob(os.path.join(d, "accsim*.so")):
            if d not in sys.path:
                sys.path.insert(0, d)
            import accsim  # noqa: E402
            return accsim
    sys.exit("finetune: the accsim Python module is not built; run "
             "`cmake --build --preset release --target accsim_python` (or set ACCSIM_PYTHON_DIR)")


accsim = load_accsim()
VARIANTS = ("ste", "fine", "recursive")


# --- backward, one function per variant ------------------------------------------------

def conv_backward_ste(ctx, grad):
    """Plain STE: the gradient of y = conv(x, w) + b with exact arithmetic."""
    x, w = ctx.saved_tensors
    m = ctx.module
    gx = torch.nn.grad.conv2d_input(x.shape, w, grad, m.stride, m.padding, m.dilation, m.groups)
    gw = torch.nn.grad.conv2d_weight(x, w.shape, grad, m.stride, m.padding, m.dilation, m.groups)
    return gx, gw, grad.sum((0, 2, 3))


def conv_backward_fine(ctx, grad):
    """STE minus the products the forward's 'fine' mask dropped."""
    return _conv_minus_dropped(ctx, grad, conv_backward_ste(ctx, grad))


def conv_backward_recursive(ctx, grad):
    """STE minus the products the forward's 'recursive' mask dropped."""
    return _conv_minus_dropped(ctx, grad, conv_backward_ste(ctx, grad))


def _conv_minus_dropped(ctx, grad, ste):
    x, w = ctx.saved_tensors
    m = ctx.module
    gx, gw, gb = ste
    n, c, h, wd = x.shape
    cols = F.unfold(x, m.kernel_size, m.dilation, m.padding, m.stride)  # [N, C*kH*kW, L], rows (c, r, s)
    d_w, d_cols = accsim.drop_correction(ctx.drop, grad.reshape(n, grad.shape[1], -1).contiguous(),
                                         w.reshape(w.shape[0], -1), cols, m.groups)
    gx = gx - F.fold(torch.from_numpy(d_cols), (h, wd), m.kernel_size, m.dilation, m.padding, m.stride)
    gw = gw - torch.from_numpy(d_w).reshape(w.shape)
    return gx, gw, gb


def linear_backward_ste(ctx, grad):
    """Plain STE: the gradient of y = x W^T + b with exact arithmetic."""
    x, w = ctx.saved_tensors
    return grad @ w, grad.t() @ x, grad.sum(0)


def linear_backward_fine(ctx, grad):
    """STE minus the products the forward's 'fine' mask dropped."""
    return _linear_minus_dropped(ctx, grad, linear_backward_ste(ctx, grad))


def linear_backward_recursive(ctx, grad):
    """STE minus the products the forward's 'recursive' mask dropped."""
    return _linear_minus_dropped(ctx, grad, linear_backward_ste(ctx, grad))


def _linear_minus_dropped(ctx, grad, ste):
    x, w = ctx.saved_tensors
    gx, gw, gb = ste
    d_w, d_cols = accsim.drop_correction(ctx.drop, grad.unsqueeze(2).contiguous(), w, x.unsqueeze(2), 1)
    return gx - torch.from_numpy(d_cols).squeeze(2), gw - torch.from_numpy(d_w), gb


CONV_BACKWARD = {"ste": conv_backward_ste, "fine": conv_backward_fine, "recursive": conv_backward_recursive}
LINEAR_BACKWARD = {"ste": linear_backward_ste, "fine": linear_backward_fine, "recursive": linear_backward_recursive}


class Timer:
    """Wall-clock seconds spent in the bindings' forward, for the speed figures."""
    forward_seconds = 0.0


def _forward_masks(variant):
    return None if variant == "ste" else variant


class AccsimConv2dFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, module):
        import time
        t0 = time.perf_counter()
        out = accsim.conv2d(x.detach(), weight.detach(), None if bias is None else bias.detach(),
                            stride=module.stride, padding=module.padding, dilation=module.dilation,
                            groups=module.groups, arithmetic=module.accsim, masks=_forward_masks(module.grad),
                            threads=module.threads)
        Timer.forward_seconds += time.perf_counter() - t0
        y, info = out if isinstance(out, tuple) else (out, None)
        ctx.module = module
        ctx.drop = info["drop"] if info else None
        ctx.save_for_backward(x, weight)
        return torch.from_numpy(y)

    @staticmethod
    def backward(ctx, grad):
        gx, gw, gb = CONV_BACKWARD[ctx.module.grad](ctx, grad.contiguous())
        return gx, gw, gb if ctx.module.bias is not None else None, None


class AccsimLinearFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, module):
        import time
        t0 = time.perf_counter()
        out = accsim.linear(x.detach(), weight.detach(), None if bias is None else bias.detach(),
                            arithmetic=module.accsim, masks=_forward_masks(module.grad), threads=module.threads)
        Timer.forward_seconds += time.perf_counter() - t0
        y, info = out if isinstance(out, tuple) else (out, None)
        ctx.module = module
        ctx.drop = info["drop"] if info else None
        ctx.save_for_backward(x, weight)
        return torch.from_numpy(y)

    @staticmethod
    def backward(ctx, grad):
        gx, gw, gb = LINEAR_BACKWARD[ctx.module.grad](ctx, grad.contiguous())
        return gx, gw, gb if ctx.module.bias is not None else None, None


class AccsimConv2d(nn.Conv2d):
    """nn.Conv2d whose forward runs through accsim when `accsim` is an accsim.Arithmetic."""

    def __init__(self, *args, arithmetic=None, grad="ste", threads=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.accsim, self.grad, self.threads = arithmetic, grad, threads

    def forward(self, x):
        if self.accsim is None or self.padding_mode != "zeros":
            return super().forward(x)
        return AccsimConv2dFn.apply(x, self.weight, self.bias, self)


class AccsimLinear(nn.Linear):
    """nn.Linear whose forward runs through accsim when `accsim` is an accsim.Arithmetic."""

    def __init__(self, *args, arithmetic=None, grad="ste", threads=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.accsim, self.grad, self.threads = arithmetic, grad, threads

    def forward(self, x):
        if self.accsim is None:
            return super().forward(x)
        return AccsimLinearFn.apply(x, self.weight, self.bias, self)


# --- a trace's network from its ONNX file ---------------------------------------------

class GlobalAveragePool(nn.Module):
    """With `exact` (accsim mode), the mean is taken in double and rounded to float once, as accsim's
    executor does; otherwise adaptive_avg_pool2d, which torch.onnx exports as GlobalAveragePool."""

    def __init__(self):
        super().__init__()
        self.exact = False

    def forward(self, x):
        if self.exact:
            return x.double().mean((2, 3), keepdim=True).float()
        return F.adaptive_avg_pool2d(x, 1)


class OnnxNet(nn.Module):
    """The graph of a trace's model.onnx as torch modules: Conv -> AccsimConv2d, Gemm -> AccsimLinear, and
    Relu, Add, MaxPool, GlobalAveragePool, Flatten as torch operators. Parameters start from the ONNX
    initializers (BatchNorm is already folded into the convolutions by the export)."""

    def __init__(self, onnx_path):
        super().__init__()
        import onnx
        from onnx import numpy_helper
        proto = onnx.load(onnx_path)
        graph = proto.graph
        init = {t.name: numpy_helper.to_array(t).astype(np.float32) for t in graph.initializer}
        self.input_name = graph.input[0].name
        self.output_name = graph.output[0].name
        self.layers = nn.ModuleList()   # GEMM layers, graph order
        self.layer_names = []           # their ONNX node names
        self.pools = nn.ModuleList()
        self.steps = []                 # (op, inputs, output, payload)
        for node in graph.node:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            op = node.op_type
            if op == "Conv":
                w = init[node.input[1]]
                b = init[node.input[2]] if len(node.input) > 2 and node.input[2] else None
                pads = list(attrs.get("pads", [0, 0, 0, 0]))
                if pads[:2] != pads[2:]:
                    raise ValueError(f"{onnx_path}: {node.name}: asymmetric pads {pads}")
                if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                    raise ValueError(f"{onnx_path}: {node.name}: auto_pad is not supported")
                group = attrs.get("group", 1)
                layer = AccsimConv2d(w.shape[1] * group, w.shape[0], tuple(w.shape[2:]),
                                     stride=tuple(attrs.get("strides", [1, 1])), padding=tuple(pads[:2]),
                                     dilation=tuple(attrs.get("dilations", [1, 1])), groups=group,
                                     bias=b is not None)
                with torch.no_grad():
                    layer.weight.copy_(torch.from_numpy(w))
                    if b is not None:
                        layer.bias.copy_(torch.from_numpy(b))
                self.steps.append(("gemm", [node.input[0]], node.output[0], len(self.layers)))
                self.layers.append(layer)
                self.layer_names.append(node.name)
            elif op == "Gemm":
                if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
                    raise ValueError(f"{onnx_path}: {node.name}: only Gemm with alpha = beta = 1, transA = 0")
                w = init[node.input[1]]
                if not attrs.get("transB", 0):
                    w = np.ascontiguousarray(w.T)
                b = init[node.input[2]] if len(node.input) > 2 and node.input[2] else None
                layer = AccsimLinear(w.shape[1], w.shape[0], bias=b is not None)
                with torch.no_grad():
                    layer.weight.copy_(torch.from_numpy(w))
                    if b is not None:
                        layer.bias.copy_(torch.from_numpy(b.reshape(-1)))
                self.steps.append(("gemm", [node.input[0]], node.output[0], len(self.layers)))
                self.layers.append(layer)
                self.layer_names.append(node.name)
            elif op in ("Relu", "Add", "Flatten"):
                if op == "Flatten" and attrs.get("axis", 1) != 1:
                    raise ValueError(f"{onnx_path}: {node.name}: Flatten axis must be 1")
                self.steps.append((op, list(node.input), node.output[0], None))
            elif op == "MaxPool":
                pads = list(attrs.get("pads", [0, 0, 0, 0]))
                if pads[:2] != pads[2:] or attrs.get("ceil_mode", 0) or attrs.get("dilations", [1, 1]) != [1, 1]:
                    raise ValueError(f"{onnx_path}: {node.name}: unsupported MaxPool attributes")
                k = tuple(attrs["kernel_shape"])
                self.steps.append(("MaxPool", [node.input[0]], node.output[0],
                                   (k, tuple(attrs.get("strides", k)), tuple(pads[:2]))))
            elif op == "GlobalAveragePool":
                self.steps.append(("GlobalAveragePool", [node.input[0]], node.output[0], len(self.pools)))
                self.pools.append(GlobalAveragePool())
            else:
                raise ValueError(f"{onnx_path}: node {node.name}: operator {op} is not supported by finetune")

    def set_accsim(self, arithmetic, grad="ste", threads=0):
        """arithmetic: None (plain PyTorch), one accsim.Arithmetic, or a list with one per layer."""
        per_layer = arithmetic if isinstance(arithmetic, (list, tuple)) else [arithmetic] * len(self.layers)
        for layer, a in zip(self.layers, per_layer):
            layer.accsim, layer.grad, layer.threads = a, grad, threads
        for p in self.pools:
            p.exact = arithmetic is not None

    def forward(self, x, layer_outputs=None):
        v = {self.input_name: x}
        for op, ins, out, payload in self.steps:
            if op == "gemm":
                v[out] = self.layers[payload](v[ins[0]])
                if layer_outputs is not None:
                    layer_outputs.append(v[out])
            elif op == "Relu":
                v[out] = F.relu(v[ins[0]])
            elif op == "Add":
                v[out] = v[ins[0]] + v[ins[1]]
            elif op == "Flatten":
                v[out] = torch.flatten(v[ins[0]], 1)
            elif op == "MaxPool":
                k, s, p = payload
                v[out] = F.max_pool2d(v[ins[0]], k, s, p)
            elif op == "GlobalAveragePool":
                v[out] = self.pools[payload](v[ins[0]])
        return v[self.output_name]
