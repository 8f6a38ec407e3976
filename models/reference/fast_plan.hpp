// When a GEMM may run in double lanes (num::fast), and with which rounders.
// The reference path and the cycle-accurate engine ask the same question
// here, so both take the same route and say so in their reports.
#pragma once

#include <optional>

#include "models/numerics/fast.hpp"
#include "models/reference/gemm.hpp"
#include "models/reference/lanes_f32.hpp"

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

// Within plan_fast's route, where float lanes give the same results
// (lanes_f32.hpp): plan_fast's rounders (the fallback for overflow) with
// float rounders for each step.
struct F32Plan {
  FastPlan fast;
  F32Rounder accumulate;
  std::optional<F32Rounder> product;
  std::optional<F32Rounder> merge;
};

// The float route, or nullopt. Exact where plan_fast holds and:
// - the multiplier is a float format whose products are exact in float
//   (2 (M + 1) <= 24 significand bits) and, with every format rounded into
//   (product, accumulator, merge), lie on grids inside float's normal
//   range (every non-zero value a multiple of 2^lsb >= 2^-126, below
//   2^(msb + 1) <= 2^126);
// - every rounding is nearest-even or toward zero, into at most 21
//   fraction bits (so that a float's last place lies 2 bits or more below
//   the format's, as round-to-odd needs);
// - each sum x + y (accumulator + addend, merged + chunk sum), x and y of
//   formats X and Y with M fraction bits and grids [lsb, emax], is either
//   exact in float:  max(MX + MY + 2, emaxX - lsbY + 1, emaxY - lsbX + 1) <= 24,
//   or, where the first and the last bounds hold,
//         max(MX + MY + 2, emaxY - lsbX + 1) <= 24,
//   exact whenever y's binade lies above x's, so that Fast2Sum's error
//   (exact when x's binade is at least y's) tells every inexact float sum,
//   which round-to-odd then repairs (Boldo and Melquiond, IEEE TC 2008:
//   rounding the odd 24-bit sum into at most 22 bits is correct in every
//   mode, and keeps the order against the format's grid, its smallest
//   normal and its largest value). The bounds: a sum of two values whose
//   binades are ex >= ey needs ex - min(ex - MX, ey - MY) + 1 bits, or one
//   more when it carries into binade ex + 1, which needs ey >= ex - MX.
//   (Exact products, unrounded: Y is the products' span with MY = 2M + 1.)
[[nodiscard]] std::optional<F32Plan> plan_f32(const GemmConfig& config, const num::Format& c_format,
                                              const QuantizedOperand& a, const QuantizedOperand& b);

}  // namespace accsim::ref
