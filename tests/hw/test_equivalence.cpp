// The cycle-accurate array against the reference path: bit-identical c_bits
// and identical product / accumulate / merge event counts, for both
// dataflows (and both WS partial-sum modes), array shapes from 1x1 to 32x32,
// GEMM shapes that are not multiples of the array, both arithmetic paths,
// and formats from the paper's 12-bit accumulator to stochastic rounding and
// int8 x int8 -> int32.
#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "test_util.hpp"

namespace accsim::hw {
namespace {

struct FormatCase {
  const char* name;
  const char *mul, *acc, *prod;
  const char* merge = "";  // WS merge: output buffer format ("" = accumulator)
};

const FormatCase kFormats[] = {
    {"paper", "e4m3", "M7E4,bias=10,round=rtz,ftz", "M7E4,bias=12,round=rtz,ftz"},
    {"paper_fused_fp32_merge", "e4m3", "M7E4,bias=10,round=rtz,ftz", "", "fp32"},
    {"fp32", "e4m3", "fp32", ""},
    {"fp16_e5m2", "e5m2", "fp16", "fp16"},
    {"M10E5_rne_product", "e4m3", "M10E5", "M7E5", "M12E6"},
    {"bf16_e3m4", "e3m4", "bf16", ""},
    {"rd_subnormals", "e4m3", "M4E4,round=rd", "M5E4,round=ru"},
    {"stochastic", "e4m3", "M7E4,round=sr,seed=11", "M7E4,bias=12,round=sr,seed=5", "M9E5,round=sr,seed=3"},
    {"int8_int32", "int8", "int32", ""},
};

struct ShapeCase {
  std::size_t rows, cols;   // the array
  std::size_t m, k, n;      // the GEMM, never a multiple of the array
};

const ShapeCase kShapes[] = {
    {1, 1, 5, 9, 3}, {1, 8, 6, 7, 19}, {8, 1, 9, 21, 4}, {4, 4, 13, 37, 19}, {8, 16, 11, 45, 35}, {32, 32, 40, 70, 45},
};

enum class Mode { ws_merge, ws_feedback, os };
std::string to_string(Mode m) { return m == Mode::ws_merge ? "ws_merge" : m == Mode::ws_feedback ? "ws_feedback" : "os"; }

using Param = std::tuple<int, int, Mode>;  // format, shape, dataflow

class CycleMatchesReference : public ::testing::TestWithParam<Param> {};

TEST_P(CycleMatchesReference, BitsAndEvents) {
  const auto [fi, si, mode] = GetParam();
  const FormatCase& f = kFormats[fi];
  const ShapeCase& s = kShapes[si];
  const std::uint64_t seed = test::test_seed() + static_cast<std::uint64_t>(fi * 100 + si * 10 + static_cast<int>(mode));
  SCOPED_TRACE(std::string(f.name) + " " + std::to_string(s.rows) + "x" + std::to_string(s.cols) + " GEMM " +
               std::to_string(s.m) + "x" + std::to_string(s.k) + "x" + std::to_string(s.n) + " " + to_string(mode) +
               " seed=" + std::to_string(seed));
  ref::GemmConfig cfg = test::gemm_config(f.mul, f.acc, f.prod);
  const bool integer = std::holds_alternative<num::IntFormat>(cfg.multiplier);
  const test::Operands ops =
      test::quantized(s.m, s.k, s.n, cfg, seed, integer ? ref::Scaling::tensor : ref::Scaling::pow2);
  // Latencies vary with the case: combinational and pipelined multipliers,
  // single- and multi-cycle adders (OS then issues every add_latency cycles).
  const unsigned mul_latency = static_cast<unsigned>((fi + si) % 3);
  const unsigned add_latency = 1 + static_cast<unsigned>((fi + 2 * si) % 3);
  ArrayConfig arr = test::array_config(
      s.rows, s.cols, mode == Mode::os ? Dataflow::output_stationary : Dataflow::weight_stationary,
      mode == Mode::ws_feedback ? WsPartialSums::feedback : WsPartialSums::merge, mul_latency, add_latency);
  if (*f.merge != 0) arr.merge_format = num::parse_format(f.merge);
  for (const bool allow_fast : {true, false}) {
    SCOPED_TRACE(allow_fast ? "fast path allowed" : "general path");
    cfg.allow_fast_path = allow_fast;
    const CycleResult r = test::expect_bit_identical(ops, cfg, arr);
    EXPECT_EQ(r.stats.cycles, r.stats.formula_cycles) << "unlimited buffers never stall";
    EXPECT_GT(r.gemm.stats.accumulate.ops, 0u);
  }
}

std::string case_name(const ::testing::TestParamInfo<Param>& param) {
  const int fi = std::get<0>(param.param), si = std::get<1>(param.param);
  const ShapeCase& s = kShapes[si];
  return std::string(kFormats[fi].name) + "_" + std::to_string(s.rows) + "x" + std::to_string(s.cols) + "_" +
         to_string(std::get<2>(param.param));
}

INSTANTIATE_TEST_SUITE_P(All, CycleMatchesReference,
                         ::testing::Combine(::testing::Range(0, static_cast<int>(std::size(kFormats))),
                                            ::testing::Range(0, static_cast<int>(std::size(kShapes))),
                                            ::testing::Values(Mode::ws_merge, Mode::ws_feedback, Mode::os)),
                         case_name);

// The cases provoke what the comparison is about: rounding, swamping and
// underflow in the paper's format, and the fast path where it applies.
TEST(CycleMatchesReference, PaperFormatProvokesEvents) {
  const FormatCase& f = kFormats[0];
  ref::GemmConfig cfg = test::gemm_config(f.mul, f.acc, f.prod);
  const test::Operands ops = test::quantized(33, 130, 37, cfg, test::test_seed());
  const ArrayConfig arr = test::array_config(16, 16, Dataflow::weight_stationary);
  const CycleResult r = test::expect_bit_identical(ops, cfg, arr);
  EXPECT_TRUE(r.gemm.stats.fast_path);
  EXPECT_GT(r.gemm.stats.accumulate.inexact, 0u);
  EXPECT_GT(r.gemm.stats.accumulate.swamp, 0u);
  EXPECT_GT(r.gemm.stats.product.inexact, 0u);
  EXPECT_GT(r.gemm.stats.merge.ops, 0u);
}

// Stochastic rounding: the draws depend on (i, j, step) exactly as in the
// reference, so a different seed changes the result and the same one does
// not; the order's steps count the merges (K + chunks).
TEST(CycleMatchesReference, StochasticRoundingUsesTheReferenceKeys) {
  ref::GemmConfig cfg = test::gemm_config("e4m3", "M3E4,round=sr,seed=1", "");
  const test::Operands ops = test::quantized(9, 40, 7, cfg, test::test_seed());
  ArrayConfig arr = test::array_config(8, 4, Dataflow::weight_stationary);
  arr.merge_format = num::parse_format("M4E5,round=sr,seed=2");
  const CycleResult first = test::expect_bit_identical(ops, cfg, arr);
  cfg.accumulator = num::parse_format("M3E4,round=sr,seed=2");
  const CycleResult second = test::expect_bit_identical(ops, cfg, arr);
  EXPECT_NE(first.gemm.c_bits, second.gemm.c_bits);
  EXPECT_FALSE(first.gemm.stats.fast_path);
}

// Many runs in one process share the one SystemC elaboration; results do
// not depend on what ran before.
TEST(CycleMatchesReference, RepeatedRunsAreIdentical) {
  const ref::GemmConfig cfg = test::gemm_config("e4m3", "M7E4,bias=10,round=rtz,ftz", "");
  const test::Operands ops = test::quantized(12, 20, 9, cfg, 3);
  ArrayConfig arr = test::array_config(4, 4, Dataflow::output_stationary);
  ref::GemmConfig c = cfg;
  c.order = arr.order();
  const CycleResult a = run_cycle_gemm(ops.a, ops.b, c, arr);
  const CycleResult b = run_cycle_gemm(ops.a, ops.b, c, arr);
  EXPECT_EQ(a.gemm.c_bits, b.gemm.c_bits);
  EXPECT_EQ(a.stats.cycles, b.stats.cycles);
  EXPECT_EQ(a.stats.toggles, b.stats.toggles);
}

// An empty GEMM takes no cycles and, with K = 0, gives +0 like the reference.
TEST(CycleMatchesReference, EmptyShapes) {
  const ref::GemmConfig cfg = test::gemm_config("e4m3", "fp32", "");
  for (const auto& [m, k, n] : {std::tuple<std::size_t, std::size_t, std::size_t>{3, 0, 4}, {0, 3, 4}, {3, 4, 0}}) {
    const test::Operands ops = test::quantized(m, k, n, cfg, 3);
    for (const Dataflow d : {Dataflow::weight_stationary, Dataflow::output_stationary}) {
      const CycleResult r = test::expect_bit_identical(ops, cfg, test::array_config(4, 4, d));
      EXPECT_EQ(r.stats.cycles, 0u);
      EXPECT_EQ(r.gemm.c_bits.size(), m * n);
    }
  }
}

}  // namespace
}  // namespace accsim::hw
