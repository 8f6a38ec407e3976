// The operators that compute in float: every supported operator except the
// GEMM layers (Conv, Gemm, MatMul, see executor.hpp) and Constant (decoded by
// the loader). Values are float32 tensors; where an operator needs more than
// one float operation per element (pool averages, batch norm, softmax) it
// computes in double and rounds each output to float once. Add is one IEEE
// float addition per element; Relu, Clip and MaxPool are exact.
#pragma once

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

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
// into doubles: exact). Element (row, col) goes to cols + row * row_stride
// + (col / block_cols) * block_step + col % block_cols: by default (0, 0,
// 0) packed row-major; with a row_stride alone, rows that far apart (the
// lowered samples of a batch side by side as the column blocks of one
// matrix); with blocks (block_cols a power of two), in panels of
// block_cols columns (the float lanes' layout, ref::F32Operands).
template <class S, class T>
void im2col(const S* x, std::int64_t channels, std::int64_t in_h, std::int64_t in_w, const Window2d& w,
            std::int64_t out_h, std::int64_t out_w, T pad, T* cols, std::int64_t row_stride = 0,
            std::int64_t block_cols = 0, std::int64_t block_step = 0) {
  const std::int64_t n = out_h * out_w;
  if (row_stride == 0) row_stride = n;
  // Column j's place in a row: (j >> block_bits) * block_step + (j & mask),
  // by shifts, not divisions (a few columns at a time between two lines'
  // padding would pay a division each); one block: 63 bits, every bit.
  const bool blocked = block_cols != 0 && block_cols < n;
  assert(!blocked || std::has_single_bit(static_cast<std::uint64_t>(block_cols)));
  const int block_bits = blocked ? std::countr_zero(static_cast<std::uint64_t>(block_cols)) : 63;
  const std::int64_t mask = blocked ? block_cols - 1 : -1;
  const auto at = [&](T* row, std::int64_t j) { return row + (j >> block_bits) * block_step + (j & mask); };
  // Where the block holding column j0 ends, or j1 if sooner.
  const auto block_end = [&](std::int64_t j0, std::int64_t j1) { return blocked ? std::min(j1, (j0 | mask) + 1) : j1; };
  // Columns [j0, j1) of a row, block by block: the padding, or (copy)
  // element j from src[j - j0]. The gaps between two output lines are a
  // column or two: those are written one by one.
  const auto fill = [&](T* row, std::int64_t j0, std::int64_t j1) {
    if (j1 - j0 <= 4) {
      for (; j0 < j1; ++j0) *at(row, j0) = pad;
      return;
    }
    while (j0 < j1) {
      const std::int64_t end = block_end(j0, j1);
      std::fill(at(row, j0), at(row, j0) + (end - j0), pad);
      j0 = end;
    }
  };
  const auto copy = [&](T* row, std::int64_t j0, std::int64_t j1, const S* src) {
    while (j0 < j1) {
      const std::int64_t end = block_end(j0, j1);
      T* dst = at(row, j0);
      if constexpr (std::is_same_v<S, T>) {
        std::memcpy(dst, src, static_cast<std::size_t>(end - j0) * sizeof(T));
      } else {
        for (std::int64_t j = 0; j < end - j0; ++j) dst[j] = static_cast<T>(src[j]);
      }
      src += end - j0;
      j0 = end;
    }
  };
  // Stride 1 with as many output columns as input ones (a "same" padded
  // convolution): column j = oy * out_w + ox of a row reads input element
  // j + shift, one shift per row, so the row is one copy from the first
  // element inside the input to the last, whose columns in the padding
  // (between one output line's last inside and the next one's first) are
  // then set to the pad.
  const bool shifted = w.stride_h == 1 && w.stride_w == 1 && out_w == in_w;
  for (std::int64_t c = 0; c < channels; ++c) {
    const S* plane = x + c * in_h * in_w;
    for (std::int64_t r = 0; r < w.kernel_h; ++r) {
      const ValidRange rows = valid_outputs(out_h, in_h, w.stride_h, r * w.dilation_h - w.pad_top);
      for (std::int64_t s = 0; s < w.kernel_w; ++s) {
        T* row = cols + ((c * w.kernel_h + r) * w.kernel_w + s) * row_stride;
        const std::int64_t offset = s * w.dilation_w - w.pad_left;
        const ValidRange xs = valid_outputs(out_w, in_w, w.stride_w, offset);
        if (rows.lo == rows.hi || xs.lo == xs.hi) {
          fill(row, 0, n);
          continue;
        }
        if (shifted) {
          const std::int64_t shift = (r * w.dilation_h - w.pad_top) * in_w + offset;
          const std::int64_t first = rows.lo * out_w + xs.lo, last = (rows.hi - 1) * out_w + xs.hi;
          fill(row, 0, first);
          copy(row, first, last, plane + (first + shift));
          for (std::int64_t oy = rows.lo; oy + 1 < rows.hi; ++oy) {
            fill(row, oy * out_w + xs.hi, (oy + 1) * out_w + xs.lo);
          }
          fill(row, last, n);
          continue;
        }
        fill(row, 0, rows.lo * out_w);
        for (std::int64_t oy = rows.lo; oy < rows.hi; ++oy) {
          // Input index of output column ox: line + ox * stride_w (>= 0 inside xs).
          const std::int64_t line = (oy * w.stride_h + r * w.dilation_h - w.pad_top) * in_w + offset;
          const std::int64_t j = oy * out_w;
          fill(row, j, j + xs.lo);
          if (w.stride_w == 1) {
            copy(row, j + xs.lo, j + xs.hi, plane + line + xs.lo);
          } else {
            // Strided reads, written block by block (one place computed
            // per block, not per element).
            for (std::int64_t ox = xs.lo; ox < xs.hi;) {
              const std::int64_t end = block_end(j + ox, j + xs.hi) - j;
              T* dst = at(row, j + ox);
              for (; ox < end; ++ox) *dst++ = static_cast<T>(plane[line + ox * w.stride_w]);
            }
          }
          fill(row, j + xs.hi, j + out_w);
        }
        fill(row, rows.hi * out_w, n);
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
