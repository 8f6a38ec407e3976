// When a GEMM may run in double lanes (num::fast), and with which rounders.
// The reference path and the cycle-accurate engine ask the same question
// here, so both take the same route and say so in their reports.
#pragma once

#include <optional>

#include "models/numerics/fast.hpp"
#include "models/reference/gemm.hpp"

namespace accsim::ref {

struct FastPlan {
  num::fast::Rounder accumulate;
  std::optional<num::fast::Rounder> product;  // when products are rounded
  std::optional<num::fast::Rounder> merge;    // when the order is chunked
};

// Rounders for every step, or nullopt when some rounding is not exact in
// double, the fast path is disallowed, or an operand is not finite (an IEEE
// multiplier format can quantize to infinity; the lanes carry finite values).
[[nodiscard]] std::optional<FastPlan> plan_fast(const GemmConfig& config, const num::Format& c_format,
                                                const QuantizedOperand& a, const QuantizedOperand& b);

// The reference GEMM's second choice, where plan_fast refuses: rounders
// from num::fast::Rounder::make_lanes (wide sums, stochastic rounding,
// overflow to infinity, integer accumulators) for its panel_kernel_lanes, or
// nullopt. The cycle-accurate engine's lanes take plan_fast's only.
[[nodiscard]] std::optional<FastPlan> plan_any_lanes(const GemmConfig& config, const num::Format& c_format,
                                                 const QuantizedOperand& a, const QuantizedOperand& b);

}  // namespace accsim::ref
