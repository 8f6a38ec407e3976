// The reference (functional) GEMM: C = A·B with operands rounded into the
// multiplier format, products exact or rounded into a product format, and
// products accumulated in the accumulator format in an explicit order.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "models/numerics/events.hpp"
#include "models/numerics/format.hpp"
#include "models/reference/error_stats.hpp"
#include "models/reference/matrix.hpp"
#include "models/reference/order.hpp"

namespace accsim::ref {

// How operands are scaled before rounding into the multiplier format; the
// scale is undone in double after accumulation.
enum class Scaling {
  none,     // values used as given
  tensor,   // one absmax scale: the largest magnitude maps to the format's max
  channel,  // absmax per row of A and per column of B (per output channel)
  pow2,     // a power of two per tensor placing the largest magnitude in the
            // top binade: what a hardware per-tensor exponent bias does
};
[[nodiscard]] std::optional<Scaling> parse_scaling(std::string_view text);
[[nodiscard]] std::string_view to_string(Scaling s);

struct GemmConfig {
  num::Format multiplier = num::formats::e4m3();
  std::optional<num::Format> product;  // nullopt: exact (fused) products
  num::Format accumulator = num::formats::fp32();
  AccumulationOrder order;
  Scaling scaling = Scaling::none;
  unsigned threads = 0;          // 0: every hardware thread
  bool allow_fast_path = true;   // false forces the general path (for tests)
  bool allow_f32_lanes = true;   // false keeps plan_fast's route in double lanes (for tests, benchmarks)
  bool error_stats = true;       // compute errors against double GEMMs
};

// An operand rounded into the multiplier format.
enum class ScaleAxis { rows, cols };  // channel scaling: A per row, B per column
struct QuantizedOperand {
  std::size_t rows = 0, cols = 0;
  std::vector<std::uint64_t> bits;  // encodings, row-major like the source
  std::vector<double> values;       // their exact values (scaled domain)
  std::vector<double> scale;        // 1 entry, or one per row (rows axis) / column (cols axis)
  ScaleAxis axis = ScaleAxis::rows;
  num::EventCounts events;

  [[nodiscard]] double scale_at(std::size_t r, std::size_t c) const {
    if (scale.size() == 1) return scale[0];
    return axis == ScaleAxis::rows ? scale[r] : scale[c];
  }
};
// sr_stream keeps the stochastic draws of A and B apart. Element (r, c) is
// num::quantize of the exact m(r, c) * scale (round_pack), its draw keyed on
// (sr_stream << 48) ^ (r * cols + c).
[[nodiscard]] QuantizedOperand quantize_operand(const Matrix& m, const num::Format& format, Scaling scaling,
                                                ScaleAxis axis, std::uint64_t sr_stream);
// The same for a row-major [rows x cols] float matrix (the network's
// tensors), into `out`, whose buffers are reused: the same scales, bits,
// values and events as the Matrix of those floats gives.
void quantize_operand(const float* data, std::size_t rows, std::size_t cols, const num::Format& format,
                      Scaling scaling, ScaleAxis axis, std::uint64_t sr_stream, QuantizedOperand& out);

// Whether every value of q, an operand rounded into `multiplier`, is
// finite: at once when the format encodes no infinity or NaN, else by a scan.
[[nodiscard]] bool finite_values(const num::Format& multiplier, const QuantizedOperand& q);

// Key of the stochastic-rounding draw for step k of output (i, j); merges of
// chunk results use step K + chunk index. Any engine that follows the same
// order uses the same keys.
[[nodiscard]] constexpr std::uint64_t sr_key(std::size_t i, std::size_t j, std::size_t step, std::size_t n,
                                             std::size_t steps) {
  return (static_cast<std::uint64_t>(i) * n + j) * steps + step;
}

struct GemmStats {
  num::EventCounts quantize_a, quantize_b;
  num::EventCounts product;     // rounding into the product format (none when fused)
  num::EventCounts accumulate;  // every acc + product
  num::EventCounts merge;       // chunk results into the merge format
  ErrorStats vs_quantized;      // against the double GEMM of the quantized inputs
  ErrorStats vs_original;       // against the double GEMM of the original inputs
  bool fast_path = false;       // which implementation ran (results are identical): plan_fast's
                                // route, the one the cycle-accurate engine shares
  bool f32_lanes = false;       // within it, plan_f32's float lanes ran (lanes_f32.hpp)
  bool any_lanes = false;       // plan_any_lanes' lanes ran (formats beyond plan_fast's)
};

struct GemmResult {
  Matrix c;                           // result with the scales undone
  std::vector<std::uint64_t> c_bits;  // raw result encodings, in the order's final format
  num::Format c_format;               // accumulator, or merge format when chunked
  GemmStats stats;
};

// Throws std::invalid_argument on mismatched shapes or non-finite inputs.
[[nodiscard]] GemmResult gemm(const Matrix& a, const Matrix& b, const GemmConfig& config);

// The same with another accumulation engine in place of accumulate_products
// (the cycle-accurate array): quantization, unscaling and error statistics
// stay the reference path's, so the engines differ only where they may.
using AccumulateFn =
    std::function<GemmResult(const QuantizedOperand& a, const QuantizedOperand& b, const GemmConfig& config)>;
[[nodiscard]] GemmResult gemm(const Matrix& a, const Matrix& b, const GemmConfig& config,
                              const AccumulateFn& accumulate);

// The accumulation alone, on operands already rounded (the cycle-accurate
// engine shares quantization with it). Fills c_bits, c_format and the
// product/accumulate/merge counts; c holds accumulator values, unscaled.
[[nodiscard]] GemmResult accumulate_products(const QuantizedOperand& a, const QuantizedOperand& b,
                                             const GemmConfig& config);
// The same into `result`, whose storage is reused (a network runs thousands
// of GEMMs of a few shapes, once per sample). With `encodings` false only c
// is filled and c_bits is left empty: a caller that reads values skips a
// conversion per output and the encodings' buffer.
void accumulate_products(const QuantizedOperand& a, const QuantizedOperand& b, const GemmConfig& config,
                         GemmResult& result, bool encodings);

// How many passes of accumulate_products' kernel one row of A makes over n
// columns of B, for finite operands of config's formats: its panels of
// columns (the float lanes' width on lane_isa(), the double lanes' 16), or
// n on the general path. The work of an m x n result is about
// m * lane_passes(config, n); a caller free to compute C or C^T (each output
// sums the same products either way) takes the one with fewer passes.
[[nodiscard]] std::size_t lane_passes(const GemmConfig& config, std::size_t n);
// Whether an m x n result takes strictly fewer of those passes computed as
// its transpose (n rows of m columns) than as itself (m rows of n columns).
[[nodiscard]] bool transpose_takes_fewer_passes(const GemmConfig& config, std::size_t m, std::size_t n);

}  // namespace accsim::ref
