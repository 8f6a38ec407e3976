// The network as accsim runs it: a graph of operators over float tensors
// whose shapes are all known (static), in an order in which every node's
// inputs are computed before it. Built from an ONNX file by onnx_loader.hpp;
// nothing here knows about protobuf.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace accsim::net {

using Shape = std::vector<std::int64_t>;

// Product of the dimensions (1 for a scalar); shapes in a Network are
// validated, so this cannot overflow.
[[nodiscard]] std::int64_t element_count(const Shape& shape);
// "[1, 16, 28, 28]"
[[nodiscard]] std::string shape_text(const Shape& shape);

// The operators the executor implements, in ONNX spelling.
enum class Op {
  Add,
  AveragePool,
  BatchNormalization,
  Cast,
  Clip,
  Concat,
  Constant,
  ConstantOfShape,
  Conv,
  Div,
  Equal,
  Erf,
  Expand,
  Flatten,
  Gather,
  Gemm,
  GlobalAveragePool,
  Identity,
  LayerNormalization,
  MatMul,
  MaxPool,
  Mul,
  Neg,
  Pow,
  ReduceMean,
  Relu,
  Reshape,
  ShapeOf,  // ONNX "Shape" (the name is taken by the type)
  Slice,
  Softmax,
  Split,
  Sqrt,
  Squeeze,
  Sub,
  Tanh,
  Transpose,
  Unsqueeze,
  Where,
};
[[nodiscard]] std::string_view to_string(Op op);
[[nodiscard]] std::optional<Op> parse_op(std::string_view op_type);
// "Add, AveragePool, ..., Softmax": for error messages and docs.
[[nodiscard]] std::string supported_ops();
// Conv, Gemm and MatMul: the operators lowered to GEMMs, whose arithmetic is
// the configured low-bit one. Everything else computes in float.
[[nodiscard]] constexpr bool is_gemm_op(Op op) { return op == Op::Conv || op == Op::Gemm || op == Op::MatMul; }

// A 2-D sliding window (convolution or pooling) with auto_pad resolved into
// explicit pads.
struct Window2d {
  std::int64_t kernel_h = 1, kernel_w = 1;
  std::int64_t stride_h = 1, stride_w = 1;
  std::int64_t dilation_h = 1, dilation_w = 1;
  std::int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
};

struct ConvAttrs {
  Window2d window;
  std::int64_t group = 1;
};
struct PoolAttrs {
  Window2d window;
  bool count_include_pad = false;  // AveragePool only
};
// Gemm: Y = alpha * A' * B' + beta * C. MatMul uses alpha = 1, no C; its A
// may have leading dimensions, which are folded into the rows.
struct GemmAttrs {
  float alpha = 1;
  float beta = 1;
  bool trans_a = false;
  bool trans_b = false;
};
struct ClipAttrs {
  float min = 0;
  float max = 0;
};
struct BatchNormAttrs {
  float epsilon = 1e-5f;
};
// Softmax over the dimensions [axis, rank) (opset < 13 flattens them all
// into one) or over dimension axis alone (opset >= 13).
struct SoftmaxAttrs {
  std::int64_t axis = -1;
  bool over_trailing = false;
};
struct ConcatAttrs {
  std::int64_t axis = 0;
};
// Transpose: output dimension i is input dimension perm[i].
struct TransposeAttrs {
  std::vector<std::int64_t> perm;
};
// Gather along `axis` with constant indices (negative ones already
// normalized); the indices' shape replaces the axis in the output.
struct GatherAttrs {
  std::int64_t axis = 0;
  Shape indices_shape;
  std::vector<std::int64_t> indices;
};
// Slice (and each output of a Split): per input dimension, output element
// j comes from input index start + j * step (step may be negative).
struct SliceAttrs {
  std::vector<std::int64_t> starts, steps;
};
// ReduceMean over `axes` (sorted, normalized); the output shape says
// whether they were kept.
struct ReduceAttrs {
  std::vector<std::int64_t> axes;
};
// LayerNormalization over the dimensions [axis, rank).
struct LayerNormAttrs {
  std::int64_t axis = -1;
  float epsilon = 1e-5f;
};
using Attrs = std::variant<std::monostate, ConvAttrs, PoolAttrs, GemmAttrs, ClipAttrs, BatchNormAttrs, SoftmaxAttrs,
                           ConcatAttrs, TransposeAttrs, GatherAttrs, SliceAttrs, ReduceAttrs, LayerNormAttrs>;

using ValueId = std::size_t;

// A tensor of the graph: computed per sample, or a constant (an initializer,
// a Constant node, or a node whose inputs are all constant and that the
// loader folded).
struct Value {
  std::string name;
  Shape shape;
  std::optional<std::size_t> constant;  // index into Network::constants
};

// The matrix product a GEMM layer computes per group, per sample:
// [m x k] * [k x n]. For Conv, m = output channels / group, k = input
// channels / group * kernel height * kernel width (the accumulation length),
// n = output height * width. For Gemm, groups = 1. For MatMul with a 2-D (or
// 1-D) B, groups = 1 and A's leading dimensions are folded into m; with a
// batched B ([..., K, N], attention's Q·Kᵀ and softmax·V), groups is the
// number of matrices in the broadcast batch (heads x batch).
struct GemmShape {
  std::int64_t m = 0, k = 0, n = 0, groups = 1;
  [[nodiscard]] std::uint64_t macs() const {
    return static_cast<std::uint64_t>(m) * static_cast<std::uint64_t>(k) * static_cast<std::uint64_t>(n) *
           static_cast<std::uint64_t>(groups);
  }
};

struct Node {
  std::string name;  // the ONNX node name, or "<op>_<index>" when it had none
  Op op = Op::Identity;
  std::vector<std::optional<ValueId>> inputs;  // nullopt: an omitted optional input
  ValueId output = 0;
  Attrs attrs;
  GemmShape gemm;  // Conv, Gemm and MatMul only
  // Batched MatMul only: the broadcast batch shape, and per batch index the
  // offset (in matrices) into A and into B.
  std::vector<std::int64_t> batch_a, batch_b;
};

struct Network {
  std::string source;  // the file it was loaded from, for messages
  std::int64_t opset = 0;
  std::vector<Value> values;
  std::vector<std::vector<float>> constants;
  std::vector<Node> nodes;  // execution order; only nodes the output depends on
  ValueId input = 0;
  ValueId output = 0;
  // Indices into nodes of the GEMM layers (Conv, Gemm, MatMul), in order.
  std::vector<std::size_t> gemm_layers;

  [[nodiscard]] const Shape& input_shape() const { return values[input].shape; }
  [[nodiscard]] const Shape& output_shape() const { return values[output].shape; }
  [[nodiscard]] std::uint64_t macs_per_sample() const;
  // A GEMM layer both of whose operands are computed per sample (attention's
  // Q·Kᵀ and softmax·V): its "weights" are activations.
  [[nodiscard]] bool operands_are_activations(const Node& node) const;
};

}  // namespace accsim::net
