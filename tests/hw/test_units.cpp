// The PE's arithmetic units against models/numerics: the encoder the fast
// path uses for register bits (exhaustively over small formats), the fused
// product register in lanes and in scalar, and Multiplier + Accumulator
// against num::mac.
#include <gtest/gtest.h>

#include <random>

#include "models/hw/units.hpp"
#include "models/numerics/arith.hpp"
#include "test_util.hpp"

namespace accsim::hw {
namespace {

namespace fast = num::fast;

class EncoderExhaustive : public ::testing::TestWithParam<const char*> {};

TEST_P(EncoderExhaustive, InvertsToDouble) {
  const num::FloatFormat f = num::parse_float_format(GetParam());
  const FloatEncoder encode(f);
  const std::uint64_t count = std::uint64_t{1} << f.width();
  std::uint64_t checked = 0;
  for (std::uint64_t bits = 0; bits < count; ++bits) {
    if (num::is_nan_bits(bits, f) || num::is_inf_bits(bits, f)) continue;
    const double x = num::to_double(bits, f);
    ASSERT_EQ(encode(x), bits) << GetParam() << " bits 0x" << std::hex << bits;
    // A flush-to-zero format never produces its subnormal encodings; the
    // lanes (the hot path) need not invert them.
    if (!f.subnormals && num::exponent_field(bits, f) == 0 && num::fraction_field(bits, f) != 0) continue;
    ASSERT_EQ(encode(x), num::quantize(x, f).bits) << GetParam();
    const fast::Lanes<4>::U lanes = encode.lanes<4>(fast::Lanes<4>::D{x, -x, x, 0.0});
    ASSERT_EQ(lanes[0], bits);
    ASSERT_EQ(lanes[1], encode(-x));
    ASSERT_EQ(lanes[3], 0u);
    ++checked;
  }
  EXPECT_GT(checked, count / 2);
}

INSTANTIATE_TEST_SUITE_P(Formats, EncoderExhaustive,
                         ::testing::Values("e4m3", "e5m2", "M7E4,bias=10,round=rtz,ftz", "M7E4,bias=12", "M3E2",
                                           "M2E5,bias=30", "fp16", "bf16"));

TEST(FusedProductBits, LanesMatchScalarForEveryE4m3Pair) {
  const num::Format f = num::formats::e4m3();
  const FusedProductBits fused(f);
  ASSERT_TRUE(fused.fits64());
  EXPECT_EQ(fused.width(), 1 + 5 + 8);
  for (std::uint64_t a = 0; a < 256; ++a) {
    for (std::uint64_t b = 0; b < 256; b += 4) {
      const fast::Lanes<4>::U got = fused.lanes<4>(fast::Lanes<4>::U{a, a, a, a}, fast::Lanes<4>::U{b, b + 1, b + 2, b + 3});
      for (int l = 0; l < 4; ++l) ASSERT_EQ(got[l], static_cast<std::uint64_t>(fused(a, b + static_cast<std::uint64_t>(l))));
    }
  }
  // The register holds sign, exponent sum and significand product: the
  // product's value comes back from it.
  const auto value = [&](u128 raw) {
    const double sig = static_cast<double>(static_cast<std::uint64_t>(raw & 0xff));
    const int exp = static_cast<int>((raw >> 8) & 0x1f);
    const double v = std::ldexp(sig, exp - 2 * 7 - 2 * 3);
    return ((raw >> 13) & 1) != 0 ? -v : v;
  };
  for (std::uint64_t a = 0; a < 256; ++a) {
    for (std::uint64_t b = 0; b < 256; ++b) {
      if (num::is_nan_bits(a, std::get<num::FloatFormat>(f)) || num::is_nan_bits(b, std::get<num::FloatFormat>(f))) continue;
      const double want = num::to_double(a, f) * num::to_double(b, f);
      ASSERT_EQ(value(fused(a, b)), want) << a << " " << b;
    }
  }
}

TEST(FusedProductBits, IntegerProductIsTwosComplement) {
  const FusedProductBits fused(num::parse_format("int8"));
  EXPECT_EQ(fused.width(), 16);
  EXPECT_EQ(static_cast<std::uint64_t>(fused(0xff, 0x02)), 0xfffeu);  // -1 * 2
  EXPECT_EQ(static_cast<std::uint64_t>(fused(0x80, 0x80)), 0x4000u);  // -128 * -128
}

// Multiplier then Accumulator is num::mac split at the product register.
TEST(Units, MultiplierThenAccumulatorIsMac) {
  std::mt19937_64 rng(test::test_seed());
  struct Case {
    const char *mul, *acc, *prod;
  };
  for (const Case& c : {Case{"e4m3", "M7E4,bias=10,round=rtz,ftz", "M7E4,bias=12,round=rtz,ftz"},
                        Case{"e4m3", "M7E4,round=sr,seed=9", "M5E4,round=sr,seed=4"},
                        Case{"e5m2", "fp16", ""}, Case{"int8", "int16,sat", ""}}) {
    const num::Format mul = num::parse_format(c.mul), acc = num::parse_format(c.acc);
    std::optional<num::Format> prod;
    if (*c.prod != 0) prod = num::parse_format(c.prod);
    const Multiplier multiplier(mul, prod, 1);
    const Accumulator accumulator(acc, 1);
    const std::uint64_t mul_mask = num::encoding_mask(num::width(mul)), acc_mask = num::encoding_mask(num::width(acc));
    for (int i = 0; i < 20000; ++i) {
      std::uint64_t a = rng() & mul_mask, b = rng() & mul_mask, s = rng() & acc_mask;
      if (const auto* f = std::get_if<num::FloatFormat>(&mul)) {
        if (num::is_nan_bits(a, *f) || num::is_nan_bits(b, *f) || num::is_inf_bits(a, *f) || num::is_inf_bits(b, *f)) continue;
      }
      if (const auto* f = std::get_if<num::FloatFormat>(&acc); f && (num::is_nan_bits(s, *f) || num::is_inf_bits(s, *f))) continue;
      const std::uint64_t key = rng();
      const num::MacResult want = num::mac(s, acc, a, b, mul, prod, key);
      const Multiplier::Output p = multiplier(a, b, key);
      const num::Result got = accumulator(s, p.addend, key);
      ASSERT_EQ(got.bits, want.bits) << c.mul << " " << c.acc;
      ASSERT_EQ(got.events, want.sum_events);
      ASSERT_EQ(p.events, want.product_events);
      if (prod) {
        ASSERT_EQ(static_cast<std::uint64_t>(p.register_bits), num::multiply(a, b, mul, *prod, num::product_key(key)).bits);
      }
    }
  }
}

}  // namespace
}  // namespace accsim::hw
