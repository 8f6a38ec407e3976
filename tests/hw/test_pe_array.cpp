// A plain array of explicit ProcessingElements, clocked one cycle at a time
// with every register and valid bit spelled out: the obviously correct model
// of one tile. The fast array must give the same values, put every result at
// the bottom of the array in the cycle the timing derivation says, take the
// same number of cycles, and count the same register toggles and events.
#include <gtest/gtest.h>

#include <deque>

#include "models/hw/processing_element.hpp"
#include "models/numerics/arith.hpp"
#include "test_util.hpp"

namespace accsim::hw {
namespace {

struct Naive {
  std::vector<std::uint64_t> c_bits;  // M x N, accumulator format
  std::uint64_t cycles = 0;
  ToggleCounts toggles;
  num::EventCounts product, sum;
};

class PeGrid {
 public:
  PeGrid(std::size_t rows, std::size_t cols, const Multiplier& m, const Accumulator& a) : cols_(cols) {
    for (std::size_t i = 0; i < rows * cols; ++i) pes_.emplace_back(m, a);
  }
  ProcessingElement& at(std::size_t r, std::size_t c) { return pes_[r * cols_ + c]; }
  void totals(Naive& out) const {
    for (const ProcessingElement& pe : pes_) {
      out.toggles.activation += pe.toggles().activation;
      out.toggles.weight += pe.toggles().weight;
      out.toggles.product += pe.toggles().product;
      out.toggles.sum += pe.toggles().sum;
      out.product += pe.product_events();
      out.sum += pe.sum_events();
    }
  }

 private:
  std::size_t cols_;
  std::deque<ProcessingElement> pes_;
};

// One WS tile (K <= R, N <= C), partial sums from +0 at the top.
Naive naive_ws(const test::Operands& ops, const ref::GemmConfig& cfg, std::size_t R, std::size_t C, unsigned Lm,
               unsigned La) {
  const std::size_t M = ops.a.rows, K = ops.a.cols, N = ops.b.cols;
  const Multiplier mul(cfg.multiplier, cfg.product, Lm);
  const Accumulator acc(cfg.accumulator, La);
  PeGrid pe(R, C, mul, acc);
  Naive out;
  out.c_bits.assign(M * N, ~std::uint64_t{0});
  // Weight load: K cycles, the tile's rows pushed last row first down the
  // column shift chains; in cycle j rows 0..j shift.
  for (std::size_t j = 0; j < K; ++j, ++out.cycles) {
    for (std::size_t c = 0; c < N; ++c) {
      for (std::size_t r = j; r >= 1; --r) pe.at(r, c).shift_weight(pe.at(r - 1, c).weight().bits);
      pe.at(0, c).shift_weight(ops.b.bits[(K - 1 - j) * N + c]);
    }
  }
  const std::size_t L = R * La + Lm + C - 1;
  for (std::size_t t = 0; t < M + L; ++t, ++out.cycles) {
    std::vector<PeRegister> act(R * C), psum(R * C);
    for (std::size_t r = 0; r < R; ++r) {
      for (std::size_t c = 0; c < N; ++c) {
        // Row r's input skew delays vector m by r * La.
        if (c == 0) {
          if (r < K && t >= r * La && t - r * La < M) {
            const std::size_t m = t - r * La;
            act[r * C] = {true, ops.a.bits[m * K + r], m};
          }
        } else {
          act[r * C + c] = pe.at(r, c - 1).activation();
        }
        if (r == 0) {
          // The top feed meets vector m's product at PE(0, c)'s adder.
          if (t >= c + Lm && t - c - Lm < M) psum[c] = {true, 0, t - c - Lm};
        } else {
          psum[r * C + c] = pe.at(r - 1, c).sum();
        }
      }
    }
    for (std::size_t c = 0; c < N; ++c) {
      const PeRegister& bottom = pe.at(R - 1, c).sum();
      if (bottom.valid) {
        EXPECT_EQ(t, bottom.tag + R * La + c + Lm) << "column " << c << " vector " << bottom.tag;
        out.c_bits[bottom.tag * N + c] = bottom.bits;
      }
    }
    for (std::size_t r = 0; r < R; ++r) {
      for (std::size_t c = 0; c < N; ++c) {
        const PeRegister& a = act[r * C + c];
        const std::uint64_t key = a.valid ? ref::sr_key(a.tag, c, r, N, K + 1) : 0;
        pe.at(r, c).clock_ws(a, psum[r * C + c], r < K, key);
      }
    }
  }
  pe.totals(out);
  return out;
}

// One OS tile (M <= R, N <= C).
Naive naive_os(const test::Operands& ops, const ref::GemmConfig& cfg, std::size_t R, std::size_t C, unsigned Lm,
               unsigned La) {
  const std::size_t M = ops.a.rows, K = ops.a.cols, N = ops.b.cols;
  const Multiplier mul(cfg.multiplier, cfg.product, Lm);
  const Accumulator acc(cfg.accumulator, La);
  PeGrid pe(R, C, mul, acc);
  Naive out;
  out.c_bits.assign(M * N, ~std::uint64_t{0});
  const std::size_t D = K * La + R + C - 2 + Lm;
  // Step k enters at k * La; row r's skew delays A by r, column c's B by c.
  const auto due = [&](std::size_t t, std::size_t skew, std::size_t& k) {
    if (t < skew || (t - skew) % La != 0) return false;
    k = (t - skew) / La;
    return k < K;
  };
  for (std::size_t t = 0; t < D + R; ++t, ++out.cycles) {
    if (t >= D) {  // drain: the bottom row leaves, the rest shift down, +0 enters
      const std::size_t row = R - 1 - (t - D);
      for (std::size_t c = 0; c < N; ++c) {
        if (row < M) out.c_bits[row * N + c] = pe.at(R - 1, c).sum().bits;
        for (std::size_t r = R - 1; r >= 1; --r) pe.at(r, c).drain(pe.at(r - 1, c).sum().bits);
        pe.at(0, c).drain(0);
      }
      continue;
    }
    std::vector<PeRegister> act(R * C), w(R * C);
    for (std::size_t r = 0; r < M; ++r) {
      for (std::size_t c = 0; c < N; ++c) {
        std::size_t k = 0;
        if (c == 0) {
          if (due(t, r, k)) act[r * C] = {true, ops.a.bits[r * K + k], k};
        } else {
          act[r * C + c] = pe.at(r, c - 1).activation();
        }
        if (r == 0) {
          if (due(t, c, k)) w[c] = {true, ops.b.bits[k * N + c], k};
        } else {
          w[r * C + c] = pe.at(r - 1, c).weight();
        }
      }
    }
    for (std::size_t r = 0; r < M; ++r) {
      for (std::size_t c = 0; c < N; ++c) {
        const PeRegister& a = act[r * C + c];
        pe.at(r, c).clock_os(a, w[r * C + c], a.valid ? ref::sr_key(r, c, a.tag, N, K + 1) : 0);
      }
    }
  }
  pe.totals(out);
  return out;
}

struct PeCase {
  std::size_t R, C;
  unsigned Lm, La;
  std::size_t M, K, N;
};

struct FormatCase {
  const char *mul, *acc, *prod;
};
const FormatCase kFormats[] = {
    {"e4m3", "M7E4,bias=10,round=rtz,ftz", "M7E4,bias=12,round=rtz,ftz"},
    {"e4m3", "fp16", ""},
    {"e4m3", "M6E4,round=sr,seed=3", "M6E4,round=sr,seed=4"},
};

void compare(const Naive& naive, const CycleResult& fast) {
  EXPECT_EQ(naive.c_bits, fast.gemm.c_bits);
  EXPECT_EQ(naive.cycles, fast.stats.cycles);
  EXPECT_EQ(naive.toggles.activation, fast.stats.toggles.activation);
  EXPECT_EQ(naive.toggles.weight, fast.stats.toggles.weight);
  EXPECT_EQ(naive.toggles.product, fast.stats.toggles.product);
  EXPECT_EQ(naive.toggles.sum, fast.stats.toggles.sum);
  test::expect_same_counts(naive.sum, fast.gemm.stats.accumulate, "accumulate");
  if (fast.gemm.stats.product.ops > 0) test::expect_same_counts(naive.product, fast.gemm.stats.product, "product");
}

class ExplicitPeArray : public ::testing::TestWithParam<PeCase> {};

TEST_P(ExplicitPeArray, WeightStationaryTile) {
  const PeCase& p = GetParam();
  for (const FormatCase& f : kFormats) {
    ref::GemmConfig cfg = test::gemm_config(f.mul, f.acc, f.prod);
    const test::Operands ops = test::quantized(p.M, std::min(p.K, p.R), std::min(p.N, p.C), cfg, test::test_seed());
    const Naive naive = naive_ws(ops, cfg, p.R, p.C, p.Lm, p.La);
    for (const bool allow_fast : {true, false}) {
      SCOPED_TRACE(std::string(f.acc) + (allow_fast ? " fast" : " general"));
      cfg.allow_fast_path = allow_fast;
      // One k-tile: feedback's result is the column sum itself.
      compare(naive, test::expect_bit_identical(
                         ops, cfg, test::array_config(p.R, p.C, Dataflow::weight_stationary, WsPartialSums::feedback, p.Lm, p.La)));
    }
  }
}

TEST_P(ExplicitPeArray, OutputStationaryTile) {
  const PeCase& p = GetParam();
  for (const FormatCase& f : kFormats) {
    ref::GemmConfig cfg = test::gemm_config(f.mul, f.acc, f.prod);
    const test::Operands ops = test::quantized(std::min(p.M, p.R), p.K, std::min(p.N, p.C), cfg, test::test_seed() + 1);
    const Naive naive = naive_os(ops, cfg, p.R, p.C, p.Lm, p.La);
    for (const bool allow_fast : {true, false}) {
      SCOPED_TRACE(std::string(f.acc) + (allow_fast ? " fast" : " general"));
      cfg.allow_fast_path = allow_fast;
      compare(naive, test::expect_bit_identical(
                         ops, cfg, test::array_config(p.R, p.C, Dataflow::output_stationary, WsPartialSums::merge, p.Lm, p.La)));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, ExplicitPeArray,
                         ::testing::Values(PeCase{1, 1, 0, 1, 3, 1, 1}, PeCase{4, 4, 1, 1, 6, 4, 4},
                                           PeCase{5, 3, 0, 2, 7, 3, 2}, PeCase{3, 5, 2, 3, 4, 2, 5},
                                           PeCase{6, 6, 3, 1, 9, 5, 4}, PeCase{2, 7, 1, 4, 5, 9, 6}));

// A PE whose operands arrive out of step is a timing bug the explicit model
// refuses rather than computes.
TEST(ProcessingElement, RefusesOperandsOutOfStep) {
  const Multiplier mul(num::formats::e4m3(), std::nullopt, 1);
  const Accumulator acc(num::formats::fp16(), 1);
  ProcessingElement pe(mul, acc);
  pe.shift_weight(0x38);
  pe.clock_ws({true, 0x38, 0}, {}, true, 0);                        // product enters the multiplier
  EXPECT_THROW(pe.clock_ws({}, {}, true, 0), std::logic_error);     // reaches the adder: no partial sum
  const Accumulator pipelined(num::formats::fp16(), 2);
  ProcessingElement os(mul, pipelined);
  EXPECT_THROW(os.clock_os({true, 0x38, 0}, {}, 0), std::logic_error);
}

}  // namespace
}  // namespace accsim::hw
