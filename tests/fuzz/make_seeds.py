#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets: tiny ONNX models that use
every operator accsim supports (and each attribute form), and small .npy
files of every dtype and rank the readers accept. Run from the repository
root:  /usr/bin/python3 tests/fuzz/make_seeds.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(0)


def init(name, shape, dtype=np.float32):
    return numpy_helper.from_array(rng.standard_normal(shape).astype(dtype), name)


def model(name, nodes, inits, in_shape, out_shape=None, opset=13):
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    onnx.save(m, os.path.join(HERE, "seeds", "onnx", name + ".onnx"))


N = helper.make_node
model("conv_relu_pool_gemm", [
    N("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[1, 1], group=1, dilations=[1, 1],
      kernel_shape=[3, 3]),
    N("Relu", ["c"], ["r"]),
    N("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
    N("Flatten", ["p"], ["f"], axis=1),
    N("Gemm", ["f", "fc", "fcb"], ["y"], transB=1, alpha=1.0, beta=1.0),
], [init("w", (4, 2, 3, 3)), init("b", (4,)), init("fc", (3, 36)), init("fcb", (3,))], [1, 2, 5, 5], [1, 3])

model("resnet_block", [
    N("Conv", ["x", "w1"], ["a"], auto_pad="SAME_UPPER", strides=[2, 2], group=2),
    N("BatchNormalization", ["a", "s", "bb", "m", "v"], ["n"], epsilon=1e-5),
    N("Clip", ["n", "lo", "hi"], ["c"]),
    N("Conv", ["x", "w2"], ["sc"], strides=[2, 2]),
    N("Add", ["c", "sc"], ["s2"]),
    N("AveragePool", ["s2"], ["ap"], kernel_shape=[2, 2], pads=[1, 1, 0, 0], count_include_pad=1),
    N("GlobalAveragePool", ["ap"], ["g"]),
    N("Reshape", ["g", "shape"], ["f"]),
    N("MatMul", ["f", "mm"], ["z"]),
    N("Softmax", ["z"], ["y"], axis=-1),
], [init("w1", (4, 1, 3, 3)), init("s", (4,)), init("bb", (4,)), init("m", (4,)),
    numpy_helper.from_array(np.abs(rng.standard_normal(4)).astype(np.float32) + 0.5, "v"),
    numpy_helper.from_array(np.array(0.0, np.float32), "lo"), numpy_helper.from_array(np.array(6.0, np.float32), "hi"),
    init("w2", (4, 2, 1, 1)), numpy_helper.from_array(np.array([1, -1], np.int64), "shape"),
    init("mm", (4, 3))], [1, 2, 6, 6], [1, 3])

model("constants_concat_identity", [
    N("Constant", [], ["k"], value=numpy_helper.from_array(rng.standard_normal((1, 3)).astype(np.float32))),
    N("Constant", [], ["kf"], value_floats=[1.0, 2.0, 3.0]),
    N("Add", ["k", "kf"], ["k2"]),
    N("Identity", ["x"], ["i"]),
    N("Concat", ["i", "k2"], ["c"], axis=1),
    N("Clip", ["c", "", "hi"], ["y"]),
], [numpy_helper.from_array(np.array(1.0, np.float32), "hi")], [1, 3], [1, 6], opset=12)

model("opset9_clip_softmax", [
    N("Clip", ["x"], ["c"], min=-1.0, max=1.0),
    N("Softmax", ["c"], ["y"], axis=1),
], [], [1, 2, 3], [1, 2, 3], opset=9)

model("dynamic_batch", [N("Relu", ["x"], ["y"])], [], ["N", 4], ["N", 4])

for dtype, shape in [("<f4", (2, 1, 3, 3)), ("<f8", (3, 2)), ("<i8", (5,)), ("<i4", (2, 2)), ("<f4", ())]:
    a = (rng.standard_normal(shape) * 10).astype(dtype)
    np.save(os.path.join(HERE, "seeds", "npy", f"{np.dtype(dtype).name}_{len(shape)}d.npy"), a)
