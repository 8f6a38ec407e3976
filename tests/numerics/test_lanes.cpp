// The lanes beyond exact double sums (fast::Rounder::make_lanes): sums too
// wide for a double (TwoSum and round-to-odd), stochastic rounding, formats
// whose overflow gives an infinity, and integer accumulators. Each step is
// checked bit for bit, events included, against round_pack (num::accumulate)
// and, for floats, against the MPFR oracle, which shares no code with either.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "models/numerics/arith.hpp"
#include "models/numerics/fast.hpp"
#include "tests/numerics/mpfr_oracle.hpp"

namespace accsim::num {
namespace {

std::uint64_t test_seed() {
  const char* env = std::getenv("ACCSIM_TEST_SEED");
  return env ? std::strtoull(env, nullptr, 10) : 1313;
}

// A random double on the grid of `s`, with zeros of both signs.
double random_on_span(std::mt19937_64& rng, fast::Span s) {
  if (rng() % 32 == 0) return (rng() & 1) ? -0.0 : 0.0;
  const int width = s.msb - s.lsb + 1;
  const int bits = 1 + static_cast<int>(rng() % static_cast<std::uint64_t>(std::min(width, 53)));
  const std::uint64_t sig = (rng() >> (64 - bits)) | 1;
  const int top = static_cast<int>(rng() % static_cast<std::uint64_t>(width - bits + 1));
  const double v = std::ldexp(static_cast<double>(sig), s.lsb + top);
  return (rng() & 1) ? -v : v;
}

// An addend that meets acc at a boundary of the format: half an ulp of acc
// (a tie), a little more or less, one ulp less a little (carries), the
// negation of acc (a zero sum) or of acc plus a little (cancellation).
double boundary_addend(std::mt19937_64& rng, double acc, const FloatFormat& f, fast::Span span) {
  const int e = acc == 0 ? f.emin() : std::max(std::ilogb(acc), f.emin());
  const double ulp = std::ldexp(1.0, e - f.man_bits);
  const double tiny = std::ldexp(1.0, std::max(span.lsb, e - f.man_bits - 40));
  const double sign = (rng() & 1) ? -1.0 : 1.0;
  switch (rng() % 6) {
    case 0: return sign * ulp / 2;
    case 1: return sign * (ulp / 2 + tiny);
    case 2: return sign * (ulp / 2 - tiny);
    case 3: return sign * (ulp - tiny);
    case 4: return -acc;
    default: return -acc + sign * tiny;
  }
}

class LanesFloat : public ::testing::TestWithParam<std::tuple<const char*, Rounding>> {};

// Accumulators with addends on a grid much finer and much coarser than
// theirs: sums that no double holds, overflow, subnormals, ties.
TEST_P(LanesFloat, AccumulateMatchesRoundPackAndMpfr) {
  FloatFormat f = parse_float_format(std::get<0>(GetParam()));
  f.rounding = std::get<1>(GetParam());
  f.sr_seed = 99;
  const fast::Span own = fast::span_of(f);
  // Addends from 2^-60 below the format's smallest subnormal to above its
  // largest value (but within double's normals).
  const fast::Span addend{std::min(own.msb + 2, 1000), std::max(own.lsb - 60, -1022)};
  const auto rounder = fast::Rounder::make_lanes(f, fast::sum_span(own, addend));
  ASSERT_TRUE(rounder.has_value()) << to_string(f);
  // 53 bits cannot hold the draw's 33 below a last place of 20 or more
  // fraction bits: those sums travel as TwoSum's pairs.
  EXPECT_EQ(rounder->sr_pair, f.rounding == Rounding::sr && f.man_bits > 19);
  EXPECT_EQ(rounder->to_inf, f.overflow_to_inf() && f.rounding != Rounding::rtz);
  std::mt19937_64 rng(test_seed());
  std::uint64_t overflows = 0, underflows = 0, swamps = 0, inexact = 0, oracle_checked = 0;
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t acc_bits = rng() & encoding_mask(f.width());
    if (is_nan_bits(acc_bits, f) || is_inf_bits(acc_bits, f)) continue;  // lanes carry finite values
    if (!f.subnormals && exponent_field(acc_bits, f) == 0 && fraction_field(acc_bits, f) != 0) continue;
    const double acc = to_double(acc_bits, f);
    const double add = rng() % 3 == 0 ? boundary_addend(rng, acc, f, addend) : random_on_span(rng, addend);
    const std::uint64_t key = rng();
    const Result want = accumulate(acc_bits, f, exact_from_double(add), key);
    const fast::ScalarResult got = fast::accumulate_any(*rounder, acc, add, key);
    const std::string where = to_string(f) + " acc=" + std::to_string(acc_bits) + " add=" + std::to_string(add) +
                              " key=" + std::to_string(key);
    if (is_inf_bits(want.bits, f)) {
      // The lanes saturate and report the overflow; their caller redoes the work.
      ASSERT_TRUE(rounder->to_inf) << where;
      ASSERT_TRUE(got.events & kOverflow) << where;
      ++overflows;
      continue;
    }
    const fast::Encoder encode(f);
    ASSERT_EQ(encode(got.value), want.bits) << where << std::hexfloat << " got " << got.value;
    ASSERT_EQ(std::bit_cast<std::uint64_t>(got.value), std::bit_cast<std::uint64_t>(to_double(want.bits, f))) << where;
    ASSERT_EQ(got.events, want.events) << where << " want " << to_string_events(want.events) << " got "
                                       << to_string_events(got.events);
    overflows += (want.events & kOverflow) != 0;
    underflows += (want.events & kUnderflow) != 0;
    swamps += (want.events & kSwamp) != 0;
    inexact += (want.events & kInexact) != 0;
    if (i % 8 == 0) {
      // The oracle rounds the exact sum itself (swamp is the operation's).
      const test::OracleValue sum =
          test::oracle_sum(test::oracle_decode(acc_bits, f), test::oracle_from_double(add), f.rounding);
      const Result oracle = test::oracle_round(sum, f, key);
      ASSERT_EQ(oracle.bits, want.bits) << where;
      ASSERT_EQ(oracle.events, static_cast<Events>(want.events & ~kSwamp)) << where;
      ++oracle_checked;
    }
  }
  EXPECT_GT(overflows, 0u);
  EXPECT_GT(swamps, 0u);
  EXPECT_GT(inexact, 1000u);
  EXPECT_GT(oracle_checked, 5000u);
  if (f.subnormals || f.emin() > -1000) {
    EXPECT_GT(underflows, 0u);
  }
}

// Rounding products alone (exact doubles) in the product format, stochastic
// rounding and infinities included.
TEST_P(LanesFloat, RoundMatchesRoundPack) {
  FloatFormat f = parse_float_format(std::get<0>(GetParam()));
  f.rounding = std::get<1>(GetParam());
  f.sr_seed = 5;
  const fast::Span in{f.emax() + 1, std::max(f.emin() - f.man_bits - 8, f.emax() + 1 - 52)};
  const auto rounder = fast::Rounder::make_lanes(f, in);
  ASSERT_TRUE(rounder.has_value()) << to_string(f);
  std::mt19937_64 rng(test_seed() + 1);
  for (int i = 0; i < 50000; ++i) {
    const double x = random_on_span(rng, in);
    const std::uint64_t key = rng();
    const Result want = round_pack(f, exact_from_double(x), false, key);
    const fast::ScalarResult got = fast::round_any(*rounder, x, key);
    if (is_inf_bits(want.bits, f)) {
      ASSERT_TRUE(got.events & kOverflow);
      continue;
    }
    ASSERT_EQ(fast::Encoder(f)(got.value), want.bits) << to_string(f) << std::hexfloat << " x=" << x;
    ASSERT_EQ(got.events, want.events) << to_string(f) << std::hexfloat << " x=" << x;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Formats, LanesFloat,
    ::testing::Combine(::testing::Values("fp32", "bf16", "fp16", "fp16,sat", "bf16,ftz", "fp32,sat,ftz", "M10E5",
                                         "M7E4", "M7E4,bias=10,ftz", "M3E4", "M19E8", "M20E8"),
                       ::testing::Values(Rounding::rne, Rounding::rna, Rounding::rtz, Rounding::rd, Rounding::ru,
                                         Rounding::sr)));

// mix64's inverse, to choose keys whose draws take given values: sr_draw's
// mixer is a bijection (xorshifts and odd multipliers).
std::uint64_t unxorshift(std::uint64_t y, int shift) {
  std::uint64_t x = y;
  for (int i = 0; i < 64 / shift + 1; ++i) x = y ^ (x >> shift);
  return x;
}
std::uint64_t inverse_odd(std::uint64_t c) {
  std::uint64_t x = c;  // Newton's iteration doubles the correct low bits
  for (int i = 0; i < 6; ++i) x *= 2 - c * x;
  return x;
}
std::uint64_t unmix64(std::uint64_t z) {
  z = unxorshift(z, 31);
  z *= inverse_odd(0x94d049bb133111ebULL);
  z = unxorshift(z, 27);
  z *= inverse_odd(0xbf58476d1ce4e5b9ULL);
  return unxorshift(z, 30);
}
// A key whose draw under `seed` is r (`low`: the mixer's discarded bits).
std::uint64_t key_for_draw(std::uint64_t seed, std::uint32_t r, std::uint64_t low) {
  return unmix64((std::uint64_t{r} << 32) | (low & 0xffffffffULL)) ^ mix64(seed + 0x9e3779b97f4a7c15ULL);
}

// Stochastic rounding of TwoSum's pairs (fp32 and the other formats with
// fewer than 33 bits below their last place in a double) at the draw's
// extremes and at the threshold itself: round_pack rounds up iff
// frac * 2^32 > draw, so a binary search over draws (keys chosen for them)
// finds the least draw t that rounds down, and the lanes must agree at
// t - 2 .. t + 1 and at 0, 1, 2^32 - 2 and 2^32 - 1, where the comparison
// turns on the sum's bits below the double's last place. Some against MPFR.
TEST(LanesSrPair, MatchesRoundPackAtTheDrawsThreshold) {
  std::mt19937_64 rng(test_seed() + 4);
  for (const char* name : {"fp32", "fp32,ftz", "fp32,sat", "M20E8", "M23E6,bias=20", "M30E7"}) {
    FloatFormat f = parse_float_format(name);
    f.rounding = Rounding::sr;
    f.sr_seed = 1234;
    const fast::Span own = fast::span_of(f);
    const fast::Span addend{std::min(own.msb + 2, 1000), std::max(own.lsb - 60, -1022)};
    const auto rounder = fast::Rounder::make_lanes(f, fast::sum_span(own, addend));
    ASSERT_TRUE(rounder.has_value()) << name;
    ASSERT_TRUE(rounder->sr_pair) << name;
    const fast::Encoder encode(f);
    ASSERT_EQ(sr_draw(f.sr_seed, key_for_draw(f.sr_seed, 0xfedcba98u, rng())), 0xfedcba98u);
    std::uint64_t thresholds = 0, oracle_checked = 0, underflows = 0, overflows = 0;
    for (int i = 0; i < 3000; ++i) {
      const std::uint64_t acc_bits = rng() & encoding_mask(f.width());
      if (is_nan_bits(acc_bits, f) || is_inf_bits(acc_bits, f)) continue;
      if (!f.subnormals && exponent_field(acc_bits, f) == 0 && fraction_field(acc_bits, f) != 0) continue;
      const double acc = to_double(acc_bits, f);
      const double add = rng() % 2 == 0 ? boundary_addend(rng, acc, f, addend) : random_on_span(rng, addend);
      const std::uint64_t low = rng();
      const auto want_at = [&](std::uint32_t r) {
        return accumulate(acc_bits, f, exact_from_double(add), key_for_draw(f.sr_seed, r, low));
      };
      std::vector<std::uint32_t> draws = {0, 1, 0xfffffffeu, 0xffffffffu, static_cast<std::uint32_t>(rng())};
      const Result up = want_at(0), down = want_at(0xffffffffu);
      if (up.bits != down.bits) {
        // The least draw that rounds down lies in (0, 2^32 - 1].
        std::uint64_t lo = 0, hi = 0xffffffffu;
        while (hi - lo > 1) {
          const std::uint64_t mid = (lo + hi) / 2;
          (want_at(static_cast<std::uint32_t>(mid)).bits == down.bits ? hi : lo) = mid;
        }
        for (std::uint64_t t = hi >= 2 ? hi - 2 : 0; t <= hi + 1 && t <= 0xffffffffu; ++t) {
          draws.push_back(static_cast<std::uint32_t>(t));
        }
        ++thresholds;
      }
      for (const std::uint32_t r : draws) {
        const std::uint64_t key = key_for_draw(f.sr_seed, r, low);
        const Result want = accumulate(acc_bits, f, exact_from_double(add), key);
        const fast::ScalarResult got = fast::accumulate_any(*rounder, acc, add, key);
        const std::string where = std::string(name) + " acc=" + std::to_string(acc_bits) + " add=" +
                                  std::to_string(add) + " draw=" + std::to_string(r);
        if (is_inf_bits(want.bits, f)) {
          ASSERT_TRUE(rounder->to_inf) << where;
          ASSERT_TRUE(got.events & kOverflow) << where;
          ++overflows;
          continue;
        }
        ASSERT_EQ(encode(got.value), want.bits) << where << std::hexfloat << " got " << got.value;
        ASSERT_EQ(std::bit_cast<std::uint64_t>(got.value), std::bit_cast<std::uint64_t>(to_double(want.bits, f)))
            << where;
        ASSERT_EQ(got.events, want.events) << where << " want " << to_string_events(want.events) << " got "
                                           << to_string_events(got.events);
        overflows += (want.events & kOverflow) != 0;
        underflows += (want.events & kUnderflow) != 0;
        if (rng() % 4 == 0) {
          const test::OracleValue sum =
              test::oracle_sum(test::oracle_decode(acc_bits, f), test::oracle_from_double(add), f.rounding);
          const Result oracle = test::oracle_round(sum, f, key);
          ASSERT_EQ(oracle.bits, want.bits) << where;
          ++oracle_checked;
        }
      }
    }
    EXPECT_GT(thresholds, 1000u) << name;
    EXPECT_GT(oracle_checked, 1000u) << name;
    EXPECT_GT(overflows, 0u) << name;
    EXPECT_GT(underflows, 0u) << name;
  }
}

// A lone exact double (a product) rounded by a pair rounder, e = 0, at the
// draw's extremes, in the subnormal range too.
TEST(LanesSrPair, RoundsExactValuesAsRoundPack) {
  std::mt19937_64 rng(test_seed() + 5);
  for (const char* name : {"fp32", "fp32,ftz", "M20E8"}) {
    FloatFormat f = parse_float_format(name);
    f.rounding = Rounding::sr;
    f.sr_seed = 77;
    const fast::Span in{f.emax() + 1, std::max(f.emin() - f.man_bits - 60, -1022)};
    const auto rounder = fast::Rounder::make_lanes(f, in);
    ASSERT_TRUE(rounder && rounder->sr_pair) << name;
    for (int i = 0; i < 20000; ++i) {
      const double x = random_on_span(rng, in);
      const std::uint32_t r = i % 4 == 0 ? 0u : i % 4 == 1 ? 0xffffffffu : static_cast<std::uint32_t>(rng());
      const std::uint64_t key = key_for_draw(f.sr_seed, r, rng());
      const Result want = round_pack(f, exact_from_double(x), false, key);
      const fast::ScalarResult got = fast::round_any(*rounder, x, key);
      if (is_inf_bits(want.bits, f)) {
        ASSERT_TRUE(got.events & kOverflow);
        continue;
      }
      ASSERT_EQ(fast::Encoder(f)(got.value), want.bits) << name << std::hexfloat << " x=" << x << " draw=" << r;
      ASSERT_EQ(got.events, want.events) << name << std::hexfloat << " x=" << x << " draw=" << r;
    }
  }
}

// The hot loops' stochastic rounding of exact zeros and normals no larger
// than the largest value (round_sr_common, with the draw at the top of the
// word) against round_pack, at the draw's extremes too.
TEST(LanesSrCommon, MatchesRoundPack) {
  std::mt19937_64 rng(test_seed() + 6);
  for (const char* name : {"fp32", "bf16", "fp16", "M10E5", "M7E4", "M3E4", "M20E8", "M50E10"}) {
    FloatFormat f = parse_float_format(name);
    f.rounding = Rounding::sr;
    f.sr_seed = 31;
    const fast::Span in{f.emax(), std::max(f.emin() - f.man_bits - 40, f.emax() - 52)};
    const auto rounder = fast::Rounder::make_lanes(f, in);
    ASSERT_TRUE(rounder.has_value()) << name;
    const double max = to_double(max_finite_bits(f, false), f);
    using L = fast::Lanes<1>;
    for (int i = 0; i < 20000; ++i) {
      const double x = random_on_span(rng, in);
      if (std::fabs(x) > max || (x != 0 && std::fabs(x) < std::ldexp(1.0, f.emin()))) continue;
      const std::uint32_t r = i % 4 == 0 ? 0u : i % 4 == 1 ? 0xffffffffu : static_cast<std::uint32_t>(rng());
      const std::uint64_t key = key_for_draw(f.sr_seed, r, rng());
      const Result want = round_pack(f, exact_from_double(x), false, key);
      const L::U bits = fast::round_sr_common<1>(*rounder, L::U{std::bit_cast<std::uint64_t>(x)},
                                                 fast::sr_draw_high_lanes<1>(*rounder, L::U{key}));
      ASSERT_EQ(fast::Encoder(f)(std::bit_cast<double>(bits[0])), want.bits)
          << name << std::hexfloat << " x=" << x << " draw=" << r;
    }
  }
}

// sum_to_odd against the exact sum: equal when a double holds it, otherwise
// an odd double strictly between the exact sum's two neighbours.
TEST(LanesSumToOdd, IsRoundToOddOfTheExactSum) {
  std::mt19937_64 rng(test_seed() + 2);
  using L = fast::Lanes<1>;
  for (int i = 0; i < 200000; ++i) {
    const double x = random_on_span(rng, fast::Span{200, -300});
    const double y = random_on_span(rng, fast::Span{200, -300});
    const double odd = fast::sum_to_odd<1>(L::D{x}, L::D{y})[0];
    bool sticky = false;  // far apart: bits below the sum's double collapse into sticky
    const Exact exact = exact_sum(exact_from_double(x), exact_from_double(y), &sticky);
    // Round the exact sum to nearest in 53 bits (round_pack on a double-like
    // format) and in 52: their relation to `odd` pins it down.
    FloatFormat binary64{11, 52, 1023, true, Specials::ieee, true, Rounding::rtz, 0};
    const Result trunc = round_pack(binary64, exact, sticky);
    if (!(trunc.events & kInexact)) {
      ASSERT_EQ(std::bit_cast<std::uint64_t>(odd), std::bit_cast<std::uint64_t>(x + y)) << x << " + " << y;
      continue;
    }
    // Inexact: odd is the odd one of truncation and the next double away.
    const std::uint64_t t = trunc.bits;
    const std::uint64_t want = (t & 1) != 0 ? t : t + 1;
    ASSERT_EQ(std::bit_cast<std::uint64_t>(odd), want) << std::hexfloat << x << " + " << y;
  }
}

// Integer accumulators: integer products (int8 operands) and fractional ones
// (e4m3 operands, rounded to nearest-even), wrapping and saturating.
TEST(LanesInteger, AccumulateMatchesRoundPack) {
  std::mt19937_64 rng(test_seed() + 3);
  for (const char* name : {"int32", "int32,sat", "int16", "int16,sat", "int8", "int8,sat", "int24"}) {
    const IntFormat f = std::get<IntFormat>(parse_format(name));
    for (const fast::Span addend : {fast::Span{14, 0}, fast::Span{17, -18}, fast::Span{30, 0}}) {
      const auto rounder = fast::Rounder::make_lanes(Format{f}, fast::sum_span(fast::span_of(f), addend));
      ASSERT_TRUE(rounder.has_value()) << name;
      ASSERT_TRUE(rounder->integer());
      std::uint64_t overflows = 0, swamps = 0, inexact = 0;
      for (int i = 0; i < 50000; ++i) {
        std::uint64_t acc_bits = rng() & encoding_mask(f.bits);
        if (rng() % 8 == 0) {  // at the top or bottom of the range
          const std::int64_t top = (std::int64_t{1} << (f.bits - 1)) - 1 - static_cast<std::int64_t>(rng() % 4);
          acc_bits = static_cast<std::uint64_t>((rng() & 1) ? top : -top - 1) & encoding_mask(f.bits);
        }
        const double acc = to_double(acc_bits, Format{f});
        double add = random_on_span(rng, addend);
        if (rng() % 8 == 0) add = std::ldexp(static_cast<double>(static_cast<std::int64_t>(rng() % 64) - 32), -1);  // ties
        const Result want = accumulate(acc_bits, Format{f}, exact_from_double(add));
        const fast::ScalarResult got = fast::accumulate_any(*rounder, acc, add);
        const std::string where = std::string(name) + " acc=" + std::to_string(acc) + " add=" + std::to_string(add);
        ASSERT_EQ(static_cast<std::uint64_t>(static_cast<std::int64_t>(got.value)) & encoding_mask(f.bits), want.bits)
            << where;
        ASSERT_EQ(std::bit_cast<std::uint64_t>(got.value),
                  std::bit_cast<std::uint64_t>(to_double(want.bits, Format{f})))
            << where;
        ASSERT_EQ(got.events, want.events) << where << " want " << to_string_events(want.events) << " got "
                                           << to_string_events(got.events);
        overflows += (want.events & kOverflow) != 0;
        swamps += (want.events & kSwamp) != 0;
        inexact += (want.events & kInexact) != 0;
      }
      EXPECT_GT(overflows, 0u) << name;
      if (addend.lsb < 0 || f.saturate) {
        EXPECT_GT(inexact, 0u) << name;
      }
      if (f.saturate) {
        EXPECT_GT(swamps, 0u) << name;
      }
    }
  }
}

TEST(LanesRounder, RefusesWhatItCannotDoExactly) {
  const fast::Span wide{130, -160};
  EXPECT_TRUE(fast::Rounder::make_lanes(Format{formats::fp32()}, wide));
  // 51 fraction bits leave one bit for round-to-odd, which needs two.
  EXPECT_FALSE(fast::Rounder::make_lanes(Format{parse_float_format("M51E8")}, wide));
  // Stochastic rounding of inexact sums with fewer than 33 bits below the
  // last place takes pairs, whose draw scale 2^(emin - M - 32) must be a
  // normal double.
  const auto fp32_sr = fast::Rounder::make_lanes(Format{parse_float_format("fp32,round=sr")}, wide);
  ASSERT_TRUE(fp32_sr);
  EXPECT_TRUE(fp32_sr->sr_pair);
  const auto bf16_sr = fast::Rounder::make_lanes(Format{parse_float_format("bf16,round=sr")}, wide);
  ASSERT_TRUE(bf16_sr);
  EXPECT_FALSE(bf16_sr->sr_pair);
  EXPECT_FALSE(fast::Rounder::make_lanes(Format{parse_float_format("M23E10,bias=980,round=sr")}, fast::Span{100, -1020}));
  EXPECT_TRUE(fast::Rounder::make_lanes(Format{parse_float_format("M23E10,bias=960,round=sr")}, fast::Span{100, -1020}));
  // Integer sums must be exact and below 2^51.
  EXPECT_TRUE(fast::Rounder::make_lanes(Format{IntFormat{32, false}}, fast::Span{32, -18}));
  EXPECT_FALSE(fast::Rounder::make_lanes(Format{IntFormat{32, false}}, fast::Span{32, -30}));
  EXPECT_FALSE(fast::Rounder::make_lanes(Format{IntFormat{32, true}}, fast::Span{52, 0}));
  // Inputs that are not normal doubles.
  EXPECT_FALSE(fast::Rounder::make_lanes(Format{formats::fp32()}, fast::Span{10, -1030}));
}

}  // namespace
}  // namespace accsim::num
