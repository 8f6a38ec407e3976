// The reference GEMM's float lanes (plan_f32): every ISA's kernel (forced
// with set_lane_isa on this machine) against the double lanes of plan_fast
// and the general path (num::mac per step), bit for bit in results, c_bits
// and every event count; and plan_f32's condition at its boundaries.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>

#include "models/numerics/arith.hpp"
#include "models/reference/fast_plan.hpp"
#include "models/reference/gemm.hpp"
#include "models/reference/lanes_f32.hpp"
#include "tests/reference/gemm_test_util.hpp"

namespace accsim::ref {
namespace {

using testing::describe;
using testing::expect_same_counts;
using testing::IsaGuard;
using testing::random_matrix;
using testing::runnable_isas;
using F32Case = testing::GemmCase;

std::uint64_t test_seed() { return testing::test_seed(20261204); }

GemmConfig lanes_config(const F32Case& c) {
  GemmConfig cfg = testing::make_config(c);
  cfg.error_stats = false;
  return cfg;
}

void expect_same(const GemmResult& got, const GemmResult& want, const std::string& what) {
  ASSERT_EQ(got.c_bits.size(), want.c_bits.size());
  for (std::size_t i = 0; i < got.c_bits.size(); ++i) {
    ASSERT_EQ(got.c_bits[i], want.c_bits[i]) << what << ": element " << i / got.c.cols << "," << i % got.c.cols;
    ASSERT_EQ(std::bit_cast<std::uint64_t>(got.c.data[i]), std::bit_cast<std::uint64_t>(want.c.data[i])) << what;
  }
  expect_same_counts(got.stats.product, want.stats.product, what + ": product");
  expect_same_counts(got.stats.accumulate, want.stats.accumulate, what + ": accumulate");
  expect_same_counts(got.stats.merge, want.stats.merge, what + ": merge");
}

// The entry for operands already in float (F32Operands: A as floats, B
// in panels of columns), on every ISA: the values and counts of
// accumulate_products on the general path.
void expect_floats_entry_same(const Matrix& a, const Matrix& b, GemmConfig cfg) {
  const QuantizedOperand qa = quantize_operand(a, cfg.multiplier, cfg.scaling, ScaleAxis::rows, 1);
  const QuantizedOperand qb = quantize_operand(b, cfg.multiplier, cfg.scaling, ScaleAxis::cols, 2);
  const std::size_t m = qa.rows, k = qa.cols, n = qb.cols;
  cfg.allow_fast_path = false;
  const GemmResult want = accumulate_products(qa, qb, cfg);
  cfg.allow_fast_path = true;
  const std::optional<F32Plan> plan = plan_f32(cfg, want.c_format, qa, qb);
  ASSERT_TRUE(plan.has_value());
  const std::vector<float> fa(qa.values.begin(), qa.values.end());
  const std::vector<float> b_rows(qb.values.begin(), qb.values.end());
  std::vector<float> fb(f32_b_size(k, n), 0.0f);
  for (std::size_t kk = 0; kk < k; ++kk) {
    for (std::size_t j = 0; j < n; ++j) fb[f32_b_index(k, kk, j)] = b_rows[kk * n + j];
  }
  IsaGuard guard;
  for (LaneIsa isa : runnable_isas()) {
    set_lane_isa(isa);
    for (unsigned threads : {1u, 2u}) {
      cfg.threads = threads;
      const std::string what =
          "floats entry, " + std::string(to_string(isa)) + ", " + std::to_string(threads) + " threads";
      GemmResult got;
      got.c_bits.assign(3, 0);     // cleared by the call, as accumulate_products without encodings
      got.stats.product.ops = 99;  // reset by the call
      accumulate_f32(*plan, F32Operands{fa.data(), fb.data(), m, k, n}, cfg, got);
      ASSERT_TRUE(got.c_bits.empty()) << what;
      ASSERT_TRUE(got.stats.fast_path && got.stats.f32_lanes) << what;
      ASSERT_EQ(got.c_format, want.c_format) << what;
      ASSERT_EQ(got.c.rows, m);
      ASSERT_EQ(got.c.cols, n);
      for (std::size_t i = 0; i < m * n; ++i) {
        ASSERT_EQ(std::bit_cast<std::uint64_t>(got.c.data[i]), std::bit_cast<std::uint64_t>(want.c.data[i]))
            << what << ": element " << i / n << "," << i % n;
      }
      expect_same_counts(got.stats.product, want.stats.product, what + ": product");
      expect_same_counts(got.stats.accumulate, want.stats.accumulate, what + ": accumulate");
      expect_same_counts(got.stats.merge, want.stats.merge, what + ": merge");
    }
  }
}

class F32LanesMatch : public ::testing::TestWithParam<F32Case> {};

TEST_P(F32LanesMatch, EveryIsaBitsAndEvents) {
  const F32Case& c = GetParam();
  std::mt19937_64 rng(test_seed());
  SCOPED_TRACE(describe(c) + " seed=" + std::to_string(test_seed()));
  const Matrix a = random_matrix(c.m, c.k, rng, c.spread);
  const Matrix b = random_matrix(c.k, c.n, rng, c.spread);
  GemmConfig cfg = lanes_config(c);
  cfg.threads = 1;
  cfg.allow_f32_lanes = false;
  const GemmResult doubles = gemm(a, b, cfg);
  ASSERT_TRUE(doubles.stats.fast_path);
  ASSERT_FALSE(doubles.stats.f32_lanes);
  cfg.allow_fast_path = false;
  const GemmResult general = gemm(a, b, cfg);
  ASSERT_FALSE(general.stats.fast_path);
  expect_same(doubles, general, "double lanes vs general");
  cfg.allow_fast_path = true;
  cfg.allow_f32_lanes = true;
  IsaGuard guard;
  if (cpu_lane_isa() != LaneIsa::avx512) std::cout << "note: this CPU cannot run every ISA's float lanes\n";
  for (LaneIsa isa : runnable_isas()) {
    set_lane_isa(isa);
    ASSERT_EQ(lane_isa(), isa);
    for (unsigned threads : {1u, 2u}) {
      cfg.threads = threads;
      const GemmResult lanes = gemm(a, b, cfg);
      const std::string what = std::string(to_string(isa)) + ", " + std::to_string(threads) + " threads";
      ASSERT_TRUE(lanes.stats.f32_lanes) << what << ": this case is meant to take plan_f32's route";
      ASSERT_TRUE(lanes.stats.fast_path) << what;
      expect_same(lanes, general, what);
    }
  }
  expect_floats_entry_same(a, b, lanes_config(c));
  // The comparison must provoke rounding to prove much; the small-integer
  // cases (spread 0) cancel to zero sums instead.
  if (c.spread == 0) {
    EXPECT_NE(std::count(general.c_bits.begin(), general.c_bits.end(), 0u), 0);
  } else if (c.m * c.k * c.n > 1) {
    EXPECT_GT(general.stats.accumulate.inexact, 0u);
  }
  // The cases with subnormals (no ftz in the accumulator) have tiny sums:
  // their rounding onto the subnormal grid in the lanes is compared above.
  if (c.acc.find("ftz") == std::string::npos) {
    EXPECT_GT(general.stats.accumulate.underflow + general.stats.merge.underflow, 0u);
  }
  // The saturating cases reach the fallback (the hot path never overflows).
  if (c.acc.find("bias=10") != std::string::npos) {
    EXPECT_GT(general.stats.accumulate.overflow, 0u);
    EXPECT_GT(general.stats.product.overflow, 0u);
  }
}

std::vector<F32Case> f32_cases() {
  const char* run_acc = "M7E4,bias=4,round=rtz,ftz";    // accsim run's defaults
  const char* run_prod = "M7E4,bias=6,round=rtz,ftz";
  const char* paper_acc = "M7E4,bias=-4,round=rtz,ftz";  // bench_gemm's paper row
  return {
      // accsim run's configuration: ragged shapes (m, n, k off every vector
      // width; k below the chunk; a single element).
      {"e3m4", run_acc, run_prod, "chunked:16", "pow2", 11, 144, 40},
      {"e3m4", run_acc, run_prod, "chunked:16", "pow2", 3, 9, 49},
      {"e3m4", run_acc, run_prod, "chunked:16", "pow2", 5, 7, 17},
      {"e3m4", run_acc, run_prod, "chunked:16", "pow2", 1, 1, 1},
      {"e3m4", run_acc, run_prod, "sequential", "pow2", 7, 100, 70},
      {"e3m4", run_acc, run_prod, "chunked:16", "pow2", 37, 50, 70},  // blocks of rows, one ragged
      {"e3m4", run_acc, run_prod, "chunked:16", "none", 6, 60, 33, 0},  // zero sums
      // Last panels on the narrow kernels (one vector, four rows at a time,
      // rows left over one by one): 16 and 12 columns past AVX-512's 64
      // (AVX-512's), 4 past (AVX2's, and on the other ISAs their own), as
      // the ResNet's 784 and 196 positions.
      {"e3m4", run_acc, run_prod, "chunked:16", "pow2", 18, 144, 80},
      {"e3m4", run_acc, run_prod, "chunked:16", "pow2", 7, 40, 68},
      {"e3m4", run_acc, run_prod, "sequential", "pow2", 9, 30, 76},
      // The paper row: exact e4m3 products, sums by Fast2Sum and round-to-odd.
      {"e4m3", paper_acc, "", "sequential", "pow2", 9, 300, 35},
      {"e4m3", paper_acc, "", "chunked:16", "pow2", 9, 300, 35},
      {"e4m3", paper_acc, "", "chunked:16", "pow2", 4, 13, 67},
      {"e4m3", paper_acc, "", "chunked:16", "none", 6, 64, 20, 0},
      // Overflow (saturation) and underflow (flush) in every step kind.
      {"e4m3", "M7E4,bias=10,round=rtz,ftz", "M7E4,bias=12,round=rtz,ftz", "chunked:16", "pow2", 13, 70, 37},
      {"e4m3", "M7E4,bias=10,ftz", "M7E4,bias=12,ftz", "chunked:16", "pow2", 13, 70, 37},
      // Nearest-even: ties in narrow products; subnormal products,
      // accumulators and merges (their tiny sums rounded in the lanes), in
      // both modes.
      {"e4m3", "M5E4,bias=10", "M3E4,bias=12", "sequential", "pow2", 6, 90, 21},
      {"e4m3", "M5E4,bias=10,round=rtz", "M3E4,bias=12,round=rtz", "sequential", "pow2", 6, 90, 21},
      {"e4m3", "M7E4,bias=-4", "", "chunked:16", "pow2", 9, 200, 35},
      {"e4m3", "M7E4,bias=-4,round=rtz", "", "chunked:16", "pow2", 9, 200, 35},
      {"e3m4", "M7E4,bias=4", "M7E4,bias=6", "chunked:8:M9E4,bias=2", "pow2", 5, 100, 19},
      {"e3m4", "M7E4,bias=4,round=rtz", "M7E4,bias=6,round=rtz", "chunked:8:M9E4,bias=2,round=rtz", "pow2", 5, 100, 19},
      {"e3m4", "M7E4,bias=4,round=rtz,ftz", "M7E4,bias=6", "chunked:16:M7E4,bias=3,round=rtz", "pow2", 7, 80, 45},
  };
}

INSTANTIATE_TEST_SUITE_P(Formats, F32LanesMatch, ::testing::ValuesIn(f32_cases()));

// The GEMM takes exactly the route plan_f32 gives (a format just outside
// keeps to the double lanes).
bool takes_f32(const GemmConfig& cfg) {
  IsaGuard guard;
  set_lane_isa(cpu_lane_isa());  // forced: whatever the float lanes cost on this CPU (use_f32_lanes)
  std::mt19937_64 rng(test_seed());
  const Matrix a = random_matrix(3, 20, rng, 8), b = random_matrix(20, 5, rng, 8);
  return gemm(a, b, cfg).stats.f32_lanes;
}

std::optional<F32Plan> plan_for(const GemmConfig& cfg) {
  QuantizedOperand q;  // no values: plan_f32 then depends on the formats alone
  return plan_f32(cfg, cfg.order.merge(cfg.accumulator), q, q);
}

// Exact sums: accumulator X = M7E4,bias=4 and products Y = M7E4,bias=b.
// X's largest binade 11 above Y's last place 2^(-6 - b) needs 18 + b bits:
// b = 6 (accsim run's pair) is exact, b = 7 is not, and plan_f32 then forms
// the sums by round-to-odd. The bound is tight: a sum of one X and one Y
// that a float does not hold (checked against the exact double sum).
TEST(PlanF32, ExactSumBoundIsTight) {
  const num::FloatFormat x = std::get<num::FloatFormat>(num::parse_format("M7E4,bias=4,round=rtz,ftz"));
  for (int bias : {6, 7}) {
    GemmConfig cfg;
    cfg.multiplier = num::parse_format("e3m4");
    cfg.accumulator = x;
    cfg.product = num::parse_format("M7E4,bias=" + std::to_string(bias) + ",round=rtz,ftz");
    cfg.order = parse_order("sequential");
    const std::optional<F32Plan> plan = plan_for(cfg);
    ASSERT_TRUE(plan) << bias;
    EXPECT_EQ(plan->accumulate.odd_sum, bias == 7) << bias;
    EXPECT_TRUE(takes_f32(cfg)) << bias;
    const num::FloatFormat y = std::get<num::FloatFormat>(*cfg.product);
    const double largest_x = num::to_double(num::max_finite_bits(x, false), x);
    // Y's smallest binade with its last place set (Y flushes subnormals).
    const double odd_y = std::ldexp(1.0, y.emin()) + std::ldexp(1.0, y.emin() - y.man_bits);
    const double exact = largest_x + odd_y;  // in double: exact
    const float in_float = static_cast<float>(largest_x) + static_cast<float>(odd_y);
    EXPECT_EQ(static_cast<double>(in_float) == exact, bias == 6) << "bias " << bias << ": the bound is tight";
  }
}

// Round-to-odd sums: Fast2Sum needs every sum whose addend's binade lies
// above the accumulator's to be exact. Exact e4m3 products (binades up to
// 17, 8 significant bits) into X = M7E4,bias=b (last place 2^(-6 - b)):
// 24 + b bits. b = 0 is inside, b = 1 outside, and plan_f32 refuses (the
// GEMM keeps to the double lanes). Tight: for b = 1, a sum of that kind
// whose Fast2Sum error is wrong.
TEST(PlanF32, OddSumBoundIsTight) {
  for (int bias : {0, 1}) {
    GemmConfig cfg;
    cfg.multiplier = num::parse_format("e4m3");
    cfg.accumulator = num::parse_format("M7E4,bias=" + std::to_string(bias) + ",round=rtz,ftz");
    cfg.order = parse_order("sequential");
    const std::optional<F32Plan> plan = plan_for(cfg);
    EXPECT_EQ(plan.has_value(), bias == 0) << bias;
    if (plan) {
      EXPECT_TRUE(plan->accumulate.odd_sum);
    }
    EXPECT_EQ(takes_f32(cfg), bias == 0) << bias;
    const num::FloatFormat x = std::get<num::FloatFormat>(cfg.accumulator);
    // X's smallest binade with its last place set, and the largest product.
    const double odd_x = std::ldexp(1.0, x.emin()) + std::ldexp(1.0, x.emin() - x.man_bits);
    const double largest_product = 448.0 * 448.0;
    const float fx = static_cast<float>(odd_x), fy = static_cast<float>(largest_product);
    const float s = fx + fy, z = s - fx, e = fy - z;  // Fast2Sum(acc = x, addend = y)
    const double exact = odd_x + largest_product;
    EXPECT_EQ(static_cast<double>(s) + static_cast<double>(e) == exact, bias == 0) << "bias " << bias;
  }
}

TEST(PlanF32, TheConfigurationsItIsFor) {
  GemmConfig run;
  run.multiplier = num::parse_format("e3m4");
  run.product = num::parse_format("M7E4,bias=6,round=rtz,ftz");
  run.accumulator = num::parse_format("M7E4,bias=4,round=rtz,ftz");
  run.order = parse_order("chunked:16");
  EXPECT_TRUE(plan_for(run));
  GemmConfig paper;
  paper.multiplier = num::parse_format("e4m3");
  paper.accumulator = num::parse_format("M7E4,bias=-4,round=rtz,ftz");
  for (const char* order : {"sequential", "chunked:16"}) {
    paper.order = parse_order(order);
    const std::optional<F32Plan> plan = plan_for(paper);
    ASSERT_TRUE(plan) << order;
    EXPECT_TRUE(plan->accumulate.odd_sum);
  }
  // Refused: modes other than nearest-even and toward zero, wide sums, and
  // plan_fast's refusals.
  for (const char* acc : {"M7E4,bias=-4,round=ru", "fp32", "bf16", "M10E5", "M7E4,round=sr"}) {
    paper.accumulator = num::parse_format(acc);
    EXPECT_FALSE(plan_for(paper)) << acc;
  }
  paper.accumulator = num::parse_format("M7E4,bias=-4,round=rtz,ftz");
  paper.allow_fast_path = false;
  EXPECT_FALSE(plan_for(paper));
}

// Without a forced ISA, AVX2 and SSE2 take the float lanes only where every
// sum is exact in float (use_f32_lanes); forced, always.
TEST(LaneIsa, WhereTheFloatLanesPay) {
  GemmConfig run;
  run.multiplier = num::parse_format("e3m4");
  run.product = num::parse_format("M7E4,bias=6,round=rtz,ftz");
  run.accumulator = num::parse_format("M7E4,bias=4,round=rtz,ftz");
  run.order = parse_order("chunked:16");
  GemmConfig paper;
  paper.multiplier = num::parse_format("e4m3");
  paper.accumulator = num::parse_format("M7E4,bias=-4,round=rtz,ftz");
  const std::optional<F32Plan> exact = plan_for(run), odd = plan_for(paper);
  ASSERT_TRUE(exact && odd);
  IsaGuard guard;
  set_lane_isa(std::nullopt);
  EXPECT_TRUE(use_f32_lanes(*exact));
  EXPECT_EQ(use_f32_lanes(*odd), lane_isa() == LaneIsa::avx512);
  for (LaneIsa isa : runnable_isas()) {
    set_lane_isa(isa);
    EXPECT_TRUE(use_f32_lanes(*odd)) << to_string(isa);
  }
}

TEST(LaneIsa, ForcingLowersAndCaps) {
  IsaGuard guard;
  EXPECT_EQ(parse_lane_isa("avx512"), LaneIsa::avx512);
  EXPECT_EQ(parse_lane_isa("avx2"), LaneIsa::avx2);
  EXPECT_EQ(parse_lane_isa("baseline"), LaneIsa::baseline);
  EXPECT_FALSE(parse_lane_isa("sse9"));
  set_lane_isa(LaneIsa::baseline);
  EXPECT_EQ(lane_isa(), LaneIsa::baseline);
  set_lane_isa(LaneIsa::avx512);
  EXPECT_EQ(lane_isa(), cpu_lane_isa());  // never above what the CPU runs
}

}  // namespace
}  // namespace accsim::ref
