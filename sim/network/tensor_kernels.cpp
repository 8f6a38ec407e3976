#include "sim/network/tensor_kernels.hpp"

#include <array>
#include <cassert>
#include <cmath>
#include <cstring>
#include <variant>

namespace accsim::net {
namespace {

constexpr std::size_t kRank = 8;  // kMaxRank (onnx_loader.hpp)
using Index = std::array<std::int64_t, kRank>;

// Strides of a tensor of shape `s` over an output index space of rank
// `rank` (right-aligned), 0 along broadcast dimensions.
Index broadcast_strides(const Shape& s, std::size_t rank) {
  Index st{};
  std::int64_t stride = 1;
  for (std::size_t i = s.size(); i-- > 0;) {
    const std::size_t o = i + rank - s.size();
    st[o] = s[i] == 1 ? 0 : stride;
    stride *= s[i];
  }
  return st;
}

// Calls f(output index, offsets into each input) for every output element
// in order, with NumPy broadcasting.
template <std::size_t N, class F>
void for_each_broadcast(const Shape& os, const std::array<const Shape*, N>& shapes, F&& f) {
  const std::size_t rank = os.size();
  std::array<Index, N> strides;
  for (std::size_t k = 0; k < N; ++k) strides[k] = broadcast_strides(*shapes[k], rank);
  const auto n = static_cast<std::size_t>(element_count(os));
  Index idx{};
  std::array<std::int64_t, N> off{};
  for (std::size_t i = 0; i < n; ++i) {
    f(i, off);
    for (std::size_t d = rank; d-- > 0;) {  // odometer increment
      ++idx[d];
      for (std::size_t k = 0; k < N; ++k) off[k] += strides[k][d];
      if (idx[d] < os[d]) break;
      for (std::size_t k = 0; k < N; ++k) off[k] -= strides[k][d] * os[d];
      idx[d] = 0;
    }
  }
}

template <class F>
void binary(const Network& net, const Node& node, std::span<const float* const> in, float* out, F&& op) {
  const Shape& os = net.values[node.output].shape;
  const Shape& as = net.values[*node.inputs[0]].shape;
  const Shape& bs = net.values[*node.inputs[1]].shape;
  const float* a = in[0];
  const float* b = in[1];
  if (as == bs) {
    const auto n = static_cast<std::size_t>(element_count(os));
    for (std::size_t i = 0; i < n; ++i) out[i] = op(a[i], b[i]);
    return;
  }
  for_each_broadcast<2>(os, {&as, &bs}, [&](std::size_t i, const std::array<std::int64_t, 2>& o) {
    out[i] = op(a[o[0]], b[o[1]]);
  });
}

float power(float x, float y) {
  // x * x is what PyTorch computes for x.pow(2); the double square is exact,
  // so rounding it once gives the same float.
  return static_cast<float>(std::pow(static_cast<double>(x), static_cast<double>(y)));
}

// Row-major strides of a shape.
Index strides_of(const Shape& s) {
  Index st{};
  std::int64_t stride = 1;
  for (std::size_t i = s.size(); i-- > 0;) {
    st[i] = stride;
    stride *= s[i];
  }
  return st;
}

// out[j] = x[offset(j)] where the offset of output index (i_0 .. i_r) is
// base + sum i_d * step[d]: Transpose, Slice and Expand are all this walk.
void strided_copy(const Shape& os, std::int64_t base, const Index& step, const float* x, float* out) {
  const std::size_t rank = os.size();
  const auto n = static_cast<std::size_t>(element_count(os));
  Index idx{};
  std::int64_t off = base;
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = x[off];
    for (std::size_t d = rank; d-- > 0;) {
      ++idx[d];
      off += step[d];
      if (idx[d] < os[d]) break;
      off -= step[d] * os[d];
      idx[d] = 0;
    }
  }
}

void transpose(const Network& net, const Node& node, const float* x, float* out) {
  const std::vector<std::int64_t>& perm = std::get<TransposeAttrs>(node.attrs).perm;
  const Index in_strides = strides_of(net.values[*node.inputs[0]].shape);
  Index step{};
  for (std::size_t i = 0; i < perm.size(); ++i) step[i] = in_strides[static_cast<std::size_t>(perm[i])];
  strided_copy(net.values[node.output].shape, 0, step, x, out);
}

void slice(const Network& net, const Node& node, const float* x, float* out) {
  const SliceAttrs& s = std::get<SliceAttrs>(node.attrs);
  const Index in_strides = strides_of(net.values[*node.inputs[0]].shape);
  Index step{};
  std::int64_t base = 0;
  for (std::size_t d = 0; d < s.starts.size(); ++d) {
    base += s.starts[d] * in_strides[d];
    step[d] = s.steps[d] * in_strides[d];
  }
  strided_copy(net.values[node.output].shape, base, step, x, out);
}

void expand(const Network& net, const Node& node, const float* x, float* out) {
  const Shape& os = net.values[node.output].shape;
  strided_copy(os, 0, broadcast_strides(net.values[*node.inputs[0]].shape, os.size()), x, out);
}

void gather(const Network& net, const Node& node, const float* x, float* out) {
  const GatherAttrs& g = std::get<GatherAttrs>(node.attrs);
  const Shape& xs = net.values[*node.inputs[0]].shape;
  const auto axis = static_cast<std::size_t>(g.axis);
  std::int64_t outer = 1, inner = 1;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (i < axis) outer *= xs[i];
    if (i > axis) inner *= xs[i];
  }
  const std::int64_t len = xs[axis];
  const auto count = static_cast<std::int64_t>(g.indices.size());
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t j = 0; j < count; ++j) {
      std::memcpy(out + (o * count + j) * inner, x + (o * len + g.indices[static_cast<std::size_t>(j)]) * inner,
                  static_cast<std::size_t>(inner) * sizeof(float));
    }
  }
}

void reduce_mean(const Network& net, const Node& node, const float* x, float* out) {
  const std::vector<std::int64_t>& axes = std::get<ReduceAttrs>(node.attrs).axes;
  const Shape& xs = net.values[*node.inputs[0]].shape;
  // The kept dimensions index the output (keepdims or not, same order).
  Index out_step{};
  std::int64_t reduced = 1;
  std::vector<bool> is_reduced(xs.size(), false);
  for (std::int64_t a : axes) is_reduced[static_cast<std::size_t>(a)] = true;
  for (std::size_t d = 0; d < xs.size(); ++d) {
    if (is_reduced[d]) reduced *= xs[d];
  }
  const auto n_out = static_cast<std::size_t>(element_count(xs) / reduced);
  std::vector<double> sum(n_out, 0.0);
  // Walk the input in order; the output offset moves along kept dimensions.
  Shape kept_shape;
  for (std::size_t d = 0; d < xs.size(); ++d) {
    if (!is_reduced[d]) kept_shape.push_back(xs[d]);
  }
  const Index kept_strides = strides_of(kept_shape);
  std::size_t k = 0;
  for (std::size_t d = 0; d < xs.size(); ++d) out_step[d] = is_reduced[d] ? 0 : kept_strides[k++];
  const auto n = static_cast<std::size_t>(element_count(xs));
  Index idx{};
  std::int64_t off = 0;
  for (std::size_t i = 0; i < n; ++i) {
    sum[static_cast<std::size_t>(off)] += x[i];
    for (std::size_t d = xs.size(); d-- > 0;) {
      ++idx[d];
      off += out_step[d];
      if (idx[d] < xs[d]) break;
      off -= out_step[d] * xs[d];
      idx[d] = 0;
    }
  }
  for (std::size_t i = 0; i < n_out; ++i) out[i] = static_cast<float>(sum[i] / static_cast<double>(reduced));
}

// (x - mean) / sqrt(var + eps) * scale + bias over the trailing dimensions,
// mean and (biased) variance in double, each output rounded once.
void layer_norm(const Network& net, const Node& node, std::span<const float* const> in, float* out) {
  const LayerNormAttrs& ln = std::get<LayerNormAttrs>(node.attrs);
  const Shape& xs = net.values[*node.inputs[0]].shape;
  std::int64_t outer = 1, len = 1;
  for (std::size_t i = 0; i < xs.size(); ++i) (static_cast<std::int64_t>(i) < ln.axis ? outer : len) *= xs[i];
  const float* scale = in[1];
  const float* bias = node.inputs.size() > 2 && node.inputs[2] ? in[2] : nullptr;
  for (std::int64_t o = 0; o < outer; ++o) {
    const float* row = in[0] + o * len;
    double mean = 0;
    for (std::int64_t i = 0; i < len; ++i) mean += row[i];
    mean /= static_cast<double>(len);
    double var = 0;
    for (std::int64_t i = 0; i < len; ++i) var += (row[i] - mean) * (row[i] - mean);
    var /= static_cast<double>(len);
    const double inv_std = 1.0 / std::sqrt(var + static_cast<double>(ln.epsilon));
    for (std::int64_t i = 0; i < len; ++i) {
      const double y = (row[i] - mean) * inv_std * scale[i] + (bias ? bias[i] : 0.0);
      out[o * len + i] = static_cast<float>(y);
    }
  }
}

}  // namespace

bool is_tensor_op(Op op) {
  switch (op) {
    case Op::Sub: case Op::Mul: case Op::Div: case Op::Pow: case Op::Equal: case Op::Where: case Op::Sqrt:
    case Op::Neg: case Op::Erf: case Op::Tanh: case Op::Cast: case Op::Transpose: case Op::Gather: case Op::Slice:
    case Op::Unsqueeze: case Op::Squeeze: case Op::Expand: case Op::ReduceMean: case Op::LayerNormalization:
      return true;
    default:
      return false;
  }
}

void run_tensor_op(const Network& net, const Node& node, std::span<const float* const> in, float* out) {
  const Shape& os = net.values[node.output].shape;
  const auto n = static_cast<std::size_t>(element_count(os));
  const float* x = in[0];
  switch (node.op) {
    case Op::Sub: return binary(net, node, in, out, [](float a, float b) { return a - b; });
    case Op::Mul: return binary(net, node, in, out, [](float a, float b) { return a * b; });
    case Op::Div: return binary(net, node, in, out, [](float a, float b) { return a / b; });
    case Op::Pow: return binary(net, node, in, out, power);
    case Op::Equal: return binary(net, node, in, out, [](float a, float b) { return a == b ? 1.0f : 0.0f; });
    case Op::Where: {
      const Shape* shapes[3];
      for (std::size_t k = 0; k < 3; ++k) shapes[k] = &net.values[*node.inputs[k]].shape;
      for_each_broadcast<3>(os, {shapes[0], shapes[1], shapes[2]},
                            [&](std::size_t i, const std::array<std::int64_t, 3>& o) {
                              out[i] = in[0][o[0]] != 0.0f ? in[1][o[1]] : in[2][o[2]];
                            });
      return;
    }
    case Op::Sqrt:
      for (std::size_t i = 0; i < n; ++i) out[i] = std::sqrt(x[i]);
      return;
    case Op::Neg:
      for (std::size_t i = 0; i < n; ++i) out[i] = -x[i];
      return;
    case Op::Erf:
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(std::erf(static_cast<double>(x[i])));
      return;
    case Op::Tanh:
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(std::tanh(static_cast<double>(x[i])));
      return;
    case Op::Cast:  // to a float type: float32 is what the executor computes in
    case Op::Unsqueeze:
    case Op::Squeeze:
      std::memcpy(out, x, n * sizeof(float));
      return;
    case Op::Transpose: return transpose(net, node, x, out);
    case Op::Slice: return slice(net, node, x, out);
    case Op::Expand: return expand(net, node, x, out);
    case Op::Gather: return gather(net, node, x, out);
    case Op::ReduceMean: return reduce_mean(net, node, x, out);
    case Op::LayerNormalization: return layer_norm(net, node, in, out);
    default: break;
  }
  assert(false && "run_tensor_op: not a tensor operator");
}

}  // namespace accsim::net
