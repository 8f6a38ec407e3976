"""Tests of the `accsim` Python module (python/module.cpp), run by CTest
(`python.bindings`) with Debian's /usr/bin/python3 -m pytest.

Oracles: the `accsim run` CLI's own report on the shipped traces, a NumPy
float32 convolution with sequential accumulation for the lowering, hand-worked
accumulations for the masks, and dense NumPy sums for the gradient correction.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import torch

SOURCE = os.environ.get("ACCSIM_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(SOURCE, "scripts"))
from finetune_layers import OnnxNet, AccsimConv2d, accsim  # noqa: E402

ACCSIM_BIN = os.environ.get("ACCSIM_BIN", os.path.join(SOURCE, "build", "ci", "sim", "accsim"))
RESNET = os.path.join(SOURCE, "traces", "fmnist_resnet")
CNN = os.path.join(SOURCE, "traces", "fmnist_cnn")
FP32_FORMATS = dict(mul="fp32", prod="fp32", acc="fp32", order="sequential", scale="none")


def trace_inputs(trace, n):
    return np.load(os.path.join(trace, "inputs.npy"))[:n], np.load(os.path.join(trace, "labels.npy"))[:n]


# --- the executor's arithmetic, bit for bit ----------------------------------------------

@pytest.mark.parametrize("trace", [RESNET, CNN])
def test_layers_equal_the_executor_bit_for_bit(trace):
    """Every GEMM layer of the network rebuilt in PyTorch from accsim.conv2d / accsim.linear gives the
    executor's output bit for bit (run_network runs the whole ONNX graph in accsim's executor)."""
    onnx = os.path.join(trace, "model.onnx")
    x, _ = trace_inputs(trace, 12)
    net = OnnxNet(onnx)
    net.set_accsim([a for _, a in accsim.layer_arithmetic(onnx)])
    outs = []
    with torch.no_grad():
        logits = net(torch.from_numpy(x), outs).numpy()
    ref = accsim.run_network(onnx, x, layer_outputs=True)
    assert ref["layers"] == net.layer_names
    for name, got, want in zip(net.layer_names, outs, ref["layer_outputs"]):
        assert got.numpy().tobytes() == want.tobytes(), name
    assert logits.tobytes() == ref["logits"].tobytes()


BATCH_ARITHMETICS = [
    dict(),                                                          # accsim run's defaults (double lanes)
    dict(scale="channel", acc="M5E4,bias=4,round=rtz,ftz", order="sequential"),
    dict(scale="tensor", prod="exact", acc="fp16", order="chunked:8"),
    dict(mul="int8", prod="exact", acc="int24", scale="tensor"),    # no double lanes: the encodings are read
]


@pytest.mark.parametrize("kw", BATCH_ARITHMETICS)
def test_stacked_batch_equals_the_executor_per_sample(kw):
    """A batch runs as a few GEMMs of stacked samples (python/layer.cpp, run_batched); with per_sample=True
    each sample runs through net::Executor on its own. Outputs, masks and tallies must agree bit for bit: a
    grouped, strided, dilated convolution with a bias over more samples than one stack holds (per-sample
    activation scales differ), and a linear layer."""
    a = accsim.Arithmetic(**kw)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((20, 4, 64, 64)) * rng.uniform(0.1, 8, (20, 1, 1, 1))).astype(np.float32)
    x[:, :, ::3] = np.maximum(x[:, :, ::3], 0)  # ReLU-like zeros in part of the rows
    w = (0.3 * rng.standard_normal((8, 2, 3, 3))).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    got = accsim.conv2d(x, w, b, stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=2, arithmetic=a)
    want = accsim.conv2d(x, w, b, stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=2, arithmetic=a,
                         per_sample=True)
    assert got.tobytes() == want.tobytes()
    # With masks too: the replay of the stacked GEMMs gives each sample's masks and the same tallies.
    conv = dict(stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=2, arithmetic=a, masks="recursive")
    y1, i1 = accsim.conv2d(x[:9], w, b, **conv)
    y2, i2 = accsim.conv2d(x[:9], w, b, per_sample=True, **conv)
    assert y1.tobytes() == y2.tobytes() == got[:9].tobytes()
    for key in ("events", "drop"):
        assert i1[key].tobytes() == i2[key].tobytes(), key
    assert i1["reference"] == i2["reference"] and i1["replayed"] == i2["replayed"]
    xl = (rng.standard_normal((7, 100)) * rng.uniform(0.1, 8, (7, 1))).astype(np.float32)
    wl = (0.1 * rng.standard_normal((30, 100))).astype(np.float32)
    bl = rng.standard_normal(30).astype(np.float32)
    got = accsim.linear(xl, wl, bl, arithmetic=a, threads=2)
    want = accsim.linear(xl, wl, bl, arithmetic=a, per_sample=True, threads=1)
    assert got.tobytes() == want.tobytes()
    y1, i1 = accsim.linear(xl, wl, bl, arithmetic=a, masks="fine")
    y2, i2 = accsim.linear(xl, wl, bl, arithmetic=a, masks="fine", per_sample=True)
    assert y1.tobytes() == y2.tobytes() == got.tobytes()
    assert i1["drop"].tobytes() == i2["drop"].tobytes() and i1["events"].tobytes() == i2["events"].tobytes()
    assert i1["reference"] == i2["reference"] and i1["replayed"] == i2["replayed"]


@pytest.mark.parametrize("kw", BATCH_ARITHMETICS)
def test_stacked_batch_in_both_orientations(kw):
    """run_batched lays the stacked samples out as C = W * [X_0 X_1 ...] or as its transpose, whichever takes
    fewer kernel passes: many output channels at few positions (a 2x2 output, 64 channels) and a linear layer
    over many samples with few outputs take the other orientation from the test above; both must give the
    executor's bits, masks and tallies."""
    a = accsim.Arithmetic(**kw)
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((6, 4, 4, 4)) * rng.uniform(0.1, 8, (6, 1, 1, 1))).astype(np.float32)
    w = (0.3 * rng.standard_normal((64, 4, 3, 3))).astype(np.float32)
    xl = (rng.standard_normal((200, 40)) * rng.uniform(0.1, 8, (200, 1))).astype(np.float32)
    wl = (0.2 * rng.standard_normal((10, 40))).astype(np.float32)
    for run, args in ((accsim.conv2d, (x, w, None)), (accsim.linear, (xl, wl, None))):
        y1, i1 = run(*args, arithmetic=a, masks="recursive")
        y2, i2 = run(*args, arithmetic=a, masks="recursive", per_sample=True)
        assert y1.tobytes() == y2.tobytes()
        for key in ("events", "drop"):
            assert i1[key].tobytes() == i2[key].tobytes(), key
        assert i1["reference"] == i2["reference"] and i1["replayed"] == i2["replayed"]


def test_against_accsim_run_report():
    """Predictions and every layer's event tallies (from the replay behind the masks) equal what
    `accsim run` reports for the same samples, with per-layer overrides applied the same way."""
    n = 24
    flags = ["--layer", "last:acc=M6E4,bias=4,round=rtz,ftz", "--layer", "/layers/layers.0/conv1/Conv:order=chunked:32"]
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "r.json")
        subprocess.run([ACCSIM_BIN, "run", "--trace", RESNET, "--samples", str(n), "--threads", "2",
                        "--energy-samples", "0", "--report", report] + flags,
                       check=True, stdout=subprocess.DEVNULL)
        rep = json.load(open(report))
    onnx = os.path.join(RESNET, "model.onnx")
    x, labels = trace_inputs(RESNET, n)
    resolved = accsim.layer_arithmetic(onnx, layer=flags[1::2])
    assert [a.order for _, a in resolved][1] == "chunked:32"
    assert [a.acc for _, a in resolved][-1].startswith("M6E4")
    net = OnnxNet(onnx)
    net.set_accsim([a for _, a in resolved])
    with torch.no_grad():
        pred = net(torch.from_numpy(x)).numpy().argmax(1)
    assert int((pred == labels).sum()) == rep["accuracy"]["lowbit"]["correct"]
    fp32 = accsim.run_network(onnx, x, base=accsim.Arithmetic(engine="fp32"))["logits"].argmax(1)
    assert list(np.nonzero(pred != fp32)[0]) == rep["accuracy"]["lowbit"]["disagreeing_samples"]

    # run_network's tallies are the report's: the weights' rounding counted once, the rest per sample.
    events = accsim.run_network(onnx, x, layer=flags[1::2], threads=2)["events"]
    for got, entry in zip(events, rep["layers"]):
        for kind in ("weights", "quantize", "product", "accumulate", "merge"):
            assert got[kind] == {k: entry["events"][kind][k] for k in got[kind]}, (entry["name"], kind)

    # Replay tallies: each layer's input taken from the network, run again with masks="events".
    inputs = {}
    hooks = [layer.register_forward_hook(lambda mod, inp, out, i=i: inputs.__setitem__(i, inp[0]))
             for i, layer in enumerate(net.layers)]
    with torch.no_grad():
        net(torch.from_numpy(x))
    for h in hooks:
        h.remove()
    for i, (layer, entry) in enumerate(zip(net.layers, rep["layers"])):
        if isinstance(layer, AccsimConv2d):
            _, info = accsim.conv2d(inputs[i], layer.weight, layer.bias, stride=layer.stride, padding=layer.padding,
                                    groups=layer.groups, arithmetic=layer.accsim, masks="events")
        else:
            _, info = accsim.linear(inputs[i], layer.weight, layer.bias, arithmetic=layer.accsim, masks="events")
        for kind in ("product", "accumulate", "merge"):
            want = {k: entry["events"][kind][k] for k in ("ops", "overflow", "underflow", "swamp", "inexact")}
            assert info["replayed"][kind] == want, (entry["name"], kind)
            assert info["reference"][kind] == want, (entry["name"], kind)


def numpy_conv_sequential(x, w, stride, pad, dilation, groups):
    """float32 convolution, each output summed k = (c, r, s) in order from +0, products rounded to float32:
    accsim's fp32 arithmetic (mul, prod, acc fp32, sequential) written independently."""
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dilation
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), np.float32)
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    y = np.zeros((n, m, oh, ow), np.float32)
    mg = m // groups
    for o in range(m):
        g = o // mg
        acc = np.zeros((n, oh, ow), np.float32)
        for ci in range(cg):
            for r in range(kh):
                for s in range(kw):
                    patch = xp[:, g * cg + ci, r * dh:r * dh + sh * (oh - 1) + 1:sh, s * dw:s * dw + sw * (ow - 1) + 1:sw]
                    acc = (acc + (patch * w[o, ci, r, s]).astype(np.float32)).astype(np.float32)
        y[:, o] = acc
    return y


def test_conv_lowering_against_numpy():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 9, 8)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)
    got = accsim.conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2,
                        arithmetic=accsim.Arithmetic(**FP32_FORMATS))
    want = numpy_conv_sequential(x, w, (2, 1), (1, 2), (2, 1), 2)
    assert got.tobytes() == want.tobytes()


def test_threads_do_not_change_results():
    rng = np.random.default_rng(2)
    x = np.maximum(rng.standard_normal((5, 8, 10, 10)), 0).astype(np.float32)
    w = (0.2 * rng.standard_normal((8, 8, 3, 3))).astype(np.float32)
    a = accsim.Arithmetic(acc="M4E4,bias=4,round=rtz,ftz")
    y1, i1 = accsim.conv2d(x, w, padding=1, arithmetic=a, masks="recursive", threads=1)
    y2, i2 = accsim.conv2d(x, w, padding=1, arithmetic=a, masks="recursive", threads=2)
    assert y1.tobytes() == y2.tobytes()
    assert i1["drop"].tobytes() == i2["drop"].tobytes() and i1["events"].tobytes() == i2["events"].tobytes()


# --- masks, worked by hand -----------------------------------------------------------------

def test_masks_swamp_saturate_chain():
    """acc M3E4 (bias 7: largest 480), exact inputs and products, sequential:
    256 -> 256+256 = 512 saturates to 480 -> 480-256 = 224 -> 224+2 = 226 rounds back to 224 (swamped).
    fine drops products 1 (its addition saturated) and 3 (swamped); recursive also drops product 0,
    whose running sum the saturating addition cut off."""
    a = accsim.Arithmetic(mul="fp32", prod="exact", acc="M3E4,round=rne", order="sequential", scale="none")
    x = np.array([[256, 256, -256, 2]], np.float32)
    w = np.ones((1, 4), np.float32)
    y, fine = accsim.linear(x, w, arithmetic=a, masks="fine")
    _, rec = accsim.linear(x, w, arithmetic=a, masks="recursive")
    assert y[0, 0] == 224
    bits = lambda info: list(np.unpackbits(info["drop"][0, 0, 0], bitorder="little")[:4])
    assert bits(fine) == [0, 1, 0, 1]
    assert bits(rec) == [1, 1, 0, 1]
    assert fine["events"][0, 0] == 2 | 4  # swamped, saturated


def test_masks_flushed_product_and_merge():
    """Products below the product format's range are flushed (ftz) and lose their gradient; in chunked
    order a chunk sum that the merge swamps loses it for the whole chunk."""
    a = accsim.Arithmetic(mul="fp32", prod="M3E4,ftz", acc="M3E4,round=rne", order="chunked:2", scale="none")
    # product format M3E4 (bias 7): smallest normal 2^-6. Chunk 0: 64 + 1e-3 (flushed) -> 64;
    # chunk 1: 1 + 1 = 2; merge 64 + 2 = 66 -> 64 (ulp 8): swamped.
    x = np.array([[64, 1e-3, 1, 1]], np.float32)
    w = np.ones((1, 4), np.float32)
    y, fine = accsim.linear(x, w, arithmetic=a, masks="fine")
    assert y[0, 0] == 64
    assert list(np.unpackbits(fine["drop"][0, 0, 0], bitorder="little")[:4]) == [0, 1, 1, 1]
    assert fine["events"][0, 0] == 1 | 2


# --- the gradient correction -----------------------------------------------------------------

def test_drop_correction_against_dense_numpy():
    rng = np.random.default_rng(3)
    x = np.maximum(rng.standard_normal((2, 4, 6, 6)), 0).astype(np.float32)
    w = (0.3 * rng.standard_normal((6, 2, 3, 3))).astype(np.float32)
    a = accsim.Arithmetic(acc="M3E4,bias=4,round=rtz,ftz", prod="M3E4,bias=6,round=rtz,ftz")
    _, info = accsim.conv2d(x, w, padding=1, groups=2, arithmetic=a, masks="recursive")
    drop = np.unpackbits(info["drop"], axis=3, bitorder="little")[..., :18].astype(np.float32)  # [N, M, P, K]
    assert 0 < drop.mean() < 1
    g = rng.standard_normal((2, 6, 36)).astype(np.float32)
    cols = torch.nn.functional.unfold(torch.from_numpy(x), 3, padding=1).numpy()  # [N, 36, P]
    cols_g = cols.reshape(2, 2, 18, 36)  # [N, group, K, P]
    group = np.arange(6) // 3
    want_dw = np.einsum("nop,nopk,nokp->ok", g, drop, cols_g[:, group].astype(np.float64))
    want_dcols = np.zeros((2, 2, 18, 36))
    for o in range(6):
        want_dcols[:, group[o]] += np.einsum("np,npk,k->nkp", g[:, o], drop[:, o], w[o].reshape(-1))
    dw, dcols = accsim.drop_correction(info["drop"], g, w.reshape(6, -1), cols, 2)
    np.testing.assert_allclose(dw, want_dw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dcols, want_dcols.reshape(2, 36, 36), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("grad", ["fine", "recursive"])
def test_masked_backward_of_the_layer_module(grad):
    """AccsimConv2d's backward under a variant: the gradient of sum(g * y) with respect to weight and input
    keeps only the products whose drop bit is clear (dense NumPy sums over the unfolded input)."""
    rng = np.random.default_rng(5)
    a = accsim.Arithmetic(acc="M3E4,bias=4,round=rtz,ftz", prod="M3E4,bias=6,round=rtz,ftz")
    conv = AccsimConv2d(2, 3, 3, padding=1, stride=2, arithmetic=a, grad=grad)
    x = torch.tensor(np.maximum(rng.standard_normal((2, 2, 7, 7)), 0).astype(np.float32), requires_grad=True)
    y = conv(x)
    g = torch.tensor(rng.standard_normal(tuple(y.shape)).astype(np.float32))
    (y * g).sum().backward()
    _, info = accsim.conv2d(x.detach(), conv.weight, conv.bias, stride=2, padding=1, arithmetic=a, masks=grad)
    keep = 1 - np.unpackbits(info["drop"], axis=3, bitorder="little")[..., :18].astype(np.float64)  # [N, M, P, K]
    assert keep.min() == 0
    cols = torch.nn.functional.unfold(x.detach(), 3, padding=1, stride=2).numpy().astype(np.float64)  # [N, K, P]
    gn = g.numpy().reshape(2, 3, -1).astype(np.float64)
    w = conv.weight.detach().numpy().reshape(3, -1).astype(np.float64)
    want_w = np.einsum("nop,nopk,nkp->ok", gn, keep, cols)
    want_cols = np.einsum("nop,nopk,ok->nkp", gn, keep, w)
    want_x = torch.nn.functional.fold(torch.from_numpy(want_cols), (7, 7), 3, padding=1, stride=2).numpy()
    np.testing.assert_allclose(conv.weight.grad.numpy().reshape(3, -1), want_w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), want_x, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(conv.bias.grad.numpy(), gn.sum((0, 2)), rtol=1e-5, atol=1e-5)


def test_ste_gradient_is_the_exact_gemms():
    rng = np.random.default_rng(4)
    conv = AccsimConv2d(3, 4, 3, padding=1, arithmetic=accsim.Arithmetic())
    plain = torch.nn.Conv2d(3, 4, 3, padding=1)
    plain.load_state_dict(conv.state_dict())
    x1 = torch.tensor(rng.standard_normal((2, 3, 5, 5)).astype(np.float32), requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    conv(x1).square().sum().backward()
    y = plain(x2)
    # The same upstream gradient: that of the accsim forward's output.
    y.backward(2 * conv(x1.detach()).detach())
    np.testing.assert_allclose(x1.grad, x2.grad, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(conv.weight.grad, plain.weight.grad, rtol=1e-5, atol=1e-4)


# --- bad input: a Python exception naming the argument --------------------------------------

def test_bad_input_raises_naming_the_argument():
    x = np.ones((1, 2, 5, 5), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    bad_x = x.copy()
    bad_x[0, 1, 2, 2] = np.nan
    cases = [
        (ValueError, "x: NaN", lambda: accsim.conv2d(bad_x, w)),
        (TypeError, "x: dtype int64", lambda: accsim.conv2d(x.astype(np.int64), w)),
        (ValueError, "x: expected 4 dimensions", lambda: accsim.conv2d(x[0], w)),
        (ValueError, "weight: has 2 input channels", lambda: accsim.conv2d(np.ones((1, 4, 5, 5), np.float32), w)),
        (ValueError, "bias: must have one element", lambda: accsim.conv2d(x, w, np.ones(2, np.float32))),
        (ValueError, "weight: the kernel is larger", lambda: accsim.conv2d(x[:, :, :2, :2], w)),
        (ValueError, "x: is on device 'meta'", lambda: accsim.conv2d(torch.empty(1, 2, 5, 5, device="meta"), w)),
        (ValueError, "masks: 'all'", lambda: accsim.conv2d(x, w, masks="all")),
        (ValueError, "acc", lambda: accsim.Arithmetic(acc="M7E40")),
        (ValueError, "order", lambda: accsim.Arithmetic(order="chunked:0")),
        (ValueError, "weight: has 4 input features", lambda: accsim.linear(np.ones((2, 3), np.float32),
                                                                           np.ones((5, 4), np.float32))),
        (ValueError, "x: infinity", lambda: accsim.linear(np.full((1, 3), np.inf, np.float32),
                                                          np.ones((2, 3), np.float32))),
        (ValueError, "masks: not available with stochastic rounding",
         lambda: accsim.linear(np.ones((1, 3), np.float32), np.ones((2, 3), np.float32),
                               arithmetic=accsim.Arithmetic(acc="M7E4,round=sr"), masks="fine")),
        (ValueError, "inputs: shape differs", lambda: accsim.run_network(os.path.join(RESNET, "model.onnx"),
                                                                         np.ones((1, 1, 27, 28), np.float32))),
    ]
    for error, message, call in cases:
        with pytest.raises(error) as e:
            call()
        assert message in str(e.value), (message, str(e.value))
    # A tensor that requires grad and float64 input are accepted (forcecast) and give float32 results.
    y = accsim.conv2d(torch.ones(1, 2, 5, 5, dtype=torch.float64, requires_grad=True), w)
    assert y.dtype == np.float32 and y.shape == (1, 3, 3, 3)
