// The operators that compute in float: every supported operator except the
// GEMM layers (Conv, Gemm, MatMul, see executor.hpp) and Constant (decoded by
// the loader). Values are float32 tensors; where an operator needs more than
// one float operation per element (pool averages, batch norm, softmax) it
// computes in double and rounds each output to float once. Add is one IEEE
// float addition per element; Relu, Clip and MaxPool are exact.
#pragma once

#include <cstdint>
#include <span>

#include "sim/network/graph.hpp"

namespace accsim::net {

// Computes `node` (not a GEMM layer, not Constant): inputs[i] points at the
// data of node.inputs[i] (nullptr where that input is omitted), out at room
// for the output's elements. Shapes come from net.values.
void run_float_op(const Network& net, const Node& node, std::span<const float* const> inputs, float* out);

// The im2col lowering of a 2-D convolution of one group: `x` holds
// `channels` planes of in_h x in_w; `cols` receives
// [channels * kernel_h * kernel_w] rows of [out_h * out_w], row index
// (c * kernel_h + r) * kernel_w + s: the same order as the weights
// [M, C/group, kH, kW], so row k of the lowered matrix meets weight column k.
// Positions in the padding get `pad`.
template <class T>
void im2col(const T* x, std::int64_t channels, std::int64_t in_h, std::int64_t in_w, const Window2d& w,
            std::int64_t out_h, std::int64_t out_w, T pad, T* cols) {
  for (std::int64_t c = 0; c < channels; ++c) {
    const T* plane = x + c * in_h * in_w;
    for (std::int64_t r = 0; r < w.kernel_h; ++r) {
      for (std::int64_t s = 0; s < w.kernel_w; ++s) {
        T* row = cols + ((c * w.kernel_h + r) * w.kernel_w + s) * out_h * out_w;
        for (std::int64_t oy = 0; oy < out_h; ++oy) {
          const std::int64_t iy = oy * w.stride_h - w.pad_top + r * w.dilation_h;
          T* dst = row + oy * out_w;
          if (iy < 0 || iy >= in_h) {
            for (std::int64_t ox = 0; ox < out_w; ++ox) dst[ox] = pad;
            continue;
          }
          const T* src = plane + iy * in_w;
          for (std::int64_t ox = 0; ox < out_w; ++ox) {
            const std::int64_t ix = ox * w.stride_w - w.pad_left + s * w.dilation_w;
            dst[ox] = (ix >= 0 && ix < in_w) ? src[ix] : pad;
          }
        }
      }
    }
  }
}

// The transpose of im2col: `rows` receives [out_h * out_w] rows of
// [channels * kernel_h * kernel_w], one row per output position, columns in
// im2col's row order.
template <class T>
void im2row(const T* x, std::int64_t channels, std::int64_t in_h, std::int64_t in_w, const Window2d& w,
            std::int64_t out_h, std::int64_t out_w, T pad, T* rows) {
  const std::int64_t k = channels * w.kernel_h * w.kernel_w;
  for (std::int64_t oy = 0; oy < out_h; ++oy) {
    for (std::int64_t ox = 0; ox < out_w; ++ox) {
      T* dst = rows + (oy * out_w + ox) * k;
      for (std::int64_t c = 0; c < channels; ++c) {
        const T* plane = x + c * in_h * in_w;
        for (std::int64_t r = 0; r < w.kernel_h; ++r) {
          const std::int64_t iy = oy * w.stride_h - w.pad_top + r * w.dilation_h;
          for (std::int64_t s = 0; s < w.kernel_w; ++s) {
            const std::int64_t ix = ox * w.stride_w - w.pad_left + s * w.dilation_w;
            *dst++ = (iy >= 0 && iy < in_h && ix >= 0 && ix < in_w) ? plane[iy * in_w + ix] : pad;
          }
        }
      }
    }
  }
}

}  // namespace accsim::net
