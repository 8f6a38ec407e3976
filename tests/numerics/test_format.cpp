// Format strings: named formats and their parameters, printing and parsing
// round trips, and error messages that name the bad part.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <variant>

#include "models/numerics/arith.hpp"
#include "models/numerics/format.hpp"
#include "tests/numerics/test_random.hpp"

namespace accsim::test {
namespace {

using num::FloatFormat;
using num::Format;
using num::FormatError;
using num::IntFormat;
using num::Rounding;
using num::Specials;

static_assert(std::is_base_of_v<std::invalid_argument, FormatError>);

FloatFormat float_format(int exp_bits, int man_bits, int bias, bool subnormals, Specials specials,
                         bool saturate, Rounding rounding = Rounding::rne) {
  FloatFormat f;
  f.exp_bits = exp_bits;
  f.man_bits = man_bits;
  f.bias = bias;
  f.subnormals = subnormals;
  f.specials = specials;
  f.saturate = saturate;
  f.rounding = rounding;
  return f;
}

// Value of an encoding, written out here from the README's definition.
double value_of(std::uint64_t bits, const FloatFormat& f) {
  const std::uint64_t field = (bits >> f.man_bits) & ((std::uint64_t{1} << f.exp_bits) - 1);
  const std::uint64_t fraction = bits & ((std::uint64_t{1} << f.man_bits) - 1);
  const double sign = (bits >> (f.exp_bits + f.man_bits)) & 1 ? -1.0 : 1.0;
  if (field == 0) return sign * std::ldexp(static_cast<double>(fraction), 1 - f.bias - f.man_bits);
  return sign * std::ldexp(static_cast<double>(fraction | (std::uint64_t{1} << f.man_bits)),
                           static_cast<int>(field) - f.bias - f.man_bits);
}

// --- named formats ---------------------------------------------------------

TEST(NamedFormats, Parameters) {
  const FloatFormat fp32 = float_format(8, 23, 127, true, Specials::ieee, false);
  const FloatFormat fp16 = float_format(5, 10, 15, true, Specials::ieee, false);
  const FloatFormat bf16 = float_format(8, 7, 127, true, Specials::ieee, false);
  const FloatFormat e5m2 = float_format(5, 2, 15, true, Specials::ieee, false);
  EXPECT_EQ(num::parse_float_format("fp32"), fp32);
  EXPECT_EQ(num::parse_float_format("fp16"), fp16);
  EXPECT_EQ(num::parse_float_format("bf16"), bf16);
  EXPECT_EQ(num::parse_float_format("e5m2"), e5m2);
  EXPECT_EQ(num::formats::fp32(), fp32);
  EXPECT_EQ(num::formats::fp16(), fp16);
  EXPECT_EQ(num::formats::bf16(), bf16);
  EXPECT_EQ(num::formats::e5m2(), e5m2);

  // e4m3: bias 7, only S.1111.111 is NaN, no infinity, saturating.
  const FloatFormat e4m3 = num::parse_float_format("e4m3");
  EXPECT_EQ(e4m3.exp_bits, 4);
  EXPECT_EQ(e4m3.man_bits, 3);
  EXPECT_EQ(e4m3.bias, 7);
  EXPECT_TRUE(e4m3.subnormals);
  EXPECT_EQ(e4m3.specials, Specials::fn);
  EXPECT_EQ(e4m3.rounding, Rounding::rne);
  EXPECT_FALSE(e4m3.has_inf());
  EXPECT_FALSE(e4m3.overflow_to_inf());
  EXPECT_EQ(num::formats::e4m3(), e4m3);

  // e3m4 is M4E3; MxEy: bias 2^(y-1)-1, subnormals, no specials, rne.
  EXPECT_EQ(num::parse_float_format("e3m4"), num::parse_float_format("M4E3"));
  EXPECT_EQ(num::formats::e3m4(), num::parse_float_format("M4E3"));
  const FloatFormat m7e4 = num::parse_float_format("M7E4");
  EXPECT_EQ(m7e4.exp_bits, 4);
  EXPECT_EQ(m7e4.man_bits, 7);
  EXPECT_EQ(m7e4.bias, 7);
  EXPECT_TRUE(m7e4.subnormals);
  EXPECT_EQ(m7e4.specials, Specials::none);
  EXPECT_EQ(m7e4.rounding, Rounding::rne);
  EXPECT_EQ(num::formats::mxey(7, 4), m7e4);
  EXPECT_EQ(num::parse_float_format("M0E5").bias, 15);
  EXPECT_EQ(num::parse_float_format("M52E11").bias, 1023);
}

TEST(NamedFormats, Extremes) {
  struct Row {
    const char* name;
    std::uint64_t max_bits;
    double max;
    double min_subnormal;
  };
  const Row rows[] = {
      {"e4m3", 0x7e, 448.0, 0x1p-9},
      {"e5m2", 0x7b, 57344.0, 0x1p-16},
      {"e3m4", 0x7f, 31.0, 0x1p-6},
      {"fp16", 0x7bff, 65504.0, 0x1p-24},
      {"bf16", 0x7f7f, 0x1.fep127, 0x1p-133},
      {"fp32", 0x7f7fffff, static_cast<double>(FLT_MAX), 0x1p-149},
      {"M7E4,bias=10,round=rtz,ftz", 0x7ff, 63.75, 0x1p-16},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    const FloatFormat f = num::parse_float_format(row.name);
    EXPECT_EQ(num::max_finite_bits(f, false), row.max_bits);
    EXPECT_EQ(num::max_finite_bits(f, true), row.max_bits | num::sign_mask(f));
    EXPECT_EQ(value_of(row.max_bits, f), row.max);
    EXPECT_EQ(num::to_double(row.max_bits, f), row.max);
    EXPECT_EQ(num::to_double(num::max_finite_bits(f, false), f), row.max);
    EXPECT_EQ(num::to_double(1, f), row.min_subnormal);
    EXPECT_EQ(static_cast<double>(f.max_significand()) * std::ldexp(1.0, f.emax() - f.man_bits), row.max);
  }
  const FloatFormat e4m3 = num::formats::e4m3();
  EXPECT_TRUE(num::is_nan_bits(0x7f, e4m3));
  EXPECT_TRUE(num::is_nan_bits(0xff, e4m3));
  EXPECT_FALSE(num::is_nan_bits(0x7e, e4m3));
  EXPECT_FALSE(num::is_nan_bits(0x78, e4m3));  // 256, not inf
  EXPECT_FALSE(num::is_inf_bits(0x78, e4m3));
  EXPECT_TRUE(num::is_nan_bits(num::nan_bits(e4m3), e4m3));
  const FloatFormat e5m2 = num::formats::e5m2();
  EXPECT_EQ(num::inf_bits(e5m2, false), 0x7cu);
  EXPECT_EQ(num::inf_bits(e5m2, true), 0xfcu);
  EXPECT_TRUE(num::is_inf_bits(0x7c, e5m2));
  EXPECT_TRUE(num::is_nan_bits(0x7d, e5m2));
  EXPECT_TRUE(num::is_nan_bits(num::nan_bits(e5m2), e5m2));
  EXPECT_TRUE(num::is_nan_bits(num::nan_bits(num::formats::fp32()), num::formats::fp32()));
}

TEST(NamedFormats, OptionsApply) {
  FloatFormat fp16_rtz = num::formats::fp16();
  fp16_rtz.rounding = Rounding::rtz;
  EXPECT_EQ(num::parse_float_format("fp16,round=rtz"), fp16_rtz);
  FloatFormat e4m3_ftz = num::formats::e4m3();
  e4m3_ftz.subnormals = false;
  EXPECT_EQ(num::parse_float_format("e4m3,ftz"), e4m3_ftz);
  FloatFormat fp16_sat = num::formats::fp16();
  fp16_sat.saturate = true;
  EXPECT_EQ(num::parse_float_format("fp16,sat"), fp16_sat);
  EXPECT_TRUE(num::parse_float_format("M7E4,ieee").has_inf());
  EXPECT_EQ(num::parse_float_format("M7E4,bias=-3").bias, -3);
  EXPECT_EQ(num::parse_float_format("M7E4,bias=0").bias, 0);
  const FloatFormat sr = num::parse_float_format("M3E4,round=sr,seed=42");
  EXPECT_EQ(sr.rounding, Rounding::sr);
  EXPECT_EQ(sr.sr_seed, 42u);
  const FloatFormat paper = num::parse_float_format("M7E4,bias=10,round=rtz,ftz");
  EXPECT_EQ(paper, float_format(4, 7, 10, false, Specials::none, paper.saturate, Rounding::rtz));
  for (const char* mode : {"rne", "rna", "rtz", "rd", "ru", "sr"}) {
    const FloatFormat f = num::parse_float_format(std::string("M7E4,round=") + mode);
    EXPECT_EQ(num::to_string(f.rounding), mode);
  }
}

TEST(IntFormats, ParseAndWidth) {
  EXPECT_EQ(num::parse_format("int8"), (Format{IntFormat{8, false}}));
  EXPECT_EQ(num::parse_format("int8,sat"), (Format{IntFormat{8, true}}));
  EXPECT_EQ(num::parse_format("int8,wrap"), (Format{IntFormat{8, false}}));
  EXPECT_EQ(num::parse_format("int16"), (Format{IntFormat{16, false}}));
  EXPECT_EQ(num::parse_format("int32,sat"), (Format{IntFormat{32, true}}));
  EXPECT_EQ(num::parse_format("int2"), (Format{IntFormat{2, false}}));
  EXPECT_EQ(num::width(num::parse_format("int8,sat")), 8);
  EXPECT_EQ(num::width(num::parse_format("fp32")), 32);
  EXPECT_EQ(num::width(num::parse_format("M7E4,bias=10,round=rtz,ftz")), 12);
  EXPECT_EQ(num::width(num::parse_format("e4m3")), 8);
}

// --- printing and parsing ----------------------------------------------------

void expect_round_trip(const Format& f) {
  const std::string text = num::to_string(f);
  SCOPED_TRACE(text);
  Format back;
  ASSERT_NO_THROW(back = num::parse_format(text));
  EXPECT_EQ(back, f);
  EXPECT_EQ(num::to_string(back), text);
}

TEST(FormatStrings, NamedRoundTrip) {
  for (const char* name : {"fp32", "fp16", "bf16", "e5m2", "e4m3", "e3m4", "M7E4,bias=10,round=rtz,ftz",
                           "M7E4,bias=12,round=rtz,ftz", "fp16,round=rtz", "e4m3,ftz", "fp16,sat",
                           "M3E4,round=sr,seed=42", "bf16,round=ru", "e5m2,round=rd,ftz", "M0E2",
                           "M52E11,ieee", "M10E5,ieee,sat", "M3E3,bias=-3", "int8", "int8,sat", "int16",
                           "int32", "int7,wrap", "int2,sat"}) {
    SCOPED_TRACE(name);
    expect_round_trip(num::parse_format(name));
  }
  EXPECT_EQ(num::to_string(num::parse_format("M7E4,bias=10,round=rtz,ftz")), "M7E4,bias=10,round=rtz,ftz");
  EXPECT_EQ(num::parse_float_format(num::to_string(num::formats::fp32())), num::formats::fp32());
}

TEST(FormatStrings, RandomRoundTrip) {
  SemiRandom r(test_seed(), 0xf0);
  const Rounding modes[] = {Rounding::rne, Rounding::rna, Rounding::rtz,
                            Rounding::rd,  Rounding::ru,  Rounding::sr};
  int valid = 0;
  for (int i = 0; i < 3000; ++i) {
    FloatFormat f;
    f.exp_bits = 1 + static_cast<int>(r.below(11));
    f.man_bits = static_cast<int>(r.below(53));
    f.bias = r.coin() ? (1 << (f.exp_bits - 1)) - 1 : static_cast<int>(r.below(4001)) - 2000;
    f.subnormals = r.coin();
    f.specials = r.percent(30) ? Specials::ieee : Specials::none;
    f.saturate = f.specials == Specials::ieee ? r.coin() : true;
    f.rounding = modes[r.below(6)];
    f.sr_seed = f.rounding == Rounding::sr && r.coin() ? r.next() : 0;
    try {
      num::validate(f);
    } catch (const FormatError&) {
      continue;  // not a usable format: nothing to print
    }
    ++valid;
    expect_round_trip(f);
  }
  EXPECT_GT(valid, 1500);
  for (int bits = 2; bits <= 32; ++bits) {
    expect_round_trip(IntFormat{bits, false});
    expect_round_trip(IntFormat{bits, true});
  }
  // Variants of the fn format.
  for (const char* text : {"e4m3,round=rtz", "e4m3,bias=8", "e4m3,round=sr,seed=7"}) {
    expect_round_trip(num::parse_format(text));
  }
}

// --- errors ------------------------------------------------------------------

// parse_format(text) throws FormatError whose message contains every part.
void expect_error(const std::string& text, std::initializer_list<const char*> parts) {
  SCOPED_TRACE("parse_format(\"" + text + "\")");
  try {
    (void)num::parse_format(text);
    ADD_FAILURE() << "no FormatError";
  } catch (const FormatError& e) {
    const std::string message = e.what();
    EXPECT_FALSE(message.empty());
    for (const char* part : parts) {
      EXPECT_NE(message.find(part), std::string::npos) << "message \"" << message << "\" lacks \"" << part << "\"";
    }
  }
}

TEST(FormatErrors, NameTheBadPart) {
  expect_error("M60E4", {"M60E4", "mantissa bits must be 0..52"});
  expect_error("M53E8", {"mantissa bits must be 0..52"});
  expect_error("M3E12", {"M3E12", "exponent"});
  expect_error("M3E0", {"M3E0", "exponent"});
  expect_error("M7E4,foo", {"foo"});
  expect_error("M7E4,round=foo", {"foo"});
  expect_error("fp16,round=nearest", {"nearest"});
  expect_error("M7E4,bias=x", {"bias"});
  expect_error("M7E4,bias=", {"bias"});
  expect_error("M7E4,round=sr,seed=abc", {"seed"});
  expect_error("fp8", {"fp8"});
  expect_error("float32", {"float32"});
  expect_error("", {});
  expect_error("int33", {"int33"});
  expect_error("int1", {"int1"});
  expect_error("int8,foo", {"foo"});
  expect_error("M7", {"M7"});
}

TEST(FormatErrors, ValidateAndKinds) {
  FloatFormat wide;
  wide.man_bits = 60;
  EXPECT_THROW(num::validate(wide), FormatError);
  FloatFormat no_exponent;
  no_exponent.exp_bits = 0;
  EXPECT_THROW(num::validate(no_exponent), FormatError);
  FloatFormat big_exponent;
  big_exponent.exp_bits = 12;
  EXPECT_THROW(num::validate(big_exponent), FormatError);
  EXPECT_THROW(num::validate(IntFormat{33, false}), FormatError);
  EXPECT_THROW(num::validate(IntFormat{1, true}), FormatError);
  EXPECT_NO_THROW(num::validate(num::formats::fp32()));
  EXPECT_NO_THROW(num::validate(IntFormat{8, true}));
  EXPECT_THROW((void)num::parse_float_format("int8"), FormatError);
}

}  // namespace
}  // namespace accsim::test
