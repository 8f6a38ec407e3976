// The double-domain fast path against round_pack, bit for bit with events:
// every rounding mode, subnormals and flush-to-zero, the overflow boundary,
// and the lanes' own refusal rules.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <random>

#include "models/numerics/arith.hpp"
#include "models/numerics/fast.hpp"

namespace accsim::num {
namespace {

std::uint64_t test_seed() {
  const char* env = std::getenv("ACCSIM_TEST_SEED");
  return env ? std::strtoull(env, nullptr, 10) : 77;
}

// A random value on the grid of `s`: a random significand of up to `bits`
// bits placed so that it stays within the span, with signs and zeros.
double random_on_span(std::mt19937_64& rng, fast::Span s) {
  if (rng() % 32 == 0) return (rng() & 1) ? -0.0 : 0.0;
  const int width = s.msb - s.lsb + 1;
  const int bits = 1 + static_cast<int>(rng() % static_cast<std::uint64_t>(std::min(width, 53)));
  const std::uint64_t sig = (rng() >> (64 - bits)) | 1;
  const int top = static_cast<int>(rng() % static_cast<std::uint64_t>(width - bits + 1));  // lsb offset
  const double v = std::ldexp(static_cast<double>(sig), s.lsb + top);
  return (rng() & 1) ? -v : v;
}

struct FastCase {
  const char* format;
  fast::Span input;  // grid of the exact values fed to the rounder
};

class FastRounding : public ::testing::TestWithParam<std::tuple<const char*, Rounding>> {};

TEST_P(FastRounding, RoundMatchesRoundPack) {
  FloatFormat f = parse_float_format(std::get<0>(GetParam()));
  f.rounding = std::get<1>(GetParam());
  // Inputs on a grid 8 bits finer than the format (or as fine as 53 bits
  // allow) and up to a binade past its top: halfway cases, subnormals and
  // overflow all occur.
  const fast::Span in{f.emax() + 1, std::max(f.emin() - f.man_bits - 8, f.emax() + 1 - 52)};
  const auto rounder = fast::Rounder::make(f, in);
  ASSERT_TRUE(rounder.has_value()) << to_string(f);
  std::mt19937_64 rng(test_seed());
  std::uint64_t overflows = 0, underflows = 0;
  for (int i = 0; i < 200000; ++i) {
    const double x = random_on_span(rng, in);
    const Result want = round_pack(f, exact_from_double(x));
    const fast::ScalarResult got = fast::round(*rounder, x);
    ASSERT_EQ(quantize(got.value, f).bits, want.bits) << to_string(f) << " x=" << std::hexfloat << x;
    ASSERT_EQ(to_double(want.bits, f), got.value) << to_string(f) << " x=" << std::hexfloat << x;
    ASSERT_EQ(std::signbit(to_double(want.bits, f)), std::signbit(got.value));
    ASSERT_EQ(got.events, want.events) << to_string(f) << " x=" << std::hexfloat << x << " want "
                                       << to_string_events(want.events) << " got " << to_string_events(got.events);
    overflows += (want.events & kOverflow) != 0;
    underflows += (want.events & kUnderflow) != 0;
  }
  EXPECT_GT(overflows, 0u);
  if (in.lsb < f.emin()) {
    EXPECT_GT(underflows, 0u);
  }
}

TEST_P(FastRounding, AccumulateMatchesRoundPack) {
  FloatFormat f = parse_float_format(std::get<0>(GetParam()));
  f.rounding = std::get<1>(GetParam());
  const fast::Span addend{f.emax() - 1, std::max(f.emin() - f.man_bits - 6, f.emax() - 40)};
  const auto rounder = fast::Rounder::make(f, fast::sum_span(fast::span_of(f), addend));
  if (!fast::fits_double(fast::span_of(f))) {
    // Sums in a format this wide are not exact in double: the rounder must refuse.
    EXPECT_FALSE(rounder.has_value()) << to_string(f);
    return;
  }
  ASSERT_TRUE(rounder.has_value()) << to_string(f);
  std::mt19937_64 rng(test_seed() + 1);
  std::uint64_t swamps = 0;
  for (int i = 0; i < 200000; ++i) {
    // A random accumulator value (an encoding) and an addend, sometimes its
    // exact negation so that zero sums and their signs are exercised.
    const std::uint64_t acc_bits = rng() & encoding_mask(f.width());
    if (is_nan_bits(acc_bits, f) || is_inf_bits(acc_bits, f)) continue;  // the lanes carry finite values only
    const double acc = to_double(acc_bits, f);
    const double add = (rng() % 16 == 0) ? -acc : random_on_span(rng, addend);
    const Result want = accumulate(acc_bits, f, exact_from_double(add));
    const fast::ScalarResult got = fast::accumulate(*rounder, acc, add);
    ASSERT_EQ(quantize(got.value, f).bits, want.bits)
        << to_string(f) << " acc=" << std::hexfloat << acc << " add=" << add;
    ASSERT_EQ(got.events, want.events) << to_string(f) << " acc=" << std::hexfloat << acc << " add=" << add
                                       << " want " << to_string_events(want.events) << " got "
                                       << to_string_events(got.events);
    swamps += (want.events & kSwamp) != 0;
  }
  EXPECT_GT(swamps, 0u);
}

// make_any: rounding arbitrary doubles (quantize's operands), not only
// values on a narrow grid; and Encoder, the encoding of the rounded values.
TEST_P(FastRounding, AnyDoubleMatchesRoundPack) {
  FloatFormat f = parse_float_format(std::get<0>(GetParam()));
  f.rounding = std::get<1>(GetParam());
  const auto rounder = fast::Rounder::make_any(f);
  if (!rounder) {
    EXPECT_TRUE(f.overflow_to_inf() && f.rounding != Rounding::rtz) << to_string(f);
    return;
  }
  const fast::Encoder encode(f);
  std::mt19937_64 rng(test_seed() + 2);
  std::uint64_t checked = 0, refused = 0;
  for (int i = 0; i < 200000; ++i) {
    double x;
    if (rng() % 8 == 0) {
      x = std::bit_cast<double>(rng());  // anything, NaN and subnormal doubles included
    } else {
      // A significand of up to 53 bits around the format's range.
      const int bits = 1 + static_cast<int>(rng() % 53);
      const auto sig = static_cast<double>((rng() >> (64 - bits)) | 1);
      const int span = f.emax() - f.emin() + f.man_bits + 8;
      x = std::ldexp(sig, f.emin() - f.man_bits - 4 - bits + 1 + static_cast<int>(rng() % static_cast<unsigned>(span)));
      if (rng() & 1) x = -x;
      if (rng() % 64 == 0) x = (rng() & 1) ? -0.0 : 0.0;
    }
    if (!rounder->exact_for(x)) {
      ++refused;
      ASSERT_TRUE(!std::isfinite(x) || std::fabs(x) >= 0x1p960 || std::fabs(x) < 0x1p-1022 ||
                  (f.rounding != Rounding::rne && f.subnormals && std::fabs(x) < std::ldexp(1.0, f.emin())))
          << std::hexfloat << x;
      continue;
    }
    ++checked;
    const Result want = round_pack(f, exact_from_double(x));
    const fast::ScalarResult got = fast::round(*rounder, x);
    ASSERT_EQ(encode(got.value), want.bits) << to_string(f) << " x=" << std::hexfloat << x;
    ASSERT_EQ(std::bit_cast<std::uint64_t>(to_double(want.bits, f)), std::bit_cast<std::uint64_t>(got.value))
        << to_string(f) << " x=" << std::hexfloat << x;
    ASSERT_EQ(got.events, want.events) << to_string(f) << " x=" << std::hexfloat << x << " want "
                                       << to_string_events(want.events) << " got " << to_string_events(got.events);
  }
  EXPECT_GT(checked, 50000u);
  EXPECT_GT(refused, 0u);
}

// round_common and special_lanes: wherever a lane is not special,
// round_common's bits are round_lanes' value, without overflow or underflow,
// and a lane is special exactly when it is tiny and non-zero or too large.
TEST_P(FastRounding, CommonCaseMatchesRoundLanes) {
  FloatFormat f = parse_float_format(std::get<0>(GetParam()));
  f.rounding = std::get<1>(GetParam());
  if (f.rounding != Rounding::rne && f.rounding != Rounding::rtz) GTEST_SKIP() << "rne and rtz only";
  const fast::Span in{f.emax() + 1, std::max(f.emin() - f.man_bits - 8, f.emax() + 1 - 52)};
  const auto rounder = fast::Rounder::make(f, in);
  ASSERT_TRUE(rounder.has_value()) << to_string(f);
  using L = fast::Lanes<1>;
  std::mt19937_64 rng(test_seed() + 3);
  std::uint64_t common = 0, special = 0;
  for (int i = 0; i < 200000; ++i) {
    const double x = random_on_span(rng, in);
    const std::uint64_t u = std::bit_cast<std::uint64_t>(x), a = u & ~(std::uint64_t{1} << 63);
    const bool want_special = (a != 0 && a < rounder->min_normal_bits) || a > rounder->max_bits;
    ASSERT_EQ(fast::special_lanes<1>(*rounder, L::U{a})[0] != 0, want_special) << std::hexfloat << x;
    if (want_special) {
      ++special;
      continue;
    }
    ++common;
    const fast::Rounded<1> full = f.rounding == Rounding::rne ? fast::round_lanes<Rounding::rne, 1>(*rounder, L::D{x})
                                                              : fast::round_lanes<Rounding::rtz, 1>(*rounder, L::D{x});
    const std::uint64_t bits = f.rounding == Rounding::rne
                                   ? fast::round_common<Rounding::rne, 1>(*rounder, L::U{u}, L::U{a})[0]
                                   : fast::round_common<Rounding::rtz, 1>(*rounder, L::U{u}, L::U{a})[0];
    ASSERT_EQ(bits, std::bit_cast<std::uint64_t>(full.value[0])) << to_string(f) << " x=" << std::hexfloat << x;
    ASSERT_EQ(full.overflow[0], 0) << std::hexfloat << x;
    ASSERT_EQ(full.underflow[0], 0) << std::hexfloat << x;
    ASSERT_EQ(full.exact[0] != 0, bits == u) << std::hexfloat << x;
  }
  EXPECT_GT(common, 10000u);
  EXPECT_GT(special, 100u);
}

// Encoder inverts to_double on every finite encoding.
TEST(FastEncoder, InvertsToDouble) {
  for (const char* name : {"M7E4,bias=10,ftz", "M7E4", "e4m3", "e3m4", "M1E3", "M2E2,bias=0", "M10E5,bias=30",
                           "fp16,sat", "M9E6,bias=40"}) {
    const FloatFormat f = parse_float_format(name);
    const fast::Encoder encode(f);
    const std::uint64_t count = std::uint64_t{1} << f.width();
    const std::uint64_t step = count > (1u << 16) ? count >> 16 : 1;
    for (std::uint64_t bits = 0; bits < count; bits += step) {
      if (is_nan_bits(bits, f) || is_inf_bits(bits, f)) continue;
      if (!f.subnormals && (bits & ~(std::uint64_t{1} << (f.width() - 1))) >> f.man_bits == 0 &&
          (bits & ((std::uint64_t{1} << f.man_bits) - 1)) != 0) {
        continue;  // a subnormal encoding in a flush-to-zero format: no rounder returns one
      }
      ASSERT_EQ(encode(to_double(bits, f)), bits) << name << " bits=" << bits;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Formats, FastRounding,
    ::testing::Combine(::testing::Values("M7E4,bias=10,ftz", "M7E4", "M7E4,bias=12", "M3E4", "e4m3", "M10E5",
                                         "M6E5,ftz", "M1E3", "M2E2,bias=0", "M5E4,bias=-3", "fp16,sat",
                                         "bf16,sat,ftz", "M9E6,bias=40"),
                       ::testing::Values(Rounding::rne, Rounding::rna, Rounding::rtz, Rounding::rd, Rounding::ru)));

TEST(FastRounder, RefusesWhatItCannotDoExactly) {
  const fast::Span narrow{10, -20};
  EXPECT_FALSE(fast::Rounder::make(parse_float_format("M7E4,round=sr"), narrow));
  EXPECT_FALSE(fast::Rounder::make(parse_float_format("M0E4"), narrow));
  EXPECT_FALSE(fast::Rounder::make(parse_float_format("fp16"), narrow));  // rne overflow gives inf
  EXPECT_TRUE(fast::Rounder::make(parse_float_format("fp16,round=rtz"), narrow));  // rtz never does
  EXPECT_FALSE(fast::Rounder::make(parse_float_format("M7E4"), fast::Span{60, -20}));  // 81 bits
  // Rounding narrow values into fp32 is fine; accumulating in it is not: its
  // own grid spans 277 bits.
  const FloatFormat fp32_sat = parse_float_format("fp32,sat");
  EXPECT_TRUE(fast::Rounder::make(fp32_sat, narrow));
  EXPECT_FALSE(fast::Rounder::make(fp32_sat, fast::sum_span(fast::span_of(fp32_sat), narrow)));
  // The subnormal shift would not be exact for inputs this fine.
  EXPECT_FALSE(fast::Rounder::make(parse_float_format("M7E4"), fast::Span{-40, -80}));
}

TEST(FastSpan, ProductAndSumSpans) {
  const fast::Span e4m3 = fast::span_of(formats::e4m3());
  EXPECT_EQ(e4m3.msb, 8);
  EXPECT_EQ(e4m3.lsb, -9);
  const fast::Span p = fast::product_span(e4m3, e4m3);
  EXPECT_EQ(p.msb, 17);  // 448^2 < 2^18
  EXPECT_EQ(p.lsb, -18);
  EXPECT_TRUE(fast::fits_double(p));
  EXPECT_FALSE(fast::fits_double(fast::span_of(formats::fp32())));
}

}  // namespace
}  // namespace accsim::num
