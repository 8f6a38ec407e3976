// The reference GEMM in float32 lanes: 16 per AVX-512 register, 8 per AVX2
// register, 4 per SSE2 register (the portable baseline every x86-64 has).
//
// plan_f32 (fast_plan.hpp) decides where this route is exact; within it,
// every operand, product, sum and rounded value is a float (a normal one,
// or zero), so a float lane does what a double lane of plan_fast's kernels
// does, at twice the lanes per register. Results and every event count are
// plan_fast's (tests compare all of them, on every ISA, with the double
// lanes and the general path).
//
// One binary for all machines: each ISA's kernel lives in its own
// translation unit (lanes_f32_avx512.cpp, lanes_f32_avx2.cpp,
// lanes_f32_baseline.cpp), every function of which carries that ISA's
// target attribute, so no vector ever crosses between code built for
// different ISAs; the choice is made at run time from the CPU
// (__builtin_cpu_supports), capped by ACCSIM_ISA or set_lane_isa.
#pragma once

#include <cstdint>
#include <new>
#include <optional>
#include <string_view>
#include <vector>

#include "models/numerics/format.hpp"

namespace accsim::ref {

// Constants for rounding a float (exact, or the round-to-odd of the exact
// value in 24 bits, see odd_sum) into a FloatFormat in nearest-even or
// toward zero, on the float's bit pattern as num::fast::Rounder does on a
// double's.
struct F32Rounder {
  num::Rounding mode = num::Rounding::rne;
  bool ftz = false;
  int drop = 0;                   // fraction bits of a float below the format's last place
  std::uint32_t keep = 0;         // ~((1 << drop) - 1): the sign, exponent and kept fraction
  std::uint32_t half_less_one = 0;  // (1 << (drop - 1)) - 1, for nearest-even
  std::uint32_t min_normal_bits = 0;  // float bits of 2^emin
  std::uint32_t max_bits = 0;         // float bits of the largest finite magnitude
  // With subnormals: float bits of q = 2^(emin - M), the subnormal grid's
  // spacing, and of 2^23 q, whose binade has spacing q (see round_subnormal).
  std::uint32_t subnormal_q_bits = 0, subnormal_magic_bits = 0;
  // Sums rounded by this rounder may need more than float's 24 bits: they
  // are formed as Fast2Sum plus round-to-odd (see plan_f32).
  bool odd_sum = false;
};

// The ISAs of the lane kernels, lowest first.
enum class LaneIsa { baseline, avx2, avx512 };
[[nodiscard]] std::string_view to_string(LaneIsa isa);
[[nodiscard]] std::optional<LaneIsa> parse_lane_isa(std::string_view text);

// The best ISA this CPU runs (AVX-512 needs F, BW, DQ and VL; AVX2 needs FMA too).
[[nodiscard]] LaneIsa cpu_lane_isa();
// The ISA every lane kernel uses (the float lanes; the double lanes, whose
// AVX-512 level adds stochastic rounding's draws eight at a time; the
// operand quantizer): the CPU's best, lowered by the environment
// variable ACCSIM_ISA=avx512|avx2|baseline (read once; a value the CPU
// cannot run is capped to the CPU's best, an unknown one is ignored with a
// one-line warning) or by set_lane_isa.
[[nodiscard]] LaneIsa lane_isa();
// Overrides ACCSIM_ISA (nullopt: back to the CPU's best and ACCSIM_ISA),
// capped to the CPU's best; for tests and benchmarks, which run every ISA's
// kernel on one machine. Not for use while a GEMM runs.
void set_lane_isa(std::optional<LaneIsa> isa);

struct F32Plan;
// Whether the GEMM takes plan_f32's float lanes on lane_isa(): always with
// AVX-512, and always when set_lane_isa forced the ISA (tests and
// benchmarks run every ISA's kernel); with AVX2 or SSE2 only where every
// sum is exact in float, since there the round-to-odd sums cost more than
// the double lanes' exact ones (bench_gemm's paper row, forced to AVX2:
// 2.1e9 MAC/s against the double lanes' 2.1-2.8e9; accsim run's
// configuration, exact sums: 1.9e9 against 1.2e9).
[[nodiscard]] bool use_f32_lanes(const F32Plan& plan);
// The panels (kernel passes per row of A) accumulate_f32 makes over n
// columns of B on lane_isa().
[[nodiscard]] std::size_t f32_panels(const F32Plan& plan, std::size_t n);
struct GemmConfig;
struct QuantizedOperand;
struct GemmResult;
// accumulate_products on plan_f32's route, on lane_isa()'s kernels: fills
// result's c, c_bits (with `encodings`) and product/accumulate/merge counts
// (result.c and c_bits already sized m x n, c_format set). K must be
// positive.
void accumulate_f32(const F32Plan& plan, const QuantizedOperand& a, const QuantizedOperand& b,
                    const GemmConfig& config, GemmResult& result, bool encodings);

// Operands already in float, for a caller that lowers them itself (a
// network's convolutions write them straight into this layout, where the
// operands above are converted, and B packed, on every call): A [m x k]
// row-major; B [k x n] in column panels of kF32PanelCols, each k rows of
// kF32PanelCols values (f32_b_index), columns n .. f32_padded_cols(n)
// zero, so that every kernel's panel, the narrower last one too, reads B
// in place, in consecutive rows.
struct F32Operands {
  const float* a;
  const float* b;
  std::size_t m, k, n;
};
// The widest panel of columns, of which every kernel's width divides.
inline constexpr std::size_t kF32PanelCols = 64;
[[nodiscard]] constexpr std::size_t f32_padded_cols(std::size_t n) {
  return (n + kF32PanelCols - 1) / kF32PanelCols * kF32PanelCols;
}
// Storage for B's layout: each panel row a whole number of 64-byte cache
// lines from a line's start, so that no vector load splits two lines.
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}  // NOLINT(google-explicit-constructor): rebinding
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, kAlign); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const noexcept {
    return true;
  }
};
using F32Buffer = std::vector<float, CacheLineAllocator<float>>;
// Where B's element (kk, j) lies, and the floats the layout takes.
[[nodiscard]] constexpr std::size_t f32_b_index(std::size_t k, std::size_t kk, std::size_t j) {
  return j / kF32PanelCols * k * kF32PanelCols + kk * kF32PanelCols + j % kF32PanelCols;
}
[[nodiscard]] constexpr std::size_t f32_b_size(std::size_t k, std::size_t n) { return k * f32_padded_cols(n); }
// accumulate_products(qa, qb, config, result, false) where plan_f32 gave
// `plan` for qa and qb, use_f32_lanes holds, K is positive, and ops hold
// qa's and qb's values as floats: the same c, stats and counts.
void accumulate_f32(const F32Plan& plan, const F32Operands& ops, const GemmConfig& config, GemmResult& result);

}  // namespace accsim::ref
