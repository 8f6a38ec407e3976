// The reference GEMM: its double-lane fast path against its general path
// (num::mac per step), both against the machine's own float and _Float16
// arithmetic, and its invariance to thread count.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <utility>
#include <vector>
#include <string>

#include "models/numerics/arith.hpp"
#include "models/reference/gemm.hpp"
#include "models/reference/lanes_f32.hpp"
#include "tests/reference/gemm_test_util.hpp"

namespace accsim::ref {
namespace {

using testing::describe;
using testing::expect_same_counts;
using testing::GemmCase;
using testing::IsaGuard;
using testing::make_config;
using testing::random_matrix;
using testing::runnable_isas;

std::uint64_t test_seed() { return testing::test_seed(20240125); }

class FastPathMatchesGeneral : public ::testing::TestWithParam<GemmCase> {};

TEST_P(FastPathMatchesGeneral, BitsAndEvents) {
  const GemmCase& c = GetParam();
  std::mt19937_64 rng(test_seed());
  SCOPED_TRACE(describe(c) + " seed=" + std::to_string(test_seed()));
  const Matrix a = random_matrix(c.m, c.k, rng);
  const Matrix b = random_matrix(c.k, c.n, rng);
  GemmConfig cfg = make_config(c);
  cfg.error_stats = false;
  cfg.allow_fast_path = false;
  const GemmResult general = gemm(a, b, cfg);
  ASSERT_FALSE(general.stats.fast_path);
  cfg.allow_fast_path = true;
  // The kernels of every ISA this CPU runs, in double lanes and, where
  // plan_f32 takes the case, in float lanes.
  IsaGuard guard;
  for (LaneIsa isa : runnable_isas()) {
    set_lane_isa(isa);
    for (bool f32 : {false, true}) {
      cfg.allow_f32_lanes = f32;
      SCOPED_TRACE(std::string(to_string(isa)) + (f32 ? ", float lanes allowed" : ", double lanes"));
      const GemmResult fast = gemm(a, b, cfg);
      ASSERT_TRUE(fast.stats.fast_path) << "this case is meant to exercise the fast path";
      for (std::size_t i = 0; i < fast.c_bits.size(); ++i) {
        ASSERT_EQ(fast.c_bits[i], general.c_bits[i]) << "element " << i / c.n << "," << i % c.n;
      }
      expect_same_counts(fast.stats.product, general.stats.product, "product");
      expect_same_counts(fast.stats.accumulate, general.stats.accumulate, "accumulate");
      expect_same_counts(fast.stats.merge, general.stats.merge, "merge");
    }
  }
  // The cases must actually provoke rounding, or the comparison proves little.
  EXPECT_GT(general.stats.accumulate.inexact, 0u);
}

std::vector<GemmCase> fast_cases() {
  const char* paper_acc = "M7E4,bias=10,round=rtz,ftz";
  const char* paper_prod = "M7E4,bias=12,round=rtz,ftz";
  std::vector<GemmCase> cases = {
      {"e4m3", paper_acc, paper_prod, "chunked:16", "pow2", 33, 70, 37},
      {"e4m3", paper_acc, "", "sequential", "pow2", 17, 64, 16},
      {"e4m3", "M7E4", "", "chunked:16", "pow2", 9, 100, 21},
      {"e4m3", "M10E5", "", "sequential", "tensor", 5, 257, 18},
      {"e4m3", "M3E4", "", "sequential", "none", 8, 40, 19},
      {"e3m4", "M6E5,ftz", "M7E5", "chunked:8:M10E5", "channel", 7, 50, 33},
      {"M2E4", "M10E5", "", "chunked:4:M12E5", "pow2", 6, 31, 5},
      {"e4m3", "fp16,round=rtz", "", "sequential", "pow2", 4, 64, 20},
      {"e4m3", "fp16,sat", "", "chunked:32", "pow2", 4, 64, 20},
      {"e4m3", "M2E3,bias=1", "", "sequential", "tensor", 5, 30, 17},
      {"e4m3", "M7E4,bias=-2,ftz", "", "sequential", "tensor", 5, 30, 17},
      // Biases that rarely overflow or underflow: the common path of the
      // nearest-even and toward-zero kernels, with its occasional fallback
      // (random_matrix has exact zeros, so zero and -0 products occur).
      {"e4m3", "M7E4,bias=-4,round=rtz,ftz", "", "sequential", "pow2", 9, 300, 35},
      {"e4m3", "M7E4,bias=-4", "", "chunked:16", "pow2", 9, 300, 35},
      {"e3m4", "M7E4,bias=4,round=rtz,ftz", "M7E4,bias=6,round=rtz,ftz", "chunked:16", "pow2", 11, 144, 40},
      {"e3m4", "M7E4,bias=4", "M7E4,bias=6,round=rtz,ftz", "chunked:16", "pow2", 11, 144, 40},
      {"e3m4", "M7E4,bias=4,round=rtz,ftz", "M7E4,bias=6", "sequential", "pow2", 11, 144, 40},
      {"e3m4", "M9E5,ftz", "M7E4,bias=6,ftz", "chunked:8", "pow2", 5, 100, 16},
      // A single chunk (k <= chunk) is still merged into the merge format.
      {"e4m3", paper_acc, paper_prod, "chunked:16", "pow2", 7, 16, 21},
      {"e4m3", "M7E4,bias=10", "", "chunked:32:M4E4,bias=8", "pow2", 6, 20, 19},
  };
  // Every rounding mode of the accumulator and of the product.
  for (const char* mode : {"rne", "rna", "rtz", "rd", "ru"}) {
    for (const char* pmode : {"rne", "rtz", "ru"}) {
      cases.push_back({"e4m3", std::string("M7E4,bias=10,round=") + mode,
                       std::string("M5E4,bias=12,round=") + pmode, "chunked:16:M9E5,round=" + std::string(mode), "pow2",
                       6, 48, 17});
    }
    cases.push_back({"e4m3", std::string("M4E4,ftz,round=") + mode, "", "sequential", "tensor", 5, 64, 16});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Formats, FastPathMatchesGeneral, ::testing::ValuesIn(fast_cases()));

// Formats beyond exact double sums, on the reference GEMM's second kernel
// (plan_any_lanes): wide accumulators, infinities (the panels that overflow
// are redone by the general path), stochastic rounding, integers. Bits and
// every event count as the general path's.
class LanesMatchGeneral : public ::testing::TestWithParam<GemmCase> {};

TEST_P(LanesMatchGeneral, BitsAndEvents) {
  const GemmCase& c = GetParam();
  std::mt19937_64 rng(test_seed());
  SCOPED_TRACE(describe(c) + " seed=" + std::to_string(test_seed()));
  const Matrix a = random_matrix(c.m, c.k, rng, c.spread);
  const Matrix b = random_matrix(c.k, c.n, rng, c.spread);
  GemmConfig cfg = make_config(c);
  cfg.error_stats = false;
  cfg.allow_fast_path = false;
  const GemmResult general = gemm(a, b, cfg);
  ASSERT_FALSE(general.stats.fast_path);
  ASSERT_FALSE(general.stats.any_lanes);
  cfg.allow_fast_path = true;
  // Every ISA's kernels (baseline, AVX2, and AVX-512's stochastic-rounding draws) this CPU runs.
  IsaGuard guard;
  for (LaneIsa isa : runnable_isas()) {
    set_lane_isa(isa);
    SCOPED_TRACE(std::string("lanes ") + std::string(to_string(isa)));
    const GemmResult fast = gemm(a, b, cfg);
    ASSERT_TRUE(fast.stats.any_lanes) << "this case is meant to exercise plan_any_lanes' kernels";
    ASSERT_FALSE(fast.stats.fast_path);
    for (std::size_t i = 0; i < fast.c_bits.size(); ++i) {
      ASSERT_EQ(fast.c_bits[i], general.c_bits[i]) << "element " << i / c.n << "," << i % c.n;
      ASSERT_EQ(std::bit_cast<std::uint64_t>(fast.c.data[i]), std::bit_cast<std::uint64_t>(general.c.data[i]));
    }
    expect_same_counts(fast.stats.product, general.stats.product, "product");
    expect_same_counts(fast.stats.accumulate, general.stats.accumulate, "accumulate");
    expect_same_counts(fast.stats.merge, general.stats.merge, "merge");
  }
  // Something must round, wrap or saturate, or the comparison proves little.
  EXPECT_GT(general.stats.accumulate.inexact + general.stats.accumulate.overflow + general.stats.merge.overflow, 0u);
}

std::vector<GemmCase> lanes_cases() {
  std::vector<GemmCase> cases = {
      // Wide accumulators: fp32 and bf16 sums that no double holds.
      {"e4m3", "fp32", "", "sequential", "none", 9, 300, 35},
      {"e4m3", "fp32,ftz", "", "chunked:16", "pow2", 9, 130, 21},
      {"e4m3", "bf16", "", "sequential", "tensor", 7, 200, 19},
      {"e4m3", "bf16,round=rtz", "bf16,round=rtz", "chunked:16:fp32", "pow2", 6, 100, 33},
      {"e5m2", "fp32", "M10E5,round=rtz", "sequential", "none", 5, 100, 17},
      // IEEE fp16: products of pow2-scaled e4m3 operands exceed 65504, so
      // panels overflow to infinity and fall back; unscaled ones rarely do.
      {"e4m3", "fp16", "", "sequential", "pow2", 6, 64, 40},
      {"e4m3", "fp16", "", "chunked:16", "none", 6, 200, 40},
      {"e4m3", "fp16,round=ru", "fp16", "chunked:8:fp32", "none", 5, 80, 20},
      // Stochastic rounding: narrow sums exact in double, wide ones to odd;
      // products and merges with their own seeds.
      {"e4m3", "M7E4,bias=-4,round=sr,seed=3", "", "sequential", "pow2", 9, 300, 35},
      {"e4m3", "bf16,round=sr,seed=1", "", "chunked:16", "none", 7, 150, 21},
      {"e4m3", "M7E4,round=sr", "M7E4,bias=6,round=sr,seed=9", "chunked:16:M10E5,round=sr,seed=4", "pow2", 6, 90, 18},
      {"e3m4", "M6E5,round=sr,ftz", "M7E4,bias=6,round=rtz,ftz", "sequential", "pow2", 5, 70, 17},
      {"e4m3", "fp16,round=sr,seed=5", "", "sequential", "none", 5, 100, 17},
      // Integer accumulators: int8 products (exact), e4m3 products (rounded to
      // the nearest integer each step), wrapping and saturating.
      // (Operands within a binade or two of the largest: sums that wrap.)
      {"int16", "int32", "", "sequential", "tensor", 7, 300, 19, 1},
      {"int8", "int16", "", "chunked:16", "tensor", 7, 300, 19, 1},
      {"int8", "int16,sat", "", "sequential", "tensor", 7, 300, 19, 1},
      {"int8", "int32,sat", "", "chunked:8:int16,sat", "tensor", 5, 100, 21, 1},
      {"int16", "int32,sat", "", "chunked:16", "tensor", 5, 100, 21, 1},
      {"e4m3", "int32", "", "sequential", "none", 5, 100, 17},
      {"e4m3", "int16,sat", "", "chunked:16", "pow2", 5, 100, 17},
  };
  // Stochastic rounding into fp32 (and M20E8, the widest format with fewer
  // than 33 bits below its last place in a double): TwoSum's pairs, with
  // products and merges rounded the same way; bf16 operands over +-62
  // binades give products near fp32's subnormals and its top binades.
  for (const GemmCase& c : std::initializer_list<GemmCase>{
           {"e4m3", "fp32,round=sr,seed=11", "", "sequential", "none", 7, 300, 35},
           {"e4m3", "fp32,round=sr,seed=12", "", "chunked:16", "pow2", 7, 150, 21},
           {"e4m3", "fp32,round=sr,ftz,seed=13", "fp32,round=sr,seed=2", "chunked:16:fp32,round=sr,seed=3", "none",
            5, 100, 19},
           {"bf16", "fp32,round=sr,seed=14", "", "sequential", "none", 5, 200, 17, 62},
           {"bf16", "fp32,round=sr,seed=15", "fp32,round=rtz", "chunked:8", "none", 5, 120, 17, 64},
           {"bf16", "fp32,round=sr,ftz,seed=16", "", "chunked:16", "none", 5, 120, 17, 62},
           {"e4m3", "M20E8,round=sr,seed=17", "", "sequential", "none", 5, 200, 33},
           // More steps, and more chunks, than one block of draws made ahead.
           {"e4m3", "fp32,round=sr,seed=18", "", "sequential", "none", 3, 1100, 17},
           {"e4m3", "bf16,round=sr,seed=19", "", "chunked:2", "none", 3, 1100, 17},
       }) {
    cases.push_back(c);
  }
  for (const char* mode : {"rne", "rna", "rtz", "rd", "ru", "sr"}) {
    const std::string acc = std::string("fp32,round=") + mode;
    cases.push_back({"e4m3", acc, "", "chunked:16:bf16,round=" + std::string(mode), "none", 6, 48, 17});
    cases.push_back({"e4m3", std::string("bf16,ftz,round=") + mode, std::string("bf16,round=") + mode, "sequential",
                     "tensor", 5, 64, 16});
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Formats, LanesMatchGeneral, ::testing::ValuesIn(lanes_cases()));

// accumulate_products into a result reused from a larger GEMM, without
// encodings (as the network executor calls it): the same values and counts
// as a fresh call, on the float lanes, the double lanes and the general path.
TEST(ReferenceGemm, ReusedResultWithoutEncodingsHasTheSameValues) {
  std::mt19937_64 rng(test_seed());
  const GemmCase small{"e3m4", "M7E4,bias=4,round=rtz,ftz", "M7E4,bias=6,round=rtz,ftz", "chunked:16", "pow2",
                       7, 40, 68};
  GemmConfig cfg = make_config(small);
  cfg.threads = 1;
  const auto quantized = [&](std::size_t rows, std::size_t cols, ScaleAxis axis, std::uint64_t stream) {
    return quantize_operand(random_matrix(rows, cols, rng), cfg.multiplier, cfg.scaling, axis, stream);
  };
  const QuantizedOperand big_a = quantized(20, 50, ScaleAxis::rows, 1), big_b = quantized(50, 90, ScaleAxis::cols, 2);
  const QuantizedOperand a = quantized(small.m, small.k, ScaleAxis::rows, 1);
  const QuantizedOperand b = quantized(small.k, small.n, ScaleAxis::cols, 2);
  for (int route = 0; route < 3; ++route) {
    cfg.allow_f32_lanes = route == 0;
    cfg.allow_fast_path = route < 2;
    const GemmResult want = accumulate_products(a, b, cfg);
    GemmResult got;
    accumulate_products(big_a, big_b, cfg, got, /*encodings=*/true);
    accumulate_products(a, b, cfg, got, /*encodings=*/false);
    SCOPED_TRACE("route " + std::to_string(route));
    EXPECT_EQ(got.stats.fast_path, want.stats.fast_path);
    EXPECT_EQ(got.stats.f32_lanes, route == 0);
    EXPECT_TRUE(got.c_bits.empty());
    ASSERT_EQ(got.c.rows, small.m);
    ASSERT_EQ(got.c.cols, small.n);
    ASSERT_EQ(got.c.data.size(), want.c.data.size());
    for (std::size_t i = 0; i < want.c.data.size(); ++i) {
      ASSERT_EQ(std::bit_cast<std::uint64_t>(got.c.data[i]), std::bit_cast<std::uint64_t>(want.c.data[i])) << i;
    }
    expect_same_counts(got.stats.accumulate, want.stats.accumulate, "accumulate");
    expect_same_counts(got.stats.product, want.stats.product, "product");
    expect_same_counts(got.stats.merge, want.stats.merge, "merge");
  }
}

// Independent oracle: with an fp32 accumulator and exact products, each step
// is fmaf, which for e4m3 operands equals float(acc) + float(a*b).
TEST(ReferenceGemm, Fp32AccumulatorMatchesNativeFloat) {
  std::mt19937_64 rng(test_seed());
  const Matrix a = random_matrix(13, 300, rng, 20);
  const Matrix b = random_matrix(300, 11, rng, 20);
  GemmConfig cfg;
  cfg.multiplier = num::formats::e4m3();
  cfg.accumulator = num::formats::fp32();
  cfg.scaling = Scaling::none;
  const QuantizedOperand qa = quantize_operand(a, cfg.multiplier, cfg.scaling, ScaleAxis::rows, 1);
  const QuantizedOperand qb = quantize_operand(b, cfg.multiplier, cfg.scaling, ScaleAxis::cols, 2);
  const GemmResult r = accumulate_products(qa, qb, cfg);
  for (std::size_t i = 0; i < 13; ++i) {
    for (std::size_t j = 0; j < 11; ++j) {
      float acc = 0.0f;
      for (std::size_t k = 0; k < 300; ++k) {
        acc = std::fmaf(static_cast<float>(qa.values[i * 300 + k]), static_cast<float>(qb.values[k * 11 + j]), acc);
      }
      ASSERT_EQ(r.c_bits[i * 11 + j], std::bit_cast<std::uint32_t>(acc)) << i << "," << j;
    }
  }
}

// Chunks of 8 summed in _Float16 from +0, merged in float: checks the chunked
// order itself against the machine's arithmetic.
TEST(ReferenceGemm, ChunkedFp16MergedInFp32MatchesNative) {
  std::mt19937_64 rng(test_seed() + 1);
  const Matrix a = random_matrix(7, 77, rng, 3);
  const Matrix b = random_matrix(77, 19, rng, 3);
  GemmConfig cfg;
  cfg.multiplier = num::formats::e4m3();
  cfg.accumulator = num::formats::fp16();
  cfg.product = num::formats::fp16();
  cfg.order = parse_order("chunked:8:fp32");
  const QuantizedOperand qa = quantize_operand(a, cfg.multiplier, Scaling::none, ScaleAxis::rows, 1);
  const QuantizedOperand qb = quantize_operand(b, cfg.multiplier, Scaling::none, ScaleAxis::cols, 2);
  for (bool allow_fast : {true, false}) {
    cfg.allow_fast_path = allow_fast;
    const GemmResult r = accumulate_products(qa, qb, cfg);
    for (std::size_t i = 0; i < 7; ++i) {
      for (std::size_t j = 0; j < 19; ++j) {
        float merged = 0.0f;
        for (std::size_t c0 = 0; c0 < 77; c0 += 8) {
          _Float16 chunk = 0;
          for (std::size_t k = c0; k < std::min<std::size_t>(77, c0 + 8); ++k) {
            const auto p = static_cast<_Float16>(qa.values[i * 77 + k] * qb.values[k * 19 + j]);
            chunk = static_cast<_Float16>(chunk + p);
          }
          merged += static_cast<float>(chunk);
        }
        ASSERT_EQ(r.c_bits[i * 19 + j], std::bit_cast<std::uint32_t>(merged)) << i << "," << j;
      }
    }
  }
}

// Half the operands zero (of either sign), as after a ReLU: zero products
// and zero sums are common, which the nearest-even and toward-zero kernel
// sends out of its inner loop (a zero sum passes its range test only in the
// exact one), and widths that are not a multiple of the panel put padding
// columns beside them. Bits and events as the general path's.
TEST(ReferenceGemm, SparseOperandsMatchGeneralPath) {
  std::mt19937_64 rng(test_seed() + 11);
  std::normal_distribution<double> normal(0.0, 1.0);
  auto sparse = [&](std::size_t rows, std::size_t cols) {
    Matrix m(rows, cols);
    for (double& x : m.data) {
      const auto pick = rng() % 4;
      x = pick == 0 ? 0.0 : pick == 1 ? -0.0 : normal(rng);
    }
    return m;
  };
  for (const std::size_t n : {32u, 37u}) {
    const Matrix a = sparse(6, 100);
    const Matrix b = sparse(100, n);
    for (const char* acc : {"M7E4,bias=-4,round=rtz,ftz", "M7E4,bias=-4", "M7E4,bias=-6"}) {
      for (const char* prod : {"", "M7E4,bias=-2"}) {
        for (const char* order : {"sequential", "chunked:16", "chunked:5"}) {
          GemmConfig cfg;
          cfg.multiplier = num::formats::e4m3();
          cfg.accumulator = num::parse_format(acc);
          if (*prod != 0) cfg.product = num::parse_format(prod);
          cfg.order = parse_order(order);
          cfg.scaling = Scaling::pow2;
          cfg.error_stats = false;
          SCOPED_TRACE(std::string(acc) + " prod=" + prod + " " + order + " n=" + std::to_string(n));
          const GemmResult fast = gemm(a, b, cfg);
          ASSERT_TRUE(fast.stats.fast_path);
          cfg.allow_fast_path = false;
          const GemmResult general = gemm(a, b, cfg);
          EXPECT_EQ(fast.c_bits, general.c_bits);
          expect_same_counts(fast.stats.product, general.stats.product, "product");
          expect_same_counts(fast.stats.accumulate, general.stats.accumulate, "accumulate");
          expect_same_counts(fast.stats.merge, general.stats.merge, "merge");
        }
      }
    }
  }
}

TEST(ReferenceGemm, IdenticalForAnyThreadCount) {
  std::mt19937_64 rng(test_seed() + 2);
  const Matrix a = random_matrix(37, 64, rng);
  const Matrix b = random_matrix(64, 29, rng);
  for (bool allow_fast : {true, false}) {
    for (const char* acc : {"M7E4,bias=10,round=rtz,ftz", "M7E4,round=sr,seed=7"}) {
      GemmConfig cfg;
      cfg.accumulator = num::parse_format(acc);
      cfg.order = parse_order("chunked:16");
      cfg.scaling = Scaling::pow2;
      cfg.allow_fast_path = allow_fast;
      cfg.threads = 1;
      const GemmResult one = gemm(a, b, cfg);
      for (unsigned t : {2u, 3u, 8u}) {
        cfg.threads = t;
        const GemmResult many = gemm(a, b, cfg);
        EXPECT_EQ(one.c_bits, many.c_bits) << acc << " threads=" << t;
        expect_same_counts(one.stats.accumulate, many.stats.accumulate, "accumulate");
        expect_same_counts(one.stats.merge, many.stats.merge, "merge");
        EXPECT_EQ(one.stats.vs_original.snr_db, many.stats.vs_original.snr_db);
      }
    }
  }
}

TEST(ReferenceGemm, StochasticRoundingDependsOnSeedOnly) {
  std::mt19937_64 rng(test_seed() + 3);
  const Matrix a = random_matrix(8, 64, rng);
  const Matrix b = random_matrix(64, 8, rng);
  GemmConfig cfg;
  cfg.scaling = Scaling::pow2;
  cfg.accumulator = num::parse_format("M5E5,round=sr,seed=1");
  const GemmResult r1 = gemm(a, b, cfg);
  const GemmResult r1_again = gemm(a, b, cfg);
  cfg.accumulator = num::parse_format("M5E5,round=sr,seed=2");
  const GemmResult r2 = gemm(a, b, cfg);
  EXPECT_EQ(r1.c_bits, r1_again.c_bits);
  EXPECT_NE(r1.c_bits, r2.c_bits);
}

TEST(Quantize, Pow2PlacesLargestInTopBinade) {
  Matrix m(2, 3);
  m.data = {0.3, -5.5, 1.0, 2.0, 0.0, -0.01};
  const QuantizedOperand q = quantize_operand(m, num::formats::e4m3(), Scaling::pow2, ScaleAxis::rows, 0);
  ASSERT_EQ(q.scale.size(), 1u);
  // |−5.5| is in [4, 8); e4m3's top binade is [256, 512): scale 2^6.
  EXPECT_EQ(q.scale[0], 64.0);
  EXPECT_EQ(q.values[1], -352.0);  // 5.5 * 64 = 352 = 1.375 * 256, representable
}

// The values at a format's boundaries, both signs: the largest finite value,
// its neighbours and the midpoints around it (saturation or overflow), the
// smallest normal and the ties beside it, the smallest subnormal and the
// ties below it (underflow, flush to zero), ties in the middle binade, and
// zeros. Integers: the ties and limits of their range.
std::vector<double> boundary_values(const num::Format& f) {
  std::vector<double> v;
  if (const auto* ff = std::get_if<num::FloatFormat>(&f)) {
    const double max = num::to_double(num::max_finite_bits(*ff, false), f);
    const double ulp_max = std::ldexp(1.0, ff->emax() - ff->man_bits);
    const double min_normal = std::ldexp(1.0, ff->emin());
    const double sub = std::ldexp(1.0, ff->emin() - ff->man_bits);  // the subnormal grid
    for (double x : {max, max - ulp_max, max - ulp_max / 2, max + ulp_max / 2, max + ulp_max, 2 * max,
                     min_normal, min_normal + sub / 2, min_normal - sub / 2, min_normal - sub, sub, sub / 2,
                     sub * 1.5, sub * 2.5, sub / 4, sub * 0.75}) {
      v.push_back(x);
    }
    for (int j = 0; j < 8; ++j) v.push_back(1.0 + (2 * j + 1) * std::ldexp(1.0, -ff->man_bits - 1));
  } else {
    const int bits = std::get<num::IntFormat>(f).bits;
    const double top = std::ldexp(1.0, bits - 1);
    for (double x : {top - 1, top - 0.5, top, top + 0.5, 0.5, 1.5, 2.5}) v.push_back(x);
  }
  const std::size_t count = v.size();
  for (std::size_t i = 0; i < count; ++i) v.push_back(-v[i]);
  v.push_back(0.0);
  v.push_back(-0.0);
  return v;
}

// quantize_operand rounds most elements in double lanes, four at a time
// (fast::Rounder::make_any), the rest one at a time; every element must
// match rounding the exact x * scale with round_pack, events included.
// Values: short significands (ties and exact cases), long ones, zeros of
// both signs, subnormal and huge doubles, over ranges wide enough to
// overflow and flush every format, and each format's boundary values.
// Shapes whose rows are no multiple of 4 leave every lane position a tail.
TEST(Quantize, MatchesRoundPackElementwise) {
  IsaGuard guard;
  std::mt19937_64 rng(test_seed() + 9);
  Matrix m(23, 41);
  for (double& x : m.data) {
    const auto pick = rng() % 64;
    if (pick == 0) {
      x = (rng() & 1) ? -0.0 : 0.0;
    } else if (pick == 1) {
      x = std::ldexp(static_cast<double>(rng() % 1000 + 1), -1070);  // a subnormal double
    } else if (pick == 2) {
      x = std::ldexp(static_cast<double>(rng() % 1000 + 1), 1000);
    } else {
      const int bits = 1 + static_cast<int>(rng() % (pick < 32 ? 12 : 53));
      const auto sig = static_cast<double>((rng() >> (64 - bits)) | 1);
      x = std::ldexp(sig, static_cast<int>(rng() % 90) - 45 - bits);
      if (rng() & 1) x = -x;
    }
  }
  Matrix narrow = m;  // |x| <= 2^8 or so: pow2 and tensor scales stay sane
  for (double& x : narrow.data) {
    if (std::fabs(x) > 0x1p8 || (x != 0 && std::fabs(x) < 0x1p-60)) x = std::ldexp(x, -std::ilogb(x));
  }
  for (const char* fmt : {"e4m3", "e3m4", "e5m2", "M3E4,ftz", "M4E3,round=rtz", "M4E3,round=ru", "M4E3,round=rd,ftz",
                          "M2E5,round=rna", "M7E4,bias=10", "M7E4,bias=10,round=rtz,ftz", "M7E4,bias=6,round=rtz,ftz",
                          "fp16,round=rtz", "fp16,sat", "fp16,round=ru", "bf16,round=rtz", "bf16,round=rd,ftz",
                          "M10E5,round=rd", "M4E3,round=sr,seed=5", "int8", "int16,sat"}) {
    const num::Format f = num::parse_format(fmt);
    // The boundaries, repeated over a ragged shape so each meets every lane.
    const std::vector<double> edges = boundary_values(f);
    Matrix boundary(7, 19);
    for (std::size_t i = 0; i < boundary.data.size(); ++i) boundary.data[i] = edges[(i * 5) % edges.size()];
    for (const Scaling scaling : {Scaling::none, Scaling::pow2, Scaling::tensor, Scaling::channel}) {
      for (const ScaleAxis axis : {ScaleAxis::rows, ScaleAxis::cols}) {
        for (const Matrix* src : {&m, &narrow, &boundary}) {
          for (LaneIsa isa : runnable_isas()) {  // the quantizer's lanes of every ISA this CPU runs
            set_lane_isa(isa);
            SCOPED_TRACE(std::string(fmt) + " " + std::string(to_string(isa)) +
                         " scale=" + std::string(to_string(scaling)) + (axis == ScaleAxis::rows ? " rows" : " cols") +
                         " matrix " + std::to_string(src->rows) + "x" + std::to_string(src->cols));
            const QuantizedOperand q = quantize_operand(*src, f, scaling, axis, 3);
            num::EventCounts want;
            for (std::size_t r = 0; r < src->rows; ++r) {
              for (std::size_t c = 0; c < src->cols; ++c) {
                const std::size_t idx = r * src->cols + c;
                const num::Result res = num::quantize(
                    num::exact_product(num::exact_from_double(src->data[idx]), num::exact_from_double(q.scale_at(r, c))),
                    f, (std::uint64_t{3} << 48) ^ idx);
                ASSERT_EQ(q.bits[idx], res.bits) << "element " << idx << " x=" << std::hexfloat << src->data[idx];
                const double v = num::to_double(res.bits, f);
                ASSERT_EQ(std::bit_cast<std::uint64_t>(q.values[idx]), std::bit_cast<std::uint64_t>(v))
                    << "element " << idx;
                want.record(res.events);
              }
            }
            expect_same_counts(q.events, want, "quantize");
          }
        }
      }
    }
  }
}

// The float entry point (the network's tensors) gives what the Matrix of the
// same values gives (checked against round_pack above), scales included,
// also when it refills an operand that held another shape.
TEST(Quantize, FloatOperandsMatchTheMatrixOfTheirValues) {
  std::mt19937_64 rng(test_seed() + 10);
  std::vector<float> x(13 * 11);
  for (float& v : x) {
    const auto pick = rng() % 8;
    const int bits = 1 + static_cast<int>(rng() % 24);
    v = pick < 3 ? 0.0f  // ReLU-like zeros
                 : std::ldexp(static_cast<float>((rng() >> (64 - bits)) | 1), static_cast<int>(rng() % 40) - 20 - bits);
    if (rng() & 1) v = -v;
  }
  x[7] = -0.0f;
  x[8] = std::numeric_limits<float>::denorm_min();
  x[9] = std::numeric_limits<float>::max();
  QuantizedOperand got;
  for (const char* fmt : {"e3m4", "e4m3", "M4E3,round=rtz,ftz", "int8", "fp16,round=rtz", "M2E5,ftz", "bf16,round=sr"}) {
    for (const Scaling s : {Scaling::pow2, Scaling::tensor, Scaling::channel, Scaling::none}) {
      for (const ScaleAxis axis : {ScaleAxis::rows, ScaleAxis::cols}) {
        for (const auto& [rows, cols] : {std::pair<std::size_t, std::size_t>{13, 11}, {1, 13 * 11}, {11, 13}}) {
          SCOPED_TRACE(std::string(fmt) + " scale=" + std::string(to_string(s)) + " " + std::to_string(rows) + "x" +
                       std::to_string(cols));
          const num::Format f = num::parse_format(fmt);
          Matrix m(rows, cols);
          for (std::size_t i = 0; i < x.size(); ++i) m.data[i] = x[i];
          const QuantizedOperand want = quantize_operand(m, f, s, axis, 2);
          for (LaneIsa isa : runnable_isas()) {  // each ISA's lanes widen the floats their own way
            SCOPED_TRACE(to_string(isa));
            IsaGuard guard;
            set_lane_isa(isa);
            quantize_operand(x.data(), rows, cols, f, s, axis, 2, got);
            EXPECT_EQ(got.rows, rows);
            EXPECT_EQ(got.cols, cols);
            EXPECT_EQ(got.axis, axis);
            EXPECT_EQ(got.bits, want.bits);
            EXPECT_EQ(got.scale, want.scale);
            expect_same_counts(got.events, want.events, "quantize");
            ASSERT_EQ(got.values.size(), want.values.size());
            for (std::size_t i = 0; i < x.size(); ++i) {
              ASSERT_EQ(std::bit_cast<std::uint64_t>(got.values[i]), std::bit_cast<std::uint64_t>(want.values[i])) << i;
            }
          }
        }
      }
    }
  }
  // All zeros: scale 1 with every scaling.
  const std::vector<float> zeros(10, 0.0f);
  quantize_operand(zeros.data(), 1, 10, num::formats::e3m4(), Scaling::pow2, ScaleAxis::rows, 2, got);
  EXPECT_EQ(got.scale, std::vector<double>{1.0});
  EXPECT_EQ(got.events.ops, 10u);
  EXPECT_EQ(got.events.inexact, 0u);
}

// A -0 operand (here a negative input flushed by e3m4) times +0 is -0, and
// -0 + -0 keeps the accumulator at -0; the fast path once broadcast operands
// by adding them to +0, which made the product +0 and the result +0.
TEST(ReferenceGemm, NegativeZeroOperandKeepsItsSign) {
  GemmConfig cfg;
  cfg.multiplier = num::parse_format("e3m4");
  cfg.product = num::parse_format("M7E4,bias=6");
  cfg.accumulator = num::parse_format("M7E4,bias=4,round=rtz,ftz");
  cfg.order = parse_order("sequential");
  cfg.error_stats = false;
  Matrix a(1, 2), b(2, 1);
  a.data = {-0.0625, -0x1p-30};  // the second flushes to -0 in e3m4
  b.data = {0.0625, 0.0};
  const GemmResult fast = gemm(a, b, cfg);
  ASSERT_TRUE(fast.stats.fast_path);
  cfg.allow_fast_path = false;
  const GemmResult general = gemm(a, b, cfg);
  EXPECT_EQ(general.c_bits[0], std::uint64_t{1} << 11);  // -0: the first product underflows to -0 in the sum
  EXPECT_EQ(fast.c_bits[0], general.c_bits[0]);
}

TEST(Quantize, TensorAndChannelMapAbsmaxToFormatMax) {
  Matrix m(2, 2);
  m.data = {1.0, -3.0, 0.5, 0.25};
  const QuantizedOperand t = quantize_operand(m, num::formats::e4m3(), Scaling::tensor, ScaleAxis::rows, 0);
  EXPECT_EQ(t.values[1], -448.0);
  const QuantizedOperand c = quantize_operand(m, num::formats::e4m3(), Scaling::channel, ScaleAxis::rows, 0);
  ASSERT_EQ(c.scale.size(), 2u);
  EXPECT_EQ(c.values[1], -448.0);
  EXPECT_EQ(c.values[2], 448.0);
  const QuantizedOperand cols = quantize_operand(m, num::formats::e4m3(), Scaling::channel, ScaleAxis::cols, 0);
  EXPECT_EQ(cols.values[0], 448.0);
  EXPECT_EQ(cols.values[1], -448.0);
  const QuantizedOperand i8 = quantize_operand(m, num::IntFormat{8, false}, Scaling::tensor, ScaleAxis::rows, 0);
  EXPECT_EQ(num::to_double(i8.bits[1], num::IntFormat{8, false}), -127.0);
}

TEST(ReferenceGemm, ScaleIsUndoneAndErrorsAreReported) {
  std::mt19937_64 rng(test_seed() + 4);
  const Matrix a = random_matrix(16, 128, rng, 2);
  const Matrix b = random_matrix(128, 16, rng, 2);
  GemmConfig cfg;
  cfg.accumulator = num::formats::fp32();
  cfg.scaling = Scaling::pow2;
  const GemmResult wide = gemm(a, b, cfg);
  // With an fp32 accumulator the only error is the e4m3 input rounding: the
  // result tracks the exact GEMM of the quantized inputs to fp32 precision.
  EXPECT_LT(wide.stats.vs_quantized.rel_frobenius, 1e-6);
  EXPECT_GT(wide.stats.vs_original.rel_frobenius, 1e-3);  // e4m3 inputs lose ~2^-4
  EXPECT_LT(wide.stats.vs_original.rel_frobenius, 0.2);
  cfg.accumulator = num::parse_format("M7E4,bias=10,round=rtz,ftz");
  const GemmResult narrow = gemm(a, b, cfg);
  EXPECT_GT(narrow.stats.vs_quantized.rel_frobenius, wide.stats.vs_quantized.rel_frobenius);
  EXPECT_LT(narrow.stats.vs_quantized.snr_db, wide.stats.vs_quantized.snr_db);
}

// A small IEEE multiplier format overflows to infinity on quantization; the
// lanes carry finite values only, so the general path must take over (the
// M7E5 accumulator has no infinity: each infinite product saturates it).
TEST(ReferenceGemm, InfiniteOperandsTakeTheGeneralPath) {
  Matrix a(1, 2), b(2, 3);
  a.data = {1e6, 1.0};
  b.data = {1.0, 1.0, 0.5, -1e6, 0.0, 0.25};
  GemmConfig cfg;
  cfg.multiplier = num::parse_format("M2E3,ieee");
  cfg.accumulator = num::parse_format("M7E5");
  cfg.error_stats = false;
  const GemmResult r = gemm(a, b, cfg);
  EXPECT_FALSE(r.stats.fast_path);
  cfg.allow_fast_path = false;
  const GemmResult general = gemm(a, b, cfg);
  EXPECT_EQ(r.c_bits, general.c_bits);
  EXPECT_GT(r.stats.accumulate.overflow, 0u);
}

TEST(ReferenceGemm, RejectsBadShapesAndNonFinite) {
  GemmConfig cfg;
  EXPECT_THROW((void)gemm(Matrix(2, 3), Matrix(4, 2), cfg), std::invalid_argument);
  Matrix a(2, 2);
  a.data[3] = std::nan("");
  EXPECT_THROW((void)gemm(a, Matrix(2, 2), cfg), std::invalid_argument);
}

TEST(AccumulationOrder, ParsesAndPrints) {
  EXPECT_TRUE(parse_order("sequential").sequential());
  EXPECT_EQ(parse_order("chunked:16").chunk, 16);
  const AccumulationOrder o = parse_order("chunked:4:M10E5,round=rtz");
  EXPECT_EQ(to_string(o), "chunked:4:M10E5,round=rtz");
  EXPECT_EQ(parse_order(to_string(o)), o);
  for (const char* bad : {"chunked", "chunked:", "chunked:0", "chunked:x", "chunked:4:M99E4", "random"}) {
    EXPECT_THROW((void)parse_order(bad), num::FormatError) << bad;
  }
  try {
    (void)parse_order("chunked:4:M60E4");
  } catch (const num::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("mantissa bits must be 0..52"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace accsim::ref
