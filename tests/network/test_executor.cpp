// The executor: operator semantics against plain loops written here (with
// small integer data, so float arithmetic is exact and results compare
// exactly), the native fp32 engine against the reference GEMM in fp32 bit
// for bit, the low-bit lowering against ref::gemm, and determinism.
#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>

#include "models/numerics/arith.hpp"
#include "models/reference/gemm.hpp"
#include "onnx_builder.hpp"
#include "tests/reference/gemm_test_util.hpp"
#include "sim/network/evaluate.hpp"
#include "sim/network/executor.hpp"
#include "sim/network/float_gemm.hpp"
#include "sim/network/kernels.hpp"
#include "sim/network/onnx_loader.hpp"

namespace accsim::net {
namespace {

using testing::attr_float;
using testing::attr_int;
using testing::attr_ints;
using testing::attr_string;
using testing::attr_tensor;
using testing::float_tensor;
using testing::int64_tensor;
using testing::ModelBuilder;

std::vector<float> small_ints(std::size_t n, int lo, int hi, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(d(rng));
  return v;
}

std::vector<float> run_fp32(const std::string& bytes, const std::vector<float>& input) {
  const Network net = parse_onnx(bytes, "m.onnx");
  const Executor ex(net, std::vector<LayerArithmetic>(net.gemm_layers.size()));
  auto ws = ex.make_workspace();
  const auto out = ex.run(input, *ws);
  return {out.begin(), out.end()};
}

// --- Conv ---------------------------------------------------------------------------

struct ConvCase {
  std::int64_t c, h, w, m, kh, kw, group, sh, sw, dh, dw;
  std::vector<std::int64_t> pads;  // top, left, bottom, right (empty: auto_pad)
  std::string auto_pad;
};

std::vector<float> conv_loops(const ConvCase& k, const std::vector<float>& x, const std::vector<float>& w,
                              const std::vector<float>& b, std::int64_t pt, std::int64_t pl, std::int64_t oh,
                              std::int64_t ow) {
  std::vector<float> out(static_cast<std::size_t>(k.m * oh * ow));
  const std::int64_t cg = k.c / k.group, mg = k.m / k.group;
  for (std::int64_t o = 0; o < k.m; ++o) {
    const std::int64_t g = o / mg;
    for (std::int64_t y = 0; y < oh; ++y) {
      for (std::int64_t xx = 0; xx < ow; ++xx) {
        double s = 0;
        for (std::int64_t c = 0; c < cg; ++c) {
          for (std::int64_t r = 0; r < k.kh; ++r) {
            for (std::int64_t q = 0; q < k.kw; ++q) {
              const std::int64_t iy = y * k.sh - pt + r * k.dh, ix = xx * k.sw - pl + q * k.dw;
              if (iy < 0 || iy >= k.h || ix < 0 || ix >= k.w) continue;
              s += w[static_cast<std::size_t>(((o * cg + c) * k.kh + r) * k.kw + q)] *
                   x[static_cast<std::size_t>(((g * cg + c) * k.h + iy) * k.w + ix)];
            }
          }
        }
        out[static_cast<std::size_t>((o * oh + y) * ow + xx)] = static_cast<float>(s + b[static_cast<std::size_t>(o)]);
      }
    }
  }
  return out;
}

class ConvSemantics : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvSemantics, MatchesDirectLoops) {
  const ConvCase& k = GetParam();
  const auto x = small_ints(static_cast<std::size_t>(k.c * k.h * k.w), -4, 4, 1);
  const auto w = small_ints(static_cast<std::size_t>(k.m * (k.c / k.group) * k.kh * k.kw), -3, 3, 2);
  const auto b = small_ints(static_cast<std::size_t>(k.m), -5, 5, 3);
  ModelBuilder mb;
  mb.input("x", {1, k.c, k.h, k.w}).output("y");
  mb.init(float_tensor("w", {k.m, k.c / k.group, k.kh, k.kw}, w));
  mb.init(float_tensor("b", {k.m}, b));
  auto& node = mb.node("Conv", {"x", "w", "b"}, {"y"}, "conv");
  attr_int(node, "group", k.group);
  attr_ints(node, "strides", {k.sh, k.sw});
  attr_ints(node, "dilations", {k.dh, k.dw});
  std::int64_t pt = 0, pl = 0, pb = 0, pr = 0;
  const std::int64_t eh = (k.kh - 1) * k.dh + 1, ew = (k.kw - 1) * k.dw + 1;
  std::int64_t oh = 0, ow = 0;
  if (k.auto_pad.empty()) {
    attr_ints(node, "pads", k.pads);
    pt = k.pads[0], pl = k.pads[1], pb = k.pads[2], pr = k.pads[3];
    oh = (k.h + pt + pb - eh) / k.sh + 1;
    ow = (k.w + pl + pr - ew) / k.sw + 1;
  } else {
    attr_string(node, "auto_pad", k.auto_pad);
    if (k.auto_pad == "VALID") {
      oh = (k.h - eh) / k.sh + 1;
      ow = (k.w - ew) / k.sw + 1;
    } else {  // SAME_*: output = ceil(in / stride), the extra pad at the end (UPPER) or start (LOWER)
      oh = (k.h + k.sh - 1) / k.sh;
      ow = (k.w + k.sw - 1) / k.sw;
      const std::int64_t th = std::max<std::int64_t>(0, (oh - 1) * k.sh + eh - k.h);
      const std::int64_t tw = std::max<std::int64_t>(0, (ow - 1) * k.sw + ew - k.w);
      pt = k.auto_pad == "SAME_UPPER" ? th / 2 : th - th / 2;
      pl = k.auto_pad == "SAME_UPPER" ? tw / 2 : tw - tw / 2;
    }
  }
  const Network net = parse_onnx(mb.bytes(), "m.onnx");
  EXPECT_EQ(net.output_shape(), (Shape{1, k.m, oh, ow}));
  EXPECT_EQ(run_fp32(mb.bytes(), x), conv_loops(k, x, w, b, pt, pl, oh, ow));
}

INSTANTIATE_TEST_SUITE_P(
    Configs, ConvSemantics,
    ::testing::Values(ConvCase{1, 5, 5, 2, 3, 3, 1, 1, 1, 1, 1, {1, 1, 1, 1}, ""},
                      ConvCase{3, 7, 6, 4, 3, 3, 1, 2, 2, 1, 1, {1, 1, 1, 1}, ""},
                      ConvCase{2, 6, 7, 3, 3, 2, 1, 1, 2, 2, 1, {0, 2, 1, 0}, ""},
                      ConvCase{4, 5, 5, 6, 3, 3, 2, 1, 1, 1, 1, {1, 1, 1, 1}, ""},
                      ConvCase{4, 6, 6, 4, 3, 3, 4, 2, 1, 1, 2, {1, 0, 1, 2}, ""},
                      ConvCase{2, 7, 5, 2, 1, 1, 1, 2, 2, 1, 1, {0, 0, 0, 0}, ""},
                      ConvCase{2, 6, 6, 2, 3, 3, 1, 2, 2, 1, 1, {}, "SAME_UPPER"},
                      ConvCase{2, 6, 6, 2, 2, 2, 1, 1, 1, 1, 1, {}, "SAME_LOWER"},
                      ConvCase{2, 6, 5, 2, 3, 2, 1, 2, 1, 1, 1, {}, "VALID"}));

// --- Gemm and MatMul ----------------------------------------------------------------

TEST(GemmSemantics, TransposesAlphaBetaAndBroadcastC) {
  const std::int64_t m = 2, k = 3, n = 4;
  const auto a = small_ints(m * k, -3, 3, 4);  // stored [k, m] (transA)
  const auto b = small_ints(k * n, -3, 3, 5);  // stored [n, k] (transB)
  for (const std::vector<std::int64_t>& cdims : {std::vector<std::int64_t>{n}, {m, 1}, {1, 1}, {m, n}}) {
    std::int64_t csize = 1;
    for (auto d : cdims) csize *= d;
    const auto c = small_ints(static_cast<std::size_t>(csize), -8, 8, 6);
    ModelBuilder mb;
    mb.input("a", {k, m}).output("y");
    mb.init(float_tensor("b", {n, k}, b));
    mb.init(float_tensor("c", cdims, c));
    auto& g = mb.node("Gemm", {"a", "b", "c"}, {"y"}, "fc");
    attr_int(g, "transA", 1);
    attr_int(g, "transB", 1);
    attr_float(g, "alpha", 2.0f);
    attr_float(g, "beta", 0.5f);
    std::vector<float> want(static_cast<std::size_t>(m * n));
    for (std::int64_t i = 0; i < m; ++i) {
      for (std::int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (std::int64_t kk = 0; kk < k; ++kk) s += a[static_cast<std::size_t>(kk * m + i)] * b[static_cast<std::size_t>(j * k + kk)];
        const std::int64_t ci = (cdims.size() == 2 && cdims[0] != 1 ? i * (cdims.back() != 1 ? n : 1) : 0) +
                                (cdims.back() != 1 ? j : 0);
        want[static_cast<std::size_t>(i * n + j)] = static_cast<float>(2 * s + 0.5 * c[static_cast<std::size_t>(ci)]);
      }
    }
    EXPECT_EQ(run_fp32(mb.bytes(), a), want) << "C dims " << cdims.size();
  }
}

TEST(MatMulSemantics, LeadingDimensionsAndVectors) {
  {
    ModelBuilder mb;  // [2, 3, 4] x [4, 5] -> [2, 3, 5]
    mb.input("a", {2, 3, 4}).output("y");
    const auto b = small_ints(20, -2, 2, 7);
    mb.init(float_tensor("b", {4, 5}, b));
    mb.node("MatMul", {"a", "b"}, {"y"}, "mm");
    const auto a = small_ints(24, -2, 2, 8);
    std::vector<float> want(30);
    for (int r = 0; r < 6; ++r)
      for (int j = 0; j < 5; ++j) {
        float s = 0;
        for (int kk = 0; kk < 4; ++kk) s += a[static_cast<std::size_t>(r * 4 + kk)] * b[static_cast<std::size_t>(kk * 5 + j)];
        want[static_cast<std::size_t>(r * 5 + j)] = s;
      }
    EXPECT_EQ(parse_onnx(mb.bytes(), "m").output_shape(), (Shape{2, 3, 5}));
    EXPECT_EQ(run_fp32(mb.bytes(), a), want);
  }
  {
    ModelBuilder mb;  // [3, 4] x [4] -> [3]
    mb.input("a", {3, 4}).output("y");
    mb.init(float_tensor("b", {4}, {1, 2, 3, 4}));
    mb.node("MatMul", {"a", "b"}, {"y"}, "mm");
    EXPECT_EQ(parse_onnx(mb.bytes(), "m").output_shape(), (Shape{3}));
    EXPECT_EQ(run_fp32(mb.bytes(), {1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 1}), (std::vector<float>{1, 2, 10}));
  }
}

// --- elementwise, pooling and the rest ----------------------------------------------

TEST(FloatOps, AddBroadcastsLikeNumpy) {
  ModelBuilder mb;
  mb.input("x", {2, 3, 2}).output("y");
  mb.init(float_tensor("b", {3, 1}, {10, 20, 30}));
  mb.node("Add", {"x", "b"}, {"y"}, "add");
  std::vector<float> x(12);
  for (int i = 0; i < 12; ++i) x[static_cast<std::size_t>(i)] = static_cast<float>(i);
  EXPECT_EQ(run_fp32(mb.bytes(), x), (std::vector<float>{10, 11, 22, 23, 34, 35, 16, 17, 28, 29, 40, 41}));
}

TEST(FloatOps, MaxPoolWithPadsCeilModeAndDilation) {
  // 1x1x4x5 input 0..19; kernel 2x2, stride 2, ceil_mode: out 2x3; the last
  // column's windows hang over the edge and see only column 4.
  ModelBuilder mb;
  mb.input("x", {1, 1, 4, 5}).output("y");
  auto& p = mb.node("MaxPool", {"x"}, {"y"}, "pool");
  attr_ints(p, "kernel_shape", {2, 2});
  attr_ints(p, "strides", {2, 2});
  attr_int(p, "ceil_mode", 1);
  std::vector<float> x(20);
  for (int i = 0; i < 20; ++i) x[static_cast<std::size_t>(i)] = static_cast<float>(i);
  EXPECT_EQ(parse_onnx(mb.bytes(), "m").output_shape(), (Shape{1, 1, 2, 3}));
  EXPECT_EQ(run_fp32(mb.bytes(), x), (std::vector<float>{6, 8, 9, 16, 18, 19}));

  ModelBuilder dil;  // kernel 2x2 dilation 2 on 1x1x3x3 with pads 1: out 3x3
  dil.input("x", {1, 1, 3, 3}).output("y");
  auto& d = dil.node("MaxPool", {"x"}, {"y"}, "pool");
  attr_ints(d, "kernel_shape", {2, 2});
  attr_ints(d, "dilations", {2, 2});
  attr_ints(d, "pads", {1, 1, 1, 1});
  // window at (oy, ox) reads rows oy-1, oy+1 and cols ox-1, ox+1.
  EXPECT_EQ(run_fp32(dil.bytes(), {1, 2, 3, 4, 5, 6, 7, 8, 9}), (std::vector<float>{5, 6, 5, 8, 9, 8, 5, 6, 5}));
}

TEST(FloatOps, AveragePoolDivisors) {
  // 1x1x3x3 of ones, kernel 2x2, stride 2, pads 1 on every side: windows
  // cover 1, 2, 2 or 4 input elements.
  for (const int include : {0, 1}) {
    ModelBuilder mb;
    mb.input("x", {1, 1, 3, 3}).output("y");
    auto& p = mb.node("AveragePool", {"x"}, {"y"}, "pool");
    attr_ints(p, "kernel_shape", {2, 2});
    attr_ints(p, "strides", {2, 2});
    attr_ints(p, "pads", {1, 1, 1, 1});
    attr_int(p, "count_include_pad", include);
    const auto got = run_fp32(mb.bytes(), std::vector<float>(9, 1.0f));
    if (include) {
      EXPECT_EQ(got, (std::vector<float>{0.25f, 0.5f, 0.5f, 1.0f})) << "padding counts";
    } else {
      EXPECT_EQ(got, (std::vector<float>{1, 1, 1, 1}));
    }
  }
}

TEST(FloatOps, GlobalAveragePoolFlattenReshapeConcatClipSoftmax) {
  ModelBuilder mb;
  mb.input("x", {1, 2, 2, 2}).output("y");
  mb.node("GlobalAveragePool", {"x"}, {"g"}, "gap");                    // [1,2,1,1]: 2.5, 6.5
  auto& f = mb.node("Flatten", {"g"}, {"f"}, "flat");                   // [1,2]
  attr_int(f, "axis", 1);
  mb.init(int64_tensor("shape", {2}, {0, -1}));
  mb.node("Reshape", {"x", "shape"}, {"r"}, "reshape");                 // [1,8]
  auto& cat = mb.node("Concat", {"f", "r"}, {"c"}, "cat");              // [1,10]
  attr_int(cat, "axis", 1);
  mb.init(float_tensor("lo", {}, {1.5f}));
  mb.init(float_tensor("hi", {}, {6.0f}));
  mb.node("Clip", {"c", "lo", "hi"}, {"y"}, "clip");
  std::vector<float> x{1, 2, 3, 4, 5, 6, 7, 8};
  EXPECT_EQ(run_fp32(mb.bytes(), x), (std::vector<float>{2.5f, 6, 1.5f, 2, 3, 4, 5, 6, 6, 6}));

  ModelBuilder sm;
  sm.input("x", {1, 3}).output("y");
  sm.node("Softmax", {"x"}, {"y"}, "softmax");
  const auto p = run_fp32(sm.bytes(), {0, std::log(2.0f), std::log(5.0f)});
  EXPECT_NEAR(p[0], 0.125, 1e-7);
  EXPECT_NEAR(p[1], 0.25, 1e-7);
  EXPECT_NEAR(p[2], 0.625, 1e-7);
}

TEST(FloatOps, BatchNormalizationAndClipAttributesBeforeOpset11) {
  ModelBuilder mb(9);
  mb.input("x", {1, 2, 1, 2}).output("y");
  mb.init(float_tensor("scale", {2}, {2, 1}));
  mb.init(float_tensor("bias", {2}, {1, 0}));
  mb.init(float_tensor("mean", {2}, {1, -1}));
  mb.init(float_tensor("var", {2}, {4, 1}));
  auto& bn = mb.node("BatchNormalization", {"x", "scale", "bias", "mean", "var"}, {"b"}, "bn");
  attr_float(bn, "epsilon", 0.0f);
  auto& clip = mb.node("Clip", {"b"}, {"y"}, "clip");
  attr_float(clip, "max", 3.0f);
  // channel 0: (x - 1) / 2 * 2 + 1 = x; channel 1: (x + 1) / 1 * 1 + 0 = x + 1
  EXPECT_EQ(run_fp32(mb.bytes(), {1, 5, -3, 2}), (std::vector<float>{1, 3, -2, 3}));
}

// --- the engines ----------------------------------------------------------------------

// Values spread over many binades, including float subnormals and zeros of
// both signs, so that products and sums round, overflow is far away and
// cancellation happens.
std::vector<float> wide_values(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> mant(-1, 1);
  std::uniform_int_distribution<int> expo(-20, 20);
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = std::ldexp(mant(rng), expo(rng));
    if (i % 17 == 0) v[i] = std::ldexp(mant(rng), -140);  // subnormal
    if (i % 23 == 0) v[i] = 0;
    if (i % 29 == 0) v[i] = -0.0f;
  }
  return v;
}

ref::GemmConfig fp32_config() {
  ref::GemmConfig c;
  c.multiplier = num::formats::fp32();
  c.product = num::formats::fp32();
  c.accumulator = num::formats::fp32();
  c.order = ref::AccumulationOrder{};
  c.scaling = ref::Scaling::none;
  c.allow_fast_path = false;
  c.error_stats = false;
  c.threads = 1;
  return c;
}

TEST(NativeFp32, EqualsReferenceGemmInFp32BitForBit) {
  for (const auto& [m, k, n] : {std::tuple<std::size_t, std::size_t, std::size_t>{3, 5, 7}, {8, 64, 33}, {1, 300, 17}}) {
    const auto a = wide_values(m * k, m + k);
    const auto b = wide_values(k * n, k + n);
    std::vector<float> c(m * n);
    gemm_fp32_sequential(a.data(), b.data(), c.data(), m, k, n);
    ref::Matrix am(m, k), bm(k, n);
    for (std::size_t i = 0; i < a.size(); ++i) am.data[i] = a[i];
    for (std::size_t i = 0; i < b.size(); ++i) bm.data[i] = b[i];
    const ref::GemmResult r = ref::gemm(am, bm, fp32_config());
    ASSERT_FALSE(r.stats.fast_path);
    for (std::size_t i = 0; i < m * n; ++i) {
      ASSERT_EQ(std::bit_cast<std::uint32_t>(c[i]), static_cast<std::uint32_t>(r.c_bits[i])) << "element " << i;
    }
  }
}

// The lowerings against the definition, one element at a time: row
// (c, r, s), column (oy, ox) reads x[c, oy * sh - pt + r * dh, ox * sw - pl
// + s * dw], or the padding. Windows with strides, dilations, uneven pads,
// kernels wider than the input and outputs that see no input at all.
TEST(Lowering, Im2colAndIm2rowFollowTheDefinition) {
  struct Case {
    std::int64_t c, h, w;
    Window2d win;
  };
  auto window = [](std::int64_t kh, std::int64_t kw, std::int64_t sh, std::int64_t sw, std::int64_t dh, std::int64_t dw,
                   std::int64_t pt, std::int64_t pl, std::int64_t pb, std::int64_t pr) {
    Window2d win;
    win.kernel_h = kh;
    win.kernel_w = kw;
    win.stride_h = sh;
    win.stride_w = sw;
    win.dilation_h = dh;
    win.dilation_w = dw;
    win.pad_top = pt;
    win.pad_left = pl;
    win.pad_bottom = pb;
    win.pad_right = pr;
    return win;
  };
  const std::vector<Case> cases = {
      {2, 5, 5, window(3, 3, 1, 1, 1, 1, 1, 1, 1, 1)},  {3, 7, 6, window(3, 3, 2, 2, 1, 1, 1, 1, 1, 1)},
      {1, 6, 7, window(3, 2, 1, 3, 2, 1, 0, 2, 3, 1)},  {2, 4, 4, window(1, 1, 1, 1, 1, 1, 0, 0, 0, 0)},
      {1, 3, 3, window(5, 5, 1, 1, 1, 1, 2, 2, 2, 2)},  {2, 2, 3, window(3, 3, 1, 1, 1, 1, 4, 4, 4, 4)},
      {1, 9, 8, window(2, 3, 3, 2, 3, 2, 1, 0, 0, 2)},
      // Stride 1 and as many output columns as input ones: each row one
      // shifted copy (dilated, lopsided padding, a 1-row input).
      {2, 6, 5, window(3, 3, 1, 1, 2, 2, 2, 2, 2, 2)},  {1, 4, 7, window(1, 3, 1, 1, 1, 1, 0, 1, 0, 1)},
      {2, 5, 6, window(2, 4, 1, 1, 1, 1, 0, 2, 1, 1)},  {1, 1, 9, window(3, 3, 1, 1, 1, 1, 1, 1, 1, 1)}};
  for (const Case& cs : cases) {
    const Window2d& win = cs.win;
    const std::int64_t oh = (cs.h + win.pad_top + win.pad_bottom - win.dilation_h * (win.kernel_h - 1) - 1) / win.stride_h + 1;
    const std::int64_t ow = (cs.w + win.pad_left + win.pad_right - win.dilation_w * (win.kernel_w - 1) - 1) / win.stride_w + 1;
    ASSERT_GT(oh, 0);
    ASSERT_GT(ow, 0);
    std::vector<float> x(static_cast<std::size_t>(cs.c * cs.h * cs.w));
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i + 1);
    const std::int64_t k = cs.c * win.kernel_h * win.kernel_w, n = oh * ow;
    std::vector<double> cols(static_cast<std::size_t>(k * n), -7.0), rows(static_cast<std::size_t>(k * n), -7.0);
    im2col(x.data(), cs.c, cs.h, cs.w, win, oh, ow, -1.0, cols.data());
    im2row(x.data(), cs.c, cs.h, cs.w, win, oh, ow, -1.0, rows.data());
    // In panels of 8 columns (k rows of 8 each), as the float lanes' layout
    // with narrower panels: the same elements, and nothing written in the
    // last panel's columns past n.
    constexpr std::int64_t kBlock = 8;
    const std::int64_t blocks = (n + kBlock - 1) / kBlock;
    std::vector<double> panels(static_cast<std::size_t>(blocks * k * kBlock), -7.0);
    im2col(x.data(), cs.c, cs.h, cs.w, win, oh, ow, -1.0, panels.data(), kBlock, kBlock, k * kBlock);
    for (std::int64_t row = 0; row < k; ++row) {
      for (std::int64_t col = 0; col < blocks * kBlock; ++col) {
        const double got = panels[static_cast<std::size_t>(col / kBlock * k * kBlock + row * kBlock + col % kBlock)];
        ASSERT_EQ(got, col < n ? cols[static_cast<std::size_t>(row * n + col)] : -7.0)
            << "panels row " << row << " col " << col;
      }
    }
    for (std::int64_t ch = 0; ch < cs.c; ++ch)
      for (std::int64_t r = 0; r < win.kernel_h; ++r)
        for (std::int64_t q = 0; q < win.kernel_w; ++q)
          for (std::int64_t oy = 0; oy < oh; ++oy)
            for (std::int64_t ox = 0; ox < ow; ++ox) {
              const std::int64_t iy = oy * win.stride_h - win.pad_top + r * win.dilation_h;
              const std::int64_t ix = ox * win.stride_w - win.pad_left + q * win.dilation_w;
              const double want = (iy < 0 || iy >= cs.h || ix < 0 || ix >= cs.w)
                                      ? -1.0
                                      : static_cast<double>(x[static_cast<std::size_t>((ch * cs.h + iy) * cs.w + ix)]);
              const std::int64_t row = (ch * win.kernel_h + r) * win.kernel_w + q, col = oy * ow + ox;
              ASSERT_EQ(cols[static_cast<std::size_t>(row * n + col)], want) << "im2col row " << row << " col " << col;
              ASSERT_EQ(rows[static_cast<std::size_t>(col * k + row)], want) << "im2row row " << col << " col " << row;
            }
  }
}

// The yardsticks against a plain loop: sequential from +0, each product
// formed in double and added (the project builds with -ffp-contract=off, so
// the loop rounds twice per step). Products of floats are exact in double,
// so the fused multiply-adds of gemm_f64 must give the same bits.
template <class T>
std::vector<double> sequential_f64(const std::vector<T>& a, const std::vector<T>& b, std::size_t m, std::size_t k,
                                   std::size_t n) {
  std::vector<double> c(m * n);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      double sum = 0;
      for (std::size_t kk = 0; kk < k; ++kk) sum = sum + static_cast<double>(a[i * k + kk]) * static_cast<double>(b[kk * n + j]);
      c[i * n + j] = sum;
    }
  }
  return c;
}

void expect_same_doubles(const std::vector<double>& got, const std::vector<double>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(std::bit_cast<std::uint64_t>(got[i]), std::bit_cast<std::uint64_t>(want[i])) << what << " element " << i;
  }
}

// The int16 kernels of gemm_exact_sums this machine runs: one per lane
// ISA, and on AVX-512 with VNNI the AVX-512BW kernel too.
struct Int16Kernel {
  ref::LaneIsa isa;
  bool vnni;
  [[nodiscard]] std::string name() const { return std::string(ref::to_string(isa)) + (vnni ? "+vnni" : ""); }
  void use() const {
    ref::set_lane_isa(isa);
    set_int16_vnni(vnni);
  }
};
std::vector<Int16Kernel> int16_kernels() {
  std::vector<Int16Kernel> out;
  set_int16_vnni(std::nullopt);
  const bool cpu_vnni = int16_vnni();
  for (const ref::LaneIsa isa : ref::testing::runnable_isas()) {
    out.push_back({isa, false});
    if (isa == ref::LaneIsa::avx512 && cpu_vnni) out.push_back({isa, true});
  }
  return out;
}
// Restores the lane ISA and the int16 kernel when a test that forced them ends.
struct Int16KernelGuard {
  ref::testing::IsaGuard isa;
  Int16KernelGuard() = default;
  Int16KernelGuard(const Int16KernelGuard&) = delete;
  Int16KernelGuard& operator=(const Int16KernelGuard&) = delete;
  ~Int16KernelGuard() { set_int16_vnni(std::nullopt); }
};

using Shape3 = std::tuple<std::size_t, std::size_t, std::size_t>;
const std::vector<Shape3> kYardstickShapes = {{3, 5, 7}, {8, 64, 33}, {1, 300, 17}, {16, 144, 49}, {5, 9, 100}};

TEST(Yardstick, FloatOperandsEqualTheSequentialLoop) {
  for (const auto& [m, k, n] : kYardstickShapes) {
    const auto a = wide_values(m * k, m + k);
    const auto b = wide_values(k * n, k + n);
    std::vector<double> c(m * n);
    gemm_f64(a.data(), b.data(), c.data(), m, k, n);
    expect_same_doubles(c, sequential_f64(a, b, m, k, n), "gemm_f64(float)");
    const std::vector<double> wide_a(a.begin(), a.end());
    std::fill(c.begin(), c.end(), -1.0);
    gemm_f64(wide_a.data(), b.data(), c.data(), m, k, n);
    expect_same_doubles(c, sequential_f64(a, b, m, k, n), "gemm_f64(double A, float B)");
  }
}

// Values of a multiplier format (rounded through the reference quantizer):
// with exact products both routes of gemm_f64 give the loop's bits, and
// where sums_exact_in_double holds, OpenBLAS's dgemm gives them too.
TEST(Yardstick, FormatValuesEqualTheSequentialLoop) {
  for (const char* fmt : {"e3m4", "e4m3", "int8", "M7E4,bias=6"}) {
    const num::Format f = num::parse_format(fmt);
    for (const auto& [m, k, n] : kYardstickShapes) {
      SCOPED_TRACE(std::string(fmt) + " " + std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n));
      const auto a_f = wide_values(m * k, m + k + 1);
      const auto b_f = wide_values(k * n, k + n + 1);
      ref::QuantizedOperand qa, qb;
      ref::quantize_operand(a_f.data(), m, k, f, ref::Scaling::pow2, ref::ScaleAxis::rows, 1, qa);
      ref::quantize_operand(b_f.data(), k, n, f, ref::Scaling::pow2, ref::ScaleAxis::cols, 2, qb);
      const std::vector<double> want = sequential_f64(qa.values, qb.values, m, k, n);
      ASSERT_TRUE(products_exact_in_double(f));
      std::vector<double> c(m * n);
      gemm_f64(qa.values.data(), qb.values.data(), c.data(), m, k, n, true);
      expect_same_doubles(c, want, "fused");
      gemm_f64(qa.values.data(), qb.values.data(), c.data(), m, k, n, false);
      expect_same_doubles(c, want, "unfused");
      ASSERT_TRUE(sums_exact_in_double(f, k));
      std::fill(c.begin(), c.end(), -1.0);
      gemm_f64_exact_sums(qa.values.data(), qb.values.data(), c.data(), m, k, n);
      expect_same_doubles(c, want, "dgemm");
    }
  }
}

// The grids: e3m4 (values 2^-6 .. 31) multiplies into a grid of 22 bits, and
// K = 576 adds 10 more: exact. Products of fp32 values span far more than
// 53 bits; int32 products need 62 bits; fp32 products themselves are exact
// (48 bits), those of a 27-bit significand are not.
TEST(Yardstick, ExactnessFollowsTheFormatsGrid) {
  EXPECT_TRUE(sums_exact_in_double(num::parse_format("e3m4"), 576));
  EXPECT_TRUE(sums_exact_in_double(num::parse_format("int8"), 1 << 20));
  EXPECT_TRUE(sums_exact_in_double(num::parse_format("int16"), 1 << 20));  // 2^30 * 2^20 = 2^50
  EXPECT_FALSE(sums_exact_in_double(num::parse_format("int16"), std::size_t{1} << 24));
  EXPECT_FALSE(sums_exact_in_double(num::parse_format("fp32"), 2));
  EXPECT_FALSE(sums_exact_in_double(num::parse_format("bf16"), 1));
  EXPECT_TRUE(products_exact_in_double(num::parse_format("fp32")));
  EXPECT_TRUE(products_exact_in_double(num::parse_format("M25E8")));   // 26 + 26 bits
  EXPECT_FALSE(products_exact_in_double(num::parse_format("M26E8")));  // 27 + 27 bits
  EXPECT_FALSE(products_exact_in_double(num::parse_format("int32")));
  // One more step than the bound allows: an exact sum must not be claimed.
  // e4m3 (M3E4, values 2^-9 .. 448): products on the grid of 2^-18 and
  // below 2^18, 36 bits; 2^17 terms reach 53 bits, 2^17 + 1 would need 54.
  EXPECT_TRUE(sums_exact_in_double(num::parse_format("e4m3"), std::size_t{1} << 17));
  EXPECT_FALSE(sums_exact_in_double(num::parse_format("e4m3"), (std::size_t{1} << 17) + 1));
}

// The integer route of gemm_exact_sums against the sequential loop, on
// every int16 kernel this machine runs (int16_kernels): odd k (a padded
// pair), n not a whole vector, k long enough for several int32 blocks, and
// operands of the format's largest magnitude, whose blocks come within 7%
// of int32's range (e3m4: 256 steps of two products of 1984^2 units), so
// that a block twice as long overflows.
TEST(Yardstick, IntegerGridEqualsTheSequentialLoopOnEveryIsa) {
  const std::vector<Shape3> shapes = {{3, 5, 7},     {8, 64, 33},  {1, 300, 17}, {16, 144, 49},
                                      {5, 9, 100},   {13, 1101, 70}, {64, 576, 16}, {4, 1, 1}};
  for (const char* fmt : {"e3m4", "int8", "int15", "M5E2"}) {
    const num::Format f = num::parse_format(fmt);
    ASSERT_TRUE(int16_grid(f)) << fmt;
    const auto* ff = std::get_if<num::FloatFormat>(&f);
    const double largest = ff ? num::to_double(num::max_finite_bits(*ff, false), f)
                              : std::ldexp(1.0, std::get<num::IntFormat>(f).bits - 1) - 1;
    for (const auto& [m, k, n] : shapes) {
      ASSERT_TRUE(sums_exact_in_double(f, k)) << fmt << " k " << k;
      for (const bool extreme : {false, true}) {
        const auto a_f = wide_values(m * k, m + 3 * k);
        const auto b_f = wide_values(k * n, k + 3 * n);
        ref::QuantizedOperand qa, qb;
        ref::quantize_operand(a_f.data(), m, k, f, ref::Scaling::pow2, ref::ScaleAxis::rows, 1, qa);
        ref::quantize_operand(b_f.data(), k, n, f, ref::Scaling::pow2, ref::ScaleAxis::cols, 2, qb);
        if (extreme) {
          // Same-signed products of the largest magnitude: every pair adds
          // the most a lane can gain.
          for (std::size_t i = 0; i < qa.values.size(); ++i) qa.values[i] = i % 2 ? -largest : largest;
          for (std::size_t i = 0; i < qb.values.size(); ++i) qb.values[i] = (i / n) % 2 ? -largest : largest;
        }
        const std::vector<double> want = sequential_f64(qa.values, qb.values, m, k, n);
        for (const Int16Kernel& kernel : int16_kernels()) {
          SCOPED_TRACE(std::string(fmt) + " " + std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n) +
                       (extreme ? " largest " : " ") + kernel.name());
          Int16KernelGuard guard;
          kernel.use();
          std::vector<double> c(m * n, -1.0);
          gemm_exact_sums(f, qa.values.data(), qb.values.data(), c.data(), m, k, n);
          expect_same_doubles(c, want, "integer grid");
          // The same values as floats, B in the float lanes' panels of
          // columns (n = 100: a second, partly filled panel).
          const std::vector<float> fa(qa.values.begin(), qa.values.end());
          std::vector<float> fb(ref::f32_b_size(k, n), 0.0f);
          for (std::size_t kk = 0; kk < k; ++kk) {
            for (std::size_t j = 0; j < n; ++j) {
              fb[ref::f32_b_index(k, kk, j)] = static_cast<float>(qb.values[kk * n + j]);
            }
          }
          std::vector<double> cf(m * n, -1.0);
          gemm_exact_sums(f, ref::F32Operands{fa.data(), fb.data(), m, k, n}, cf.data());
          expect_same_doubles(cf, want, "integer grid, float operands");
        }
      }
    }
  }
}

// Operands off the format's grid (a fraction of its last place, a value
// beyond its range, one whose scaling overflows float, a NaN) are not
// converted: the call is dgemm's, on every int16 kernel. Each is tried in A
// and in B, in a whole vector of sixteen (the float packers' widest step),
// in one of eight, in the scalar tail, and in B's last row, which has no
// partner.
TEST(Yardstick, IntegerGridLeavesOffGridOperandsToDgemm) {
  const num::Format f = num::parse_format("e3m4");
  constexpr std::size_t m = 5, k = 45, n = 45;  // 16 + 16 + 8 + 5
  const std::vector<std::pair<bool, std::size_t>> places = {
      {true, 2 * k + 3},   {true, 3 * k + 35},  {true, 4 * k + 43},  {false, 7 * n + 5},
      {false, 8 * n + 35}, {false, 9 * n + 43}, {false, 44 * n + 5}};
  for (const double odd : {std::ldexp(1.0, -7), 1e6, std::ldexp(1.5, 127), std::nan("")}) {
    for (const auto& [in_a, at] : places) {
      std::vector<double> a(m * k, 1.5), b(k * n, -0.25);
      (in_a ? a : b)[at] = odd;
      std::vector<double> want(m * n);
      gemm_f64_exact_sums(a.data(), b.data(), want.data(), m, k, n);
      // Also as floats in the float lanes' layout (each odd value is a float).
      const std::vector<float> fa(a.begin(), a.end());
      std::vector<float> fb(ref::f32_b_size(k, n), 0.0f);
      for (std::size_t kk = 0; kk < k; ++kk) {
        for (std::size_t j = 0; j < n; ++j) fb[ref::f32_b_index(k, kk, j)] = static_cast<float>(b[kk * n + j]);
      }
      for (const Int16Kernel& kernel : int16_kernels()) {
        SCOPED_TRACE(std::to_string(odd) + (in_a ? " in A at " : " in B at ") + std::to_string(at) + " " +
                     kernel.name());
        Int16KernelGuard guard;
        kernel.use();
        std::vector<double> got(m * n), got_f(m * n);
        gemm_exact_sums(f, a.data(), b.data(), got.data(), m, k, n);
        gemm_exact_sums(f, ref::F32Operands{fa.data(), fb.data(), m, k, n}, got_f.data());
        for (std::size_t i = 0; i < m * n; ++i) {
          if (std::isnan(want[i])) {
            EXPECT_TRUE(std::isnan(got[i])) << "element " << i;
            EXPECT_TRUE(std::isnan(got_f[i])) << "element " << i << ", float operands";
          } else {
            EXPECT_EQ(got[i], want[i]) << "element " << i;
            EXPECT_EQ(got_f[i], want[i]) << "element " << i << ", float operands";
          }
        }
      }
    }
  }
  EXPECT_FALSE(int16_grid(num::parse_format("e4m3")));  // 2^-9 .. 448: 18 bits
  EXPECT_FALSE(int16_grid(num::parse_format("int16")));
}

// A network with every GEMM kind: grouped strided Conv, Relu, Flatten, Gemm
// with transB, MatMul.
std::string mixed_network() {
  ModelBuilder mb;
  mb.input("x", {1, 4, 6, 6}).output("y");
  mb.init(float_tensor("w", {6, 2, 3, 3}, wide_values(108, 11)));
  mb.init(float_tensor("b", {6}, wide_values(6, 12)));
  auto& conv = mb.node("Conv", {"x", "w", "b"}, {"c"}, "conv");
  attr_int(conv, "group", 2);
  attr_ints(conv, "strides", {2, 2});
  attr_ints(conv, "pads", {1, 1, 1, 1});
  mb.node("Relu", {"c"}, {"r"}, "relu");
  mb.node("Flatten", {"r"}, {"f"}, "flat");  // [1, 54]
  mb.init(float_tensor("fc", {5, 54}, wide_values(270, 13)));
  auto& g = mb.node("Gemm", {"f", "fc"}, {"h"}, "fc");
  attr_int(g, "transB", 1);
  mb.init(float_tensor("out", {5, 3}, wide_values(15, 14)));
  mb.node("MatMul", {"h", "out"}, {"y"}, "mm");
  return mb.bytes();
}

TEST(NativeFp32, NetworkEqualsReferenceEngineInFp32) {
  const Network net = parse_onnx(mixed_network(), "m.onnx");
  LayerArithmetic reference;
  reference.engine = Engine::reference;
  reference.config = fp32_config();
  const Executor native(net, std::vector<LayerArithmetic>(3));
  const Executor emulated(net, std::vector<LayerArithmetic>(3, reference));
  auto ws1 = native.make_workspace();
  auto ws2 = emulated.make_workspace();
  for (std::uint64_t seed = 0; seed < 5; ++seed) {
    const auto x = wide_values(144, 100 + seed);
    const auto y1 = native.run(x, *ws1);
    const auto y2 = emulated.run(x, *ws2);
    for (std::size_t l = 0; l < 3; ++l) {
      const auto o1 = native.layer_output(*ws1, l);
      const auto o2 = emulated.layer_output(*ws2, l);
      ASSERT_EQ(std::memcmp(o1.data(), o2.data(), o1.size_bytes()), 0) << "layer " << l;
    }
    ASSERT_EQ(std::memcmp(y1.data(), y2.data(), y1.size_bytes()), 0);
  }
}

ref::GemmConfig paper_config(ref::Scaling scaling) {
  ref::GemmConfig c;
  c.multiplier = num::formats::e3m4();
  c.product = num::parse_format("M7E4,bias=6,round=rtz,ftz");
  c.accumulator = num::parse_format("M7E4,bias=4,round=rtz,ftz");
  c.order = ref::parse_order("chunked:4");
  c.scaling = scaling;
  c.threads = 1;
  c.error_stats = false;
  return c;
}

TEST(LowBit, ConvIsRefGemmOfWeightsAndIm2col) {
  // 3x3, stride 1, pad 1: every input element reaches the lowered matrix, so
  // the per-tensor scale of the input equals that of the lowered matrix and
  // ref::gemm(W, im2col(x)) must give the executor's output bit for bit. The
  // second shape (32 output channels, 9 output positions) runs transposed,
  // as im2row(x) * W^T, which must not change a bit.
  for (const auto& [c, h, w, m] : {std::array<std::int64_t, 4>{3, 5, 5, 4}, {2, 3, 3, 32}}) {
  const auto wts = wide_values(static_cast<std::size_t>(m * c * 9), 21);
  ModelBuilder mb;
  mb.input("x", {1, c, h, w}).output("y");
  mb.init(float_tensor("w", {m, c, 3, 3}, wts));
  attr_ints(mb.node("Conv", {"x", "w"}, {"y"}, "conv"), "pads", {1, 1, 1, 1});
  const Network net = parse_onnx(mb.bytes(), "m.onnx");
  for (const ref::Scaling s : {ref::Scaling::pow2, ref::Scaling::none, ref::Scaling::tensor}) {
    LayerArithmetic la{Engine::reference, paper_config(s)};
    const Executor ex(net, {la});
    auto ws = ex.make_workspace();
    const auto x = wide_values(static_cast<std::size_t>(c * h * w), 22);
    const auto y = ex.run(x, *ws);

    ref::Matrix wm(static_cast<std::size_t>(m), static_cast<std::size_t>(c * 9));
    for (std::size_t i = 0; i < wts.size(); ++i) wm.data[i] = wts[i];
    ref::Matrix cols(static_cast<std::size_t>(c * 9), static_cast<std::size_t>(h * w));
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t r = 0; r < 3; ++r)
        for (std::int64_t q = 0; q < 3; ++q)
          for (std::int64_t oy = 0; oy < h; ++oy)
            for (std::int64_t ox = 0; ox < w; ++ox) {
              const std::int64_t iy = oy - 1 + r, ix = ox - 1 + q;
              cols(static_cast<std::size_t>((ch * 3 + r) * 3 + q), static_cast<std::size_t>(oy * w + ox)) =
                  (iy < 0 || iy >= h || ix < 0 || ix >= w) ? 0.0 : x[static_cast<std::size_t>((ch * h + iy) * w + ix)];
            }
    const ref::GemmResult r = ref::gemm(wm, cols, paper_config(s));
    for (std::size_t i = 0; i < y.size(); ++i) {
      ASSERT_EQ(y[i], static_cast<float>(r.c.data[i])) << "element " << i << " scaling " << ref::to_string(s);
    }
  }
  }
}

TEST(LowBit, TransposedConvEqualsTheArraysOrientation) {
  // 32 output channels at 9 positions: the reference GEMM takes C^T =
  // im2row(x) * W^T (fewer lane passes), while an engine in its place (the
  // cycle-accurate array) gets C = W * im2col(x), as the hardware computes
  // it. Both must give the same outputs, events and error sums, bit for
  // bit, per-channel scales included; and the constant weights are rounded
  // once, when the executor is built, so a sample's `quantize` events are
  // its activations' alone.
  constexpr std::int64_t c = 2, h = 3, w = 3, m = 32;
  ModelBuilder mb;
  mb.input("x", {1, c, h, w}).output("y");
  mb.init(float_tensor("w", {m, c, 3, 3}, wide_values(static_cast<std::size_t>(m * c * 9), 31)));
  attr_ints(mb.node("Conv", {"x", "w"}, {"y"}, "conv"), "pads", {1, 1, 1, 1});
  const Network net = parse_onnx(mb.bytes(), "m.onnx");
  const auto x = wide_values(static_cast<std::size_t>(c * h * w), 32);
  for (const ref::Scaling s : {ref::Scaling::pow2, ref::Scaling::channel}) {
    const LayerArithmetic la{Engine::reference, paper_config(s)};
    ASSERT_TRUE(ref::transpose_takes_fewer_passes(la.config, m, h * w));
    const Executor ex(net, {la});
    auto transposed = ex.make_workspace();
    auto array = ex.make_workspace();
    std::size_t engine_calls = 0;
    array->engine = [&](std::size_t, const ref::QuantizedOperand& a, const ref::QuantizedOperand& b,
                        const ref::GemmConfig& config) {
      ++engine_calls;
      EXPECT_EQ(a.rows, static_cast<std::size_t>(m));  // W, not im2row(x)
      EXPECT_EQ(b.cols, static_cast<std::size_t>(h * w));
      return ref::accumulate_products(a, b, config);
    };
    std::vector<LayerStats> st1(1), st2(1);
    const auto y1 = ex.run(x, *transposed, st1);
    const std::vector<float> out1(y1.begin(), y1.end());
    const auto y2 = ex.run(x, *array, st2);
    ASSERT_EQ(engine_calls, 1u);
    ASSERT_EQ(out1.size(), y2.size());
    for (std::size_t i = 0; i < out1.size(); ++i) {
      ASSERT_EQ(std::bit_cast<std::uint32_t>(out1[i]), std::bit_cast<std::uint32_t>(y2[i])) << i;
    }
    EXPECT_EQ(st1[0].quantize.ops, static_cast<std::uint64_t>(c * h * w));
    EXPECT_EQ(st1[0].quantize, st2[0].quantize);
    EXPECT_EQ(st1[0].product, st2[0].product);
    EXPECT_EQ(st1[0].accumulate, st2[0].accumulate);
    EXPECT_EQ(st1[0].merge, st2[0].merge);
    for (auto [p, q] : {std::pair{&st1[0].accumulation, &st2[0].accumulation}, {&st1[0].layer, &st2[0].layer}}) {
      EXPECT_EQ(std::bit_cast<std::uint64_t>(p->signal), std::bit_cast<std::uint64_t>(q->signal));
      EXPECT_EQ(std::bit_cast<std::uint64_t>(p->noise), std::bit_cast<std::uint64_t>(q->noise));
      EXPECT_EQ(p->max_abs, q->max_abs);
    }
  }
}

// Where the float lanes take a Conv, the executor lowers the rounded
// activations as floats straight into their layout (ref::F32Operands) and
// the `acc` yardstick reads those floats; with the float lanes refused
// (allow_f32_lanes = false), everything goes through doubles and the double
// lanes. Outputs, events and error sums must not differ by a bit, on every
// ISA: grouped with 100 positions (a narrower last panel of columns, rows
// padded to 128), and 32 channels at 9 positions (transposed).
TEST(LowBit, ConvOnFloatLanesEqualsTheDoubleLanes) {
  struct Shape {
    std::int64_t c, hw, m, groups;
  };
  for (const Shape sh : {Shape{4, 10, 12, 2}, Shape{2, 3, 32, 1}}) {
    ModelBuilder mb;
    mb.input("x", {1, sh.c, sh.hw, sh.hw}).output("y");
    const auto weights = static_cast<std::size_t>(sh.m * sh.c / sh.groups * 9);
    mb.init(float_tensor("w", {sh.m, sh.c / sh.groups, 3, 3}, wide_values(weights, 41)));
    auto& conv = mb.node("Conv", {"x", "w"}, {"y"}, "conv");
    attr_ints(conv, "pads", {1, 1, 1, 1});
    attr_int(conv, "group", sh.groups);
    const Network net = parse_onnx(mb.bytes(), "m.onnx");
    const Executor fp32(net, {LayerArithmetic{}});
    for (const ref::LaneIsa isa : ref::testing::runnable_isas()) {
      ref::testing::IsaGuard guard;
      ref::set_lane_isa(isa);
      for (const ref::Scaling s : {ref::Scaling::pow2, ref::Scaling::channel}) {
        SCOPED_TRACE(std::string(ref::to_string(isa)) + " " + std::string(ref::to_string(s)) + " m " +
                     std::to_string(sh.m));
        LayerArithmetic lanes{Engine::reference, paper_config(s)};
        LayerArithmetic doubles = lanes;
        doubles.config.allow_f32_lanes = false;
        const Executor ex_lanes(net, {lanes}), ex_doubles(net, {doubles});
        auto ws_fp32 = fp32.make_workspace();
        auto ws_lanes = ex_lanes.make_workspace();
        auto ws_doubles = ex_doubles.make_workspace();
        std::vector<LayerStats> st_lanes(1), st_doubles(1);
        for (std::uint64_t sample = 0; sample < 3; ++sample) {  // the second run reuses the buffers
          const auto x = wide_values(static_cast<std::size_t>(sh.c * sh.hw * sh.hw), 42 + sample);
          (void)fp32.run(x, *ws_fp32);
          const auto want = fp32.layer_output(*ws_fp32, 0);
          const std::vector<std::vector<float>> fp32_out{{want.begin(), want.end()}};
          const auto y1 = ex_lanes.run(x, *ws_lanes, st_lanes, &fp32_out);
          const std::vector<float> out1(y1.begin(), y1.end());
          const auto y2 = ex_doubles.run(x, *ws_doubles, st_doubles, &fp32_out);
          ASSERT_EQ(out1.size(), y2.size());
          for (std::size_t i = 0; i < out1.size(); ++i) {
            ASSERT_EQ(std::bit_cast<std::uint32_t>(out1[i]), std::bit_cast<std::uint32_t>(y2[i])) << i;
          }
        }
        const LayerStats& a = st_lanes[0];
        const LayerStats& b = st_doubles[0];
        EXPECT_EQ(a.quantize, b.quantize);
        EXPECT_EQ(a.product, b.product);
        EXPECT_EQ(a.accumulate, b.accumulate);
        EXPECT_EQ(a.merge, b.merge);
        EXPECT_GT(a.accumulate.inexact, 0u);
        for (auto [p, q] :
             {std::pair{&a.accumulation, &b.accumulation}, {&a.layer, &b.layer}, {&a.network, &b.network}}) {
          EXPECT_EQ(std::bit_cast<std::uint64_t>(p->signal), std::bit_cast<std::uint64_t>(q->signal));
          EXPECT_EQ(std::bit_cast<std::uint64_t>(p->noise), std::bit_cast<std::uint64_t>(q->noise));
          EXPECT_EQ(p->max_abs, q->max_abs);
          EXPECT_EQ(p->count, q->count);
        }
        EXPECT_GT(a.accumulation.noise, 0.0);
      }
    }
  }
}

TEST(LowBit, ChannelScalingScalesWeightsPerOutputChannel) {
  // Output channel 1's weights are 2^-12 times channel 0's. With one scale
  // for the whole weight tensor they sink below e3m4's range and flush; with
  // a scale per output channel both channels keep full precision.
  ModelBuilder mb;
  mb.input("x", {1, 8}).output("y");
  std::vector<float> w(16);
  for (int j = 0; j < 8; ++j) {
    w[static_cast<std::size_t>(j)] = 1.0f + 0.125f * static_cast<float>(j);
    w[static_cast<std::size_t>(8 + j)] = std::ldexp(w[static_cast<std::size_t>(j)], -12);
  }
  mb.init(float_tensor("w", {2, 8}, w));
  attr_int(mb.node("Gemm", {"x", "w"}, {"y"}, "fc"), "transB", 1);
  const Network net = parse_onnx(mb.bytes(), "m.onnx");
  const std::vector<float> x{1, 1, 1, 1, 1, 1, 1, 1};
  auto run = [&](ref::Scaling s) {
    ref::GemmConfig c = paper_config(s);  // e3m4 inputs; products and sums exact enough not to matter
    c.product.reset();
    c.accumulator = num::formats::fp32();
    const Executor ex(net, {LayerArithmetic{Engine::reference, c}});
    auto ws = ex.make_workspace();
    const auto y = ex.run(x, *ws);
    return std::vector<float>(y.begin(), y.end());
  };
  const float want0 = 8 + 0.125f * 28, want1 = std::ldexp(want0, -12);
  const auto channel = run(ref::Scaling::channel);
  EXPECT_NEAR(channel[0], want0, want0 * 0.05);
  EXPECT_NEAR(channel[1], want1, want1 * 0.05);
  const auto tensor = run(ref::Scaling::pow2);
  EXPECT_NEAR(tensor[0], want0, want0 * 0.05);
  EXPECT_EQ(tensor[1], 0.0f);
}

// --- statistics and determinism --------------------------------------------------------

Trace synthetic_trace(std::size_t samples) {
  Trace t;
  t.name = "synthetic";
  t.network = parse_onnx(mixed_network(), "m.onnx");
  t.available = t.samples = samples;
  t.sample_size = 144;
  t.classes = 3;
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal(0, 1);
  for (std::size_t i = 0; i < samples * 144; ++i) t.inputs.push_back(normal(rng));
  for (std::size_t i = 0; i < samples; ++i) t.labels.push_back(static_cast<std::int64_t>(i % 3));
  t.golden.assign(samples * 3, 0.0f);
  return t;
}

TEST(ErrorSums, AddKeepsEightLanesInIndexOrderAndAddsThemInAFixedTree) {
  // The documented order, spelled out: pair i into lane i mod 8, each lane in
  // index order, the lanes added as ((0+1)+(2+3))+((4+5)+(6+7)) onto the
  // sums held before. Values of mixed magnitude, so that another order
  // changes the bits. A NaN difference is passed over by max_abs. On every
  // ISA this machine runs (AVX-512 holds the eight lanes in one register).
  for (const ref::LaneIsa isa : ref::testing::runnable_isas()) {
    ref::testing::IsaGuard guard;
    ref::set_lane_isa(isa);
    SCOPED_TRACE(std::string(ref::to_string(isa)));
    for (const std::size_t n : {0, 1, 7, 8, 9, 16, 23, 1000}) {
      std::mt19937_64 rng(n);
      std::uniform_real_distribution<double> u(-1.0, 1.0);
      std::vector<float> got(n);
      std::vector<double> want(n);
      for (std::size_t i = 0; i < n; ++i) {
        want[i] = std::ldexp(u(rng), static_cast<int>(i % 13) - 6);
        got[i] = static_cast<float>(want[i] * (1 + 0.01 * u(rng)));
      }
      ErrorSums before;
      before.signal = 0.0625;
      before.noise = 0.0625;
      before.max_abs = 0.25;
      before.count = 1;
      auto tree = [](const double* v) { return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])); };
      // Unscaled, and each pair first multiplied by a scale that rounds.
      for (const double scale : {1.0, 0.3}) {
        ErrorSums sums = before;
        if (scale == 1.0) {
          sums.add(got.data(), want.data(), n);
        } else {
          sums.add(got.data(), want.data(), n, scale);
        }
        double s[8] = {}, q[8] = {}, mx = before.max_abs;
        for (std::size_t i = 0; i < n; ++i) {
          const double w = want[i] * scale;
          const double e = static_cast<double>(got[i]) * scale - w;
          s[i % 8] += w * w;
          q[i % 8] += e * e;
          if (!std::isnan(e)) mx = std::max(mx, std::abs(e));
        }
        SCOPED_TRACE("scale " + std::to_string(scale));
        EXPECT_EQ(std::bit_cast<std::uint64_t>(sums.signal), std::bit_cast<std::uint64_t>(before.signal + tree(s))) << n;
        EXPECT_EQ(std::bit_cast<std::uint64_t>(sums.noise), std::bit_cast<std::uint64_t>(before.noise + tree(q))) << n;
        EXPECT_EQ(sums.max_abs, mx) << n;
        EXPECT_EQ(sums.count, before.count + n);
      }
      if (n > 3) {
        got[3] = std::numeric_limits<float>::quiet_NaN();
        ErrorSums with_nan;
        with_nan.add(got.data(), want.data(), n);
        EXPECT_FALSE(std::isnan(with_nan.max_abs)) << n;
      }
    }
  }
}

TEST(Evaluate, IdenticalForAnyThreadCount) {
  const Trace t = synthetic_trace(40);
  const Executor fp32(t.network, std::vector<LayerArithmetic>(3));
  const Executor lowbit(t.network,
                        std::vector<LayerArithmetic>(3, LayerArithmetic{Engine::reference, paper_config(ref::Scaling::pow2)}));
  const Evaluation one = evaluate(t, fp32, lowbit, EvalOptions{1, {}});
  for (unsigned threads : {2u, 3u, 7u}) {
    const Evaluation many = evaluate(t, fp32, lowbit, EvalOptions{threads, {}});
    EXPECT_EQ(many.fp32_pred, one.fp32_pred);
    EXPECT_EQ(many.lowbit_pred, one.lowbit_pred);
    ASSERT_EQ(many.layers.size(), one.layers.size());
    for (std::size_t l = 0; l < one.layers.size(); ++l) {
      const LayerStats& a = one.layers[l];
      const LayerStats& b = many.layers[l];
      EXPECT_EQ(a.accumulate, b.accumulate);
      EXPECT_EQ(a.product, b.product);
      EXPECT_EQ(a.merge, b.merge);
      EXPECT_EQ(a.quantize, b.quantize);
      for (auto [x, y] : {std::pair{&a.accumulation, &b.accumulation}, {&a.layer, &b.layer}, {&a.network, &b.network}}) {
        EXPECT_EQ(std::bit_cast<std::uint64_t>(x->signal), std::bit_cast<std::uint64_t>(y->signal));
        EXPECT_EQ(std::bit_cast<std::uint64_t>(x->noise), std::bit_cast<std::uint64_t>(y->noise));
        EXPECT_EQ(x->max_abs, y->max_abs);
      }
    }
    EXPECT_EQ(std::bit_cast<std::uint64_t>(many.max_rel_deviation), std::bit_cast<std::uint64_t>(one.max_rel_deviation));
  }
}

TEST(Evaluate, StatisticsCountEveryOperation) {
  const Trace t = synthetic_trace(6);
  const Executor fp32(t.network, std::vector<LayerArithmetic>(3));
  std::vector<LayerArithmetic> layers(3, LayerArithmetic{Engine::reference, paper_config(ref::Scaling::pow2)});
  layers[2] = LayerArithmetic{};  // the MatMul in fp32
  const Executor lowbit(t.network, layers);
  const Evaluation e = evaluate(t, fp32, lowbit, EvalOptions{2, {}});
  const Network& net = t.network;
  for (std::size_t l = 0; l < 2; ++l) {
    const GemmShape& g = net.nodes[net.gemm_layers[l]].gemm;
    EXPECT_EQ(e.layers[l].accumulate.ops, g.macs() * 6) << l;
    EXPECT_EQ(e.layers[l].product.ops, g.macs() * 6) << l;
    const std::uint64_t chunks = static_cast<std::uint64_t>((g.k + 3) / 4);
    EXPECT_EQ(e.layers[l].merge.ops, static_cast<std::uint64_t>(g.m * g.n * g.groups) * chunks * 6) << l;
    EXPECT_LT(e.layers[l].layer.snr_db(), 60.0);  // 5-bit inputs
    EXPECT_GT(e.layers[l].layer.snr_db(), 10.0);
  }
  EXPECT_EQ(e.layers[2].accumulate.ops, 0u);        // the fp32 engine counts no events
  EXPECT_GT(e.layers[2].accumulation.snr_db(), 120.0);  // and rounds at float precision
  // The FP32 run against itself: the network error of the first layer is the layer's own.
  EXPECT_EQ(e.layers[0].network.count, e.layers[0].layer.count);
}

}  // namespace
}  // namespace accsim::net
