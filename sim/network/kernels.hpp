// The operators that compute in float: every supported operator except the
// GEMM layers (Conv, Gemm, MatMul, see executor.hpp) and Constant (decoded by
// the loader). Values are float32 tensors; where an operator needs more than
// one float operation per element (pool averages, batch norm, softmax) it
// computes in double and rounds each output to float once. Add is one IEEE
// float addition per element; Relu, Clip and MaxPool are exact.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>

#include "sim/network/graph.hpp"

namespace accsim::net {

// Computes `node` (not a GEMM layer, not Constant): inputs[i] points at the
// data of node.inputs[i] (nullptr where that input is omitted), out at room
// for the output's elements. Shapes come from net.values.
void run_float_op(const Network& net, const Node& node, std::span<const float* const> inputs, float* out);

// The output positions [lo, hi) of one axis whose input index
// o * stride - pad + tap lies inside [0, in): the rest read the padding.
struct ValidRange {
  std::int64_t lo, hi;
};
inline ValidRange valid_outputs(std::int64_t out, std::int64_t in, std::int64_t stride, std::int64_t offset) {
  // index(o) = o * stride + offset, increasing in o (stride >= 1).
  auto ceil_div = [](std::int64_t x, std::int64_t d) { return x >= 0 ? (x + d - 1) / d : -((-x) / d); };
  const std::int64_t lo = std::clamp<std::int64_t>(ceil_div(-offset, stride), 0, out);
  const std::int64_t hi = std::clamp<std::int64_t>(ceil_div(in - offset, stride), lo, out);
  return {lo, hi};
}

// The im2col lowering of a 2-D convolution of one group: `x` holds
// `channels` planes of in_h x in_w; `cols` receives
// [channels * kernel_h * kernel_w] rows of [out_h * out_w], row index
// (c * kernel_h + r) * kernel_w + s: the same order as the weights
// [M, C/group, kH, kW], so row k of the lowered matrix meets weight column k.
// Positions in the padding get `pad`. S and T may differ (floats lowered
// into doubles: exact). Rows lie `row_stride` elements apart (0: out_h *
// out_w, packed), so that the lowered samples of a batch can stand side by
// side as the column blocks of one matrix.
template <class S, class T>
void im2col(const S* x, std::int64_t channels, std::int64_t in_h, std::int64_t in_w, const Window2d& w,
            std::int64_t out_h, std::int64_t out_w, T pad, T* cols, std::int64_t row_stride = 0) {
  if (row_stride == 0) row_stride = out_h * out_w;
  for (std::int64_t c = 0; c < channels; ++c) {
    const S* plane = x + c * in_h * in_w;
    for (std::int64_t r = 0; r < w.kernel_h; ++r) {
      const ValidRange rows = valid_outputs(out_h, in_h, w.stride_h, r * w.dilation_h - w.pad_top);
      for (std::int64_t s = 0; s < w.kernel_w; ++s) {
        T* row = cols + ((c * w.kernel_h + r) * w.kernel_w + s) * row_stride;
        const std::int64_t offset = s * w.dilation_w - w.pad_left;
        const ValidRange xs = valid_outputs(out_w, in_w, w.stride_w, offset);
        std::fill(row, row + rows.lo * out_w, pad);
        for (std::int64_t oy = rows.lo; oy < rows.hi; ++oy) {
          // Input index of output column ox: line + ox * stride_w (>= 0 inside xs).
          const std::int64_t line = (oy * w.stride_h + r * w.dilation_h - w.pad_top) * in_w + offset;
          T* dst = row + oy * out_w;
          std::fill(dst, dst + xs.lo, pad);
          if (w.stride_w == 1) {
            for (std::int64_t ox = xs.lo; ox < xs.hi; ++ox) dst[ox] = static_cast<T>(plane[line + ox]);
          } else {
            for (std::int64_t ox = xs.lo; ox < xs.hi; ++ox) dst[ox] = static_cast<T>(plane[line + ox * w.stride_w]);
          }
          std::fill(dst + xs.hi, dst + out_w, pad);
        }
        std::fill(row + rows.hi * out_w, row + out_h * out_w, pad);
      }
    }
  }
}

// The transpose of im2col: `rows` receives [out_h * out_w] rows of
// [channels * kernel_h * kernel_w], one row per output position, columns in
// im2col's row order.
template <class S, class T>
void im2row(const S* x, std::int64_t channels, std::int64_t in_h, std::int64_t in_w, const Window2d& w,
            std::int64_t out_h, std::int64_t out_w, T pad, T* rows) {
  const std::int64_t k = channels * w.kernel_h * w.kernel_w;
  for (std::int64_t oy = 0; oy < out_h; ++oy) {
    // Kernel rows [r_lo, r_hi) and columns [s_lo, s_hi) that land inside
    // the input at this position: the others read the padding.
    const ValidRange taps_r = valid_outputs(w.kernel_h, in_h, w.dilation_h, oy * w.stride_h - w.pad_top);
    for (std::int64_t ox = 0; ox < out_w; ++ox) {
      const ValidRange taps_s = valid_outputs(w.kernel_w, in_w, w.dilation_w, ox * w.stride_w - w.pad_left);
      T* dst = rows + (oy * out_w + ox) * k;
      // Input index of tap (c, r, s): origin + c * plane + r * dilation_h * in_w
      // + s * dilation_w (>= 0 for the taps inside).
      const std::int64_t origin = (oy * w.stride_h - w.pad_top) * in_w + (ox * w.stride_w - w.pad_left);
      for (std::int64_t c = 0; c < channels; ++c) {
        for (std::int64_t r = 0; r < w.kernel_h; ++r, dst += w.kernel_w) {
          if (r < taps_r.lo || r >= taps_r.hi) {
            std::fill(dst, dst + w.kernel_w, pad);
            continue;
          }
          const std::int64_t line = origin + c * in_h * in_w + r * w.dilation_h * in_w;
          std::fill(dst, dst + taps_s.lo, pad);
          for (std::int64_t s = taps_s.lo; s < taps_s.hi; ++s) dst[s] = static_cast<T>(x[line + s * w.dilation_w]);
          std::fill(dst + taps_s.hi, dst + w.kernel_w, pad);
        }
      }
    }
  }
}

}  // namespace accsim::net
