#include "sim/network/kernels.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <cstring>
#include <limits>
#include <variant>

#include "sim/network/tensor_kernels.hpp"

namespace accsim::net {
namespace {

[[maybe_unused]] std::size_t count_of(const Network& net, ValueId v) {
  return static_cast<std::size_t>(element_count(net.values[v].shape));
}

// out = a + b with NumPy broadcasting (shapes checked by the loader).
void add(const Shape& as, const Shape& bs, const Shape& os, const float* a, const float* b, float* out) {
  const std::size_t n = static_cast<std::size_t>(element_count(os));
  if (as == bs) {
    for (std::size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
    return;
  }
  // Strides of a and b over the output's index space, 0 along broadcast axes.
  const std::size_t rank = os.size();
  std::array<std::int64_t, 8> sa{}, sb{}, extent{};
  auto strides = [rank](const Shape& s, std::array<std::int64_t, 8>& st) {
    std::int64_t stride = 1;
    for (std::size_t i = s.size(); i-- > 0;) {
      const std::size_t o = i + rank - s.size();
      st[o] = s[i] == 1 ? 0 : stride;
      stride *= s[i];
    }
  };
  strides(as, sa);
  strides(bs, sb);
  for (std::size_t i = 0; i < rank; ++i) extent[i] = os[i];
  std::array<std::int64_t, 8> idx{};
  std::int64_t ia = 0, ib = 0;
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = a[ia] + b[ib];
    for (std::size_t d = rank; d-- > 0;) {  // odometer increment
      ++idx[d];
      ia += sa[d];
      ib += sb[d];
      if (idx[d] < extent[d]) break;
      ia -= sa[d] * extent[d];
      ib -= sb[d] * extent[d];
      idx[d] = 0;
    }
  }
}

void pool(const Node& node, const Shape& xs, const Shape& os, const float* x, float* out) {
  const PoolAttrs& p = std::get<PoolAttrs>(node.attrs);
  const Window2d& w = p.window;
  const std::int64_t planes = xs[0] * xs[1], ih = xs[2], iw = xs[3], oh = os[2], ow = os[3];
  const bool is_max = node.op == Op::MaxPool;
  for (std::int64_t plane = 0; plane < planes; ++plane) {
    const float* src = x + plane * ih * iw;
    float* dst = out + plane * oh * ow;
    for (std::int64_t oy = 0; oy < oh; ++oy) {
      const std::int64_t y0 = oy * w.stride_h - w.pad_top;
      for (std::int64_t ox = 0; ox < ow; ++ox) {
        const std::int64_t x0 = ox * w.stride_w - w.pad_left;
        float best = -std::numeric_limits<float>::infinity();
        double sum = 0;
        std::int64_t inside = 0;
        for (std::int64_t r = 0; r < w.kernel_h; ++r) {
          const std::int64_t iy = y0 + r * w.dilation_h;
          if (iy < 0 || iy >= ih) continue;
          for (std::int64_t s = 0; s < w.kernel_w; ++s) {
            const std::int64_t ix = x0 + s * w.dilation_w;
            if (ix < 0 || ix >= iw) continue;
            const float v = src[iy * iw + ix];
            best = std::max(best, v);
            sum += v;
            ++inside;
          }
        }
        if (is_max) {
          dst[oy * ow + ox] = best;
          continue;
        }
        // PyTorch's divisor: with count_include_pad, the window clipped to
        // the padded input (a ceil_mode overhang is not counted).
        std::int64_t divisor = inside;
        if (p.count_include_pad) {
          const std::int64_t y1 = std::min(y0 + (w.kernel_h - 1) * w.dilation_h + 1, ih + w.pad_bottom);
          const std::int64_t x1 = std::min(x0 + (w.kernel_w - 1) * w.dilation_w + 1, iw + w.pad_right);
          divisor = ((y1 - y0 + w.dilation_h - 1) / w.dilation_h) * ((x1 - x0 + w.dilation_w - 1) / w.dilation_w);
        }
        dst[oy * ow + ox] = static_cast<float>(sum / static_cast<double>(divisor));
      }
    }
  }
}

void global_average_pool(const Shape& xs, const float* x, float* out) {
  const std::int64_t planes = xs[0] * xs[1];
  const std::int64_t size = element_count(xs) / planes;
  for (std::int64_t p = 0; p < planes; ++p) {
    double sum = 0;
    for (std::int64_t i = 0; i < size; ++i) sum += x[p * size + i];
    out[p] = static_cast<float>(sum / static_cast<double>(size));
  }
}

void batch_norm(const Node& node, const Shape& xs, std::span<const float* const> in, float* out) {
  const double eps = std::get<BatchNormAttrs>(node.attrs).epsilon;
  const std::int64_t channels = xs[1];
  const std::int64_t inner = element_count(xs) / (xs[0] * channels);
  for (std::int64_t n = 0; n < xs[0]; ++n) {
    for (std::int64_t c = 0; c < channels; ++c) {
      const double inv_std = 1.0 / std::sqrt(static_cast<double>(in[4][c]) + eps);
      const double scale = in[1][c], shift = in[2][c], mean = in[3][c];
      const float* src = in[0] + (n * channels + c) * inner;
      float* dst = out + (n * channels + c) * inner;
      for (std::int64_t i = 0; i < inner; ++i) dst[i] = static_cast<float>((src[i] - mean) * inv_std * scale + shift);
    }
  }
}

void softmax(const Node& node, const Shape& xs, const float* x, float* out) {
  const SoftmaxAttrs& s = std::get<SoftmaxAttrs>(node.attrs);
  const auto axis = static_cast<std::size_t>(s.axis);
  std::int64_t outer = 1, len = 1, inner = 1;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (i < axis) {
      outer *= xs[i];
    } else if (i == axis || s.over_trailing) {
      len *= xs[i];
    } else {
      inner *= xs[i];
    }
  }
  std::vector<double> e(static_cast<std::size_t>(len));
  for (std::int64_t o = 0; o < outer; ++o) {
    for (std::int64_t in = 0; in < inner; ++in) {
      const std::int64_t base = o * len * inner + in;
      double top = -std::numeric_limits<double>::infinity();
      for (std::int64_t i = 0; i < len; ++i) top = std::max(top, static_cast<double>(x[base + i * inner]));
      double sum = 0;
      for (std::int64_t i = 0; i < len; ++i) sum += e[static_cast<std::size_t>(i)] = std::exp(x[base + i * inner] - top);
      for (std::int64_t i = 0; i < len; ++i) out[base + i * inner] = static_cast<float>(e[static_cast<std::size_t>(i)] / sum);
    }
  }
}

void concat(const Network& net, const Node& node, std::span<const float* const> in, float* out) {
  const auto axis = static_cast<std::size_t>(std::get<ConcatAttrs>(node.attrs).axis);
  const Shape& os = net.values[node.output].shape;
  std::int64_t outer = 1, inner = 1;
  for (std::size_t i = 0; i < os.size(); ++i) {
    if (i < axis) outer *= os[i];
    if (i > axis) inner *= os[i];
  }
  std::int64_t offset = 0;  // along the axis, in elements of `inner`
  for (std::size_t k = 0; k < node.inputs.size(); ++k) {
    const std::int64_t len = net.values[*node.inputs[k]].shape[axis];
    for (std::int64_t o = 0; o < outer; ++o) {
      std::memcpy(out + (o * os[axis] + offset) * inner, in[k] + o * len * inner,
                  static_cast<std::size_t>(len * inner) * sizeof(float));
    }
    offset += len;
  }
}

}  // namespace

void run_float_op(const Network& net, const Node& node, std::span<const float* const> in, float* out) {
  const Shape& os = net.values[node.output].shape;
  const std::size_t n = static_cast<std::size_t>(element_count(os));
  auto shape_of = [&](std::size_t i) -> const Shape& { return net.values[*node.inputs[i]].shape; };
  if (is_tensor_op(node.op)) return run_tensor_op(net, node, in, out);  // the transformer operators
  switch (node.op) {
    case Op::Add:
      add(shape_of(0), shape_of(1), os, in[0], in[1], out);
      return;
    case Op::Relu:
      for (std::size_t i = 0; i < n; ++i) out[i] = in[0][i] > 0 ? in[0][i] : 0.0f;
      return;
    case Op::Clip: {
      const ClipAttrs& c = std::get<ClipAttrs>(node.attrs);
      for (std::size_t i = 0; i < n; ++i) out[i] = std::min(std::max(in[0][i], c.min), c.max);
      return;
    }
    case Op::Identity:
    case Op::Flatten:
    case Op::Reshape:
      assert(count_of(net, *node.inputs[0]) == n);
      std::memcpy(out, in[0], n * sizeof(float));
      return;
    case Op::MaxPool:
    case Op::AveragePool:
      pool(node, shape_of(0), os, in[0], out);
      return;
    case Op::GlobalAveragePool:
      global_average_pool(shape_of(0), in[0], out);
      return;
    case Op::BatchNormalization:
      batch_norm(node, shape_of(0), in, out);
      return;
    case Op::Softmax:
      softmax(node, shape_of(0), in[0], out);
      return;
    case Op::Concat:
      concat(net, node, in, out);
      return;
    case Op::Conv:
    case Op::Gemm:
    case Op::MatMul:
    case Op::Constant:
    default:
      break;
  }
  assert(false && "run_float_op: not a float operator");
}

}  // namespace accsim::net
