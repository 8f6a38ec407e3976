// What the reference GEMM's tests share: random operands over many binades,
// a case described by its format strings, its GemmConfig, and event counts
// compared field by field.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "models/numerics/arith.hpp"
#include "models/reference/gemm.hpp"
#include "models/reference/lanes_f32.hpp"

namespace accsim::ref::testing {

// Every lane ISA this machine runs, lowest first (the others cannot be tested here).
inline std::vector<LaneIsa> runnable_isas() {
  std::vector<LaneIsa> out;
  for (LaneIsa isa : {LaneIsa::baseline, LaneIsa::avx2, LaneIsa::avx512}) {
    if (isa <= cpu_lane_isa()) out.push_back(isa);
  }
  return out;
}

// Restores the CPU's own lane ISA when a test that forced one ends.
struct IsaGuard {
  IsaGuard() = default;
  IsaGuard(const IsaGuard&) = delete;
  IsaGuard& operator=(const IsaGuard&) = delete;
  ~IsaGuard() { set_lane_isa(std::nullopt); }
};

// ACCSIM_TEST_SEED, else the test file's own fixed seed.
inline std::uint64_t test_seed(std::uint64_t fallback) {
  const char* env = std::getenv("ACCSIM_TEST_SEED");
  return env ? std::strtoull(env, nullptr, 10) : fallback;
}

// Values spread over +-spread binades with exact zeros (zero products and
// zero sums), so swamping, underflow and cancellation all occur; with
// spread 0, small integers, whose sums cancel exactly often.
inline Matrix random_matrix(std::size_t rows, std::size_t cols, std::mt19937_64& rng, double spread = 8) {
  Matrix m(rows, cols);
  std::uniform_real_distribution<double> unit(-1, 1);
  std::uniform_real_distribution<double> exponent(-spread, spread);
  for (double& x : m.data) {
    const auto pick = rng() % 16;
    if (spread == 0) {
      x = static_cast<double>(static_cast<int>(rng() % 7) - 3);
    } else {
      x = pick == 0 ? 0.0 : unit(rng) * std::exp2(exponent(rng));
    }
  }
  return m;
}

struct GemmCase {
  std::string mul, acc, prod, order, scale;
  std::size_t m, k, n;
  double spread = 8;  // operands' binades (see random_matrix)
};

inline std::string describe(const GemmCase& c) {
  return "mul=" + c.mul + " acc=" + c.acc + " prod=" + (c.prod.empty() ? "exact" : c.prod) + " order=" + c.order +
         " scale=" + c.scale + " shape=" + std::to_string(c.m) + "x" + std::to_string(c.k) + "x" +
         std::to_string(c.n) + " spread=" + std::to_string(c.spread);
}

inline GemmConfig make_config(const GemmCase& c) {
  GemmConfig cfg;
  cfg.multiplier = num::parse_format(c.mul);
  cfg.accumulator = num::parse_format(c.acc);
  if (!c.prod.empty()) cfg.product = num::parse_format(c.prod);
  cfg.order = parse_order(c.order);
  cfg.scaling = *parse_scaling(c.scale);
  return cfg;
}

inline void expect_same_counts(const num::EventCounts& a, const num::EventCounts& b, const std::string& what) {
  EXPECT_EQ(a.ops, b.ops) << what;
  EXPECT_EQ(a.overflow, b.overflow) << what;
  EXPECT_EQ(a.underflow, b.underflow) << what;
  EXPECT_EQ(a.swamp, b.swamp) << what;
  EXPECT_EQ(a.inexact, b.inexact) << what;
  EXPECT_EQ(a.invalid, b.invalid) << what;
}

}  // namespace accsim::ref::testing
