// Shared helpers of the hw tests: seeded operands, configurations, and the
// reference result in the order the array's dataflow produces.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>

#include "models/hw/array_config.hpp"
#include "models/hw/cycle_gemm.hpp"
#include "models/reference/gemm.hpp"

namespace accsim::hw::test {

inline std::uint64_t test_seed() {
  const char* env = std::getenv("ACCSIM_TEST_SEED");
  return env ? std::strtoull(env, nullptr, 10) : 20240125;
}

// Values over many binades with exact zeros, so that swamping, underflow and
// cancellation all occur.
inline ref::Matrix random_matrix(std::size_t rows, std::size_t cols, std::mt19937_64& rng, double spread = 6) {
  ref::Matrix m(rows, cols);
  std::uniform_real_distribution<double> unit(-1, 1);
  std::uniform_real_distribution<double> exponent(-spread, spread);
  for (double& x : m.data) x = rng() % 16 == 0 ? 0.0 : unit(rng) * std::exp2(exponent(rng));
  return m;
}

struct Operands {
  ref::QuantizedOperand a, b;
};

inline Operands quantized(std::size_t m, std::size_t k, std::size_t n, const ref::GemmConfig& cfg,
                          std::uint64_t seed, ref::Scaling scaling = ref::Scaling::pow2) {
  std::mt19937_64 rng(seed);
  const ref::Matrix a = random_matrix(m, k, rng);
  const ref::Matrix b = random_matrix(k, n, rng);
  return {ref::quantize_operand(a, cfg.multiplier, scaling, ref::ScaleAxis::rows, 1),
          ref::quantize_operand(b, cfg.multiplier, scaling, ref::ScaleAxis::cols, 2)};
}

inline ref::GemmConfig gemm_config(const std::string& mul, const std::string& acc, const std::string& prod) {
  ref::GemmConfig cfg;
  cfg.multiplier = num::parse_format(mul);
  cfg.accumulator = num::parse_format(acc);
  if (!prod.empty()) cfg.product = num::parse_format(prod);
  cfg.threads = 1;
  cfg.error_stats = false;
  return cfg;
}

inline ArrayConfig array_config(std::size_t rows, std::size_t cols, Dataflow dataflow,
                                WsPartialSums partial_sums = WsPartialSums::merge, unsigned mul_latency = 1,
                                unsigned add_latency = 1) {
  ArrayConfig arr;
  arr.rows = rows;
  arr.cols = cols;
  arr.dataflow = dataflow;
  arr.ws_partial_sums = partial_sums;
  arr.mul_latency = mul_latency;
  arr.add_latency = add_latency;
  return arr;
}

inline void expect_same_counts(const num::EventCounts& a, const num::EventCounts& b, const char* what) {
  EXPECT_EQ(a.ops, b.ops) << what;
  EXPECT_EQ(a.overflow, b.overflow) << what;
  EXPECT_EQ(a.underflow, b.underflow) << what;
  EXPECT_EQ(a.swamp, b.swamp) << what;
  EXPECT_EQ(a.inexact, b.inexact) << what;
  EXPECT_EQ(a.invalid, b.invalid) << what;
}

// The cycle engine against ref::accumulate_products in the dataflow's order:
// every c_bits word and every event count.
inline CycleResult expect_bit_identical(const Operands& ops, ref::GemmConfig cfg, const ArrayConfig& arr) {
  cfg.order = arr.order();
  const ref::GemmResult want = ref::accumulate_products(ops.a, ops.b, cfg);
  CycleResult got = run_cycle_gemm(ops.a, ops.b, cfg, arr);
  EXPECT_EQ(got.gemm.c_format, want.c_format);
  EXPECT_EQ(got.gemm.stats.fast_path, want.stats.fast_path) << "both paths take the same route";
  EXPECT_EQ(got.gemm.c_bits.size(), want.c_bits.size());
  const std::size_t n = ops.b.cols;
  for (std::size_t i = 0; i < want.c_bits.size() && i < got.gemm.c_bits.size(); ++i) {
    if (got.gemm.c_bits[i] != want.c_bits[i]) {
      ADD_FAILURE() << "first mismatch at C[" << i / n << "][" << i % n << "]: cycle 0x" << std::hex
                    << got.gemm.c_bits[i] << " reference 0x" << want.c_bits[i];
      break;
    }
  }
  for (std::size_t i = 0; i < want.c.data.size() && i < got.gemm.c.data.size(); ++i) {
    if (!(got.gemm.c.data[i] == want.c.data[i] || (std::isnan(got.gemm.c.data[i]) && std::isnan(want.c.data[i])))) {
      ADD_FAILURE() << "value mismatch at " << i;
      break;
    }
  }
  expect_same_counts(got.gemm.stats.product, want.stats.product, "product");
  expect_same_counts(got.gemm.stats.accumulate, want.stats.accumulate, "accumulate");
  expect_same_counts(got.gemm.stats.merge, want.stats.merge, "merge");
  return got;
}

}  // namespace accsim::hw::test
