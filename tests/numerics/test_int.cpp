// Integer formats against plain int64 arithmetic: quantize rounds to
// nearest-even and saturates; products and sums wrap or saturate per format.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>

#include "models/numerics/arith.hpp"

namespace accsim::num {
namespace {

std::int64_t value_of(std::uint64_t bits, int width) {
  const int unused = 64 - width;
  return static_cast<std::int64_t>(bits << unused) >> unused;
}

std::int64_t wrap(std::int64_t v, int width) {
  return value_of(static_cast<std::uint64_t>(v) & encoding_mask(width), width);
}

std::int64_t clamp(std::int64_t v, int width) {
  const std::int64_t max = (std::int64_t{1} << (width - 1)) - 1;
  return std::min(std::max(v, -max - 1), max);
}

TEST(IntFormat, QuantizeRoundsHalfEvenAndSaturates) {
  const IntFormat i8{8, false};
  struct Case {
    double x;
    std::int64_t want;
    Events events;
  };
  for (const Case& c : {Case{2.5, 2, kInexact}, Case{3.5, 4, kInexact}, Case{-2.5, -2, kInexact},
                        Case{-0.5, 0, kInexact}, Case{0.75, 1, kInexact}, Case{127.0, 127, 0},
                        Case{127.5, 127, kOverflow | kInexact}, Case{300.0, 127, kOverflow | kInexact},
                        Case{-128.0, -128, 0}, Case{-129.0, -128, kOverflow | kInexact}, Case{-0.0, 0, 0},
                        Case{1e300, 127, kOverflow | kInexact}}) {
    const Result r = quantize(c.x, i8);
    EXPECT_EQ(value_of(r.bits, 8), c.want) << c.x;
    EXPECT_EQ(r.events, c.events) << c.x << ": " << to_string_events(r.events);
  }
  // Quantizing saturates even into a wrapping format, and NaN is invalid.
  EXPECT_EQ(quantize(std::nan(""), i8).events, kInvalid);
}

// Every int8 x int8 product accumulated once into int16 and int32, wrapping
// and saturating, from a spread of accumulator values.
TEST(IntFormat, MacExhaustiveInt8) {
  const IntFormat i8{8, false};
  std::mt19937_64 rng(5);
  for (int width : {16, 32}) {
    for (bool sat : {false, true}) {
      const IntFormat acc{width, sat};
      for (int a = -128; a < 128; ++a) {
        for (int b = -128; b < 128; ++b) {
          const std::int64_t acc_value = value_of(rng(), width);
          const MacResult r = mac(static_cast<std::uint64_t>(acc_value) & encoding_mask(width), acc,
                                  static_cast<std::uint64_t>(a) & 0xff, static_cast<std::uint64_t>(b) & 0xff, i8,
                                  std::nullopt);
          const std::int64_t exact = acc_value + a * b;
          const std::int64_t want = sat ? clamp(exact, width) : wrap(exact, width);
          ASSERT_EQ(value_of(r.bits, width), want) << acc_value << " + " << a << "*" << b;
          const bool overflow = exact != clamp(exact, width);
          ASSERT_EQ((r.sum_events & kOverflow) != 0, overflow) << acc_value << " + " << a << "*" << b;
          ASSERT_EQ((r.sum_events & kSwamp) != 0, a * b != 0 && want == acc_value);
        }
      }
    }
  }
}

TEST(IntFormat, ProductIntoNarrowIntegerWrapsOrSaturates) {
  const IntFormat i8{8, false};
  for (bool sat : {false, true}) {
    const IntFormat prod{8, sat};
    for (int a = -128; a < 128; ++a) {
      for (int b = -128; b < 128; b += 7) {
        const Result r = multiply(static_cast<std::uint64_t>(a) & 0xff, static_cast<std::uint64_t>(b) & 0xff, i8, prod);
        const std::int64_t want = sat ? clamp(a * b, 8) : wrap(a * b, 8);
        ASSERT_EQ(value_of(r.bits, 8), want) << a << "*" << b;
      }
    }
  }
}

TEST(IntFormat, FloatIntoIntegerAccumulatorRoundsHalfEven) {
  // A floating addend into an integer accumulator: the exact sum is rounded
  // once (5 + 0.5 -> 6, 5 + 1.5 -> 6).
  const IntFormat i32{32, false};
  const FloatFormat f = formats::e4m3();
  for (std::uint64_t bits = 0; bits < 256; ++bits) {
    if (is_nan_bits(bits, f)) continue;
    const double v = to_double(bits, f);
    const Result r = add(5, i32, bits, f);
    EXPECT_EQ(value_of(r.bits, 32), static_cast<std::int64_t>(std::nearbyint(5 + v))) << v;
    EXPECT_EQ((r.events & kInexact) != 0, v != std::trunc(v)) << v;
  }
}

}  // namespace
}  // namespace accsim::num
