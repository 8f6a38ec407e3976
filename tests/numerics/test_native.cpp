// accsim against the machine's own IEEE 754 arithmetic, bit for bit: float
// add and multiply, fmaf, float conversion, _Float16, and bfloat16 obtained
// from float by an independent bit trick. The project compiles with
// -ffp-contract=off, so a*b+c below is two roundings, never a fused one.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "models/numerics/arith.hpp"
#include "tests/numerics/test_random.hpp"

namespace accsim::test {
namespace {

using num::Events;
using num::FloatFormat;
using num::Result;
using num::Rounding;
using num::Specials;

FloatFormat ieee(int exp_bits, int man_bits) {
  FloatFormat f;
  f.exp_bits = exp_bits;
  f.man_bits = man_bits;
  f.bias = (1 << (exp_bits - 1)) - 1;
  f.specials = Specials::ieee;
  f.saturate = false;
  f.rounding = Rounding::rne;
  return f;
}
const FloatFormat kFp32 = ieee(8, 23);
const FloatFormat kFp16 = ieee(5, 10);
const FloatFormat kBf16 = ieee(8, 7);

std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

float as_float(std::uint64_t bits) { return std::bit_cast<float>(static_cast<std::uint32_t>(bits)); }
std::uint64_t bits_of(float x) { return std::bit_cast<std::uint32_t>(x); }
_Float16 as_half(std::uint64_t bits) { return std::bit_cast<_Float16>(static_cast<std::uint16_t>(bits)); }
std::uint64_t bits_of(_Float16 x) { return std::bit_cast<std::uint16_t>(x); }

// One rounding per function: the result is converted to _Float16 on return.
[[gnu::noinline]] _Float16 half_add(_Float16 a, _Float16 b) { return a + b; }
[[gnu::noinline]] _Float16 half_mul(_Float16 a, _Float16 b) { return a * b; }
[[gnu::noinline]] _Float16 half_from_double(double x) { return static_cast<_Float16>(x); }

// bfloat16 from float, round to nearest even, written out independently of
// accsim: add half an ulp (minus one when the kept lsb is 0) and truncate.
std::uint64_t bf16_from_float(float x) {
  std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  if (std::isnan(x)) return (u >> 16) | 0x40;
  u += 0x7fff + ((u >> 16) & 1);
  return u >> 16;
}
float float_from_bf16(std::uint64_t bits) { return std::bit_cast<float>(static_cast<std::uint32_t>(bits << 16)); }

// The same encoding, or both NaN.
bool same_bits(std::uint64_t want, std::uint64_t got, bool want_nan, bool got_nan) {
  return want == got || (want_nan && got_nan);
}

class Failures {
 public:
  void report(const std::string& what) {
    if (++count_ <= 6) ADD_FAILURE() << what << "\n  reproduce with ACCSIM_TEST_SEED=" << test_seed();
  }
  ~Failures() {
    if (count_ > 6) ADD_FAILURE() << count_ << " mismatches in total (first 6 shown)";
  }

 private:
  int count_ = 0;
};

// Operand pairs: biased encodings, half of the second operands steered to
// the first one's binade (cancellation, ties, swamping).
std::pair<std::uint64_t, std::uint64_t> operand_pair(SemiRandom& r, const FloatFormat& f) {
  std::uint64_t a = r.encoding(f);
  if (r.coin()) return {a, r.encoding(f)};
  long field = static_cast<long>((a >> f.man_bits) & SemiRandom::mask(f.exp_bits));
  long e = field - f.bias - static_cast<long>(r.below(static_cast<std::uint64_t>(f.man_bits + 4))) + 1;
  return {a, r.encoding_with_exponent(f, e, r.coin())};
}

// Events of a float operation derived from native arithmetic: overflow when
// finite operands give inf, invalid when the result is NaN, underflow when
// the exact result is non-zero and below FLT_MIN, swamp per the README
// (a NaN addend is no number, so never a non-zero one; a NaN result is
// judged by accsim's NaN encoding, since payloads differ).
Events native_events(float a, float b, float result, std::uint64_t accsim_bits, bool inexact, bool is_add) {
  Events e = 0;
  std::uint64_t result_bits = bits_of(result);
  if (std::isnan(result)) {
    e |= num::kInvalid;
    if (std::isnan(as_float(accsim_bits))) result_bits = accsim_bits;
  }
  if (std::isinf(result) && std::isfinite(a) && std::isfinite(b)) e |= num::kOverflow | num::kInexact;
  if (inexact) e |= num::kInexact;
  if (is_add && b != 0 && !std::isnan(b) && result_bits == bits_of(a)) e |= num::kSwamp;
  return e;
}

constexpr std::uint64_t kPairs = 2'500'000;

TEST(Native, Fp32AddBitsAndEvents) {
  SemiRandom r(test_seed(), 1);
  Failures out;
  const std::uint64_t n = scaled_count(kPairs);
  for (std::uint64_t i = 0; i < n; ++i) {
    auto [a_bits, b_bits] = operand_pair(r, kFp32);
    const float a = as_float(a_bits);
    const float b = as_float(b_bits);
    const float s = a + b;
    Result got = num::add(a_bits, kFp32, b_bits, kFp32);
    // TwoSum: the rounding error of a finite sum, exactly.
    bool inexact = false;
    bool tiny = false;
    if (std::isfinite(s)) {
      const float bb = s - a;
      const float err = (a - (s - bb)) + (b - bb);
      inexact = err != 0;
      // A sum of floats below FLT_MIN is a multiple of 2^-149: exact.
      tiny = s != 0 && std::fabs(s) < std::numeric_limits<float>::min();
    }
    Events want = native_events(a, b, s, got.bits, inexact, true) | (tiny ? num::kUnderflow : 0);
    if (!same_bits(bits_of(s), got.bits, std::isnan(s), std::isnan(as_float(got.bits))) || want != got.events) {
      out.report("fp32 add " + hex(a_bits) + " + " + hex(b_bits) + ": native " + hex(bits_of(s)) +
                 " events " + std::to_string(want) + ", accsim " + hex(got.bits) + " events " +
                 std::to_string(got.events));
    }
  }
}

TEST(Native, Fp32MultiplyBitsAndEvents) {
  SemiRandom r(test_seed(), 2);
  Failures out;
  const std::uint64_t n = scaled_count(kPairs);
  for (std::uint64_t i = 0; i < n; ++i) {
    auto [a_bits, b_bits] = operand_pair(r, kFp32);
    const float a = as_float(a_bits);
    const float b = as_float(b_bits);
    const float p = a * b;
    Result got = num::multiply(a_bits, b_bits, kFp32, kFp32);
    // 24 x 24 bits, exponents from -298: the double product is exact.
    const double exact = static_cast<double>(a) * static_cast<double>(b);
    const bool finite = std::isfinite(exact);
    const bool inexact = finite && std::isfinite(p) && static_cast<double>(p) != exact;
    const bool tiny = finite && exact != 0 && std::fabs(exact) < std::numeric_limits<float>::min();
    Events want = native_events(a, b, p, got.bits, inexact, false) | (tiny ? num::kUnderflow : 0);
    if (!same_bits(bits_of(p), got.bits, std::isnan(p), std::isnan(as_float(got.bits))) || want != got.events) {
      out.report("fp32 multiply " + hex(a_bits) + " * " + hex(b_bits) + ": native " + hex(bits_of(p)) +
                 " events " + std::to_string(want) + ", accsim " + hex(got.bits) + " events " +
                 std::to_string(got.events));
    }
  }
}

TEST(Native, Fp32FusedMacIsFmaf) {
  SemiRandom r(test_seed(), 3);
  Failures out;
  const std::uint64_t n = scaled_count(1'500'000);
  for (std::uint64_t i = 0; i < n; ++i) {
    auto [a_bits, b_bits] = operand_pair(r, kFp32);
    std::uint64_t c_bits = r.encoding(kFp32);
    if (r.coin()) {  // accumulator near the product: cancellation and ties
      long e = static_cast<long>((a_bits >> 23) & 0xff) + static_cast<long>((b_bits >> 23) & 0xff) - 254 +
               static_cast<long>(r.below(30)) - 5;
      c_bits = r.encoding_with_exponent(kFp32, e, r.coin());
    }
    const float want = std::fmaf(as_float(a_bits), as_float(b_bits), as_float(c_bits));
    num::MacResult got = num::mac(c_bits, kFp32, a_bits, b_bits, kFp32, std::nullopt);
    if (!same_bits(bits_of(want), got.bits, std::isnan(want), std::isnan(as_float(got.bits))) ||
        got.product_events != 0) {
      out.report("fp32 mac " + hex(c_bits) + " + " + hex(a_bits) + " * " + hex(b_bits) + ": fmaf " +
                 hex(bits_of(want)) + ", accsim " + hex(got.bits) +
                 " product_events " + std::to_string(got.product_events));
    }
  }
}

TEST(Native, Fp32MacWithProductFormatIsTwoRoundings) {
  SemiRandom r(test_seed(), 4);
  Failures out;
  const std::uint64_t n = scaled_count(1'000'000);
  for (std::uint64_t i = 0; i < n; ++i) {
    auto [a_bits, b_bits] = operand_pair(r, kFp32);
    std::uint64_t c_bits = r.encoding(kFp32);
    const float a = as_float(a_bits);
    const float b = as_float(b_bits);
    const float c = as_float(c_bits);
    const float want = c + a * b;  // contraction is off: two roundings
    num::MacResult got = num::mac(c_bits, kFp32, a_bits, b_bits, kFp32, num::Format{kFp32});
    if (!same_bits(bits_of(want), got.bits, std::isnan(want), std::isnan(as_float(got.bits)))) {
      out.report("fp32 mac (product fp32) " + hex(c_bits) + " + " + hex(a_bits) + " * " + hex(b_bits) +
                 ": native " + hex(bits_of(want)) + ", accsim " + hex(got.bits));
    }
  }
}

TEST(Native, QuantizeDoubleIsStaticCast) {
  SemiRandom r(test_seed(), 5);
  Failures out;
  const std::uint64_t n = scaled_count(1'000'000);
  for (std::uint64_t i = 0; i < n; ++i) {
    const bool half = i % 2 == 1;
    double x = r.percent(70) ? r.value_near(half ? kFp16 : kFp32) : std::bit_cast<double>(r.next());
    if (!half) {
      const float want = static_cast<float>(x);
      Result got = num::quantize(x, kFp32);
      if (!same_bits(bits_of(want), got.bits, std::isnan(want), std::isnan(as_float(got.bits)))) {
        out.report("quantize " + hex(std::bit_cast<std::uint64_t>(x)) + " to fp32: native " +
                   hex(bits_of(want)) + ", accsim " + hex(got.bits));
      }
    } else {
      const _Float16 want = half_from_double(x);
      Result got = num::quantize(x, kFp16);
      const bool want_nan = want != want;
      const bool got_nan = as_half(got.bits) != as_half(got.bits);
      if (!same_bits(bits_of(want), got.bits, want_nan, got_nan)) {
        out.report("quantize " + hex(std::bit_cast<std::uint64_t>(x)) + " to fp16: native " +
                   hex(bits_of(want)) + ", accsim " + hex(got.bits));
      }
    }
  }
}

TEST(Native, Fp16AddAndMultiplyAreFloat16) {
  SemiRandom r(test_seed(), 6);
  Failures out;
  const std::uint64_t n = scaled_count(2'000'000);
  for (std::uint64_t i = 0; i < n; ++i) {
    auto [a_bits, b_bits] = operand_pair(r, kFp16);
    const bool is_add = i % 2 == 0;
    const _Float16 want = is_add ? half_add(as_half(a_bits), as_half(b_bits))
                                 : half_mul(as_half(a_bits), as_half(b_bits));
    Result got = is_add ? num::add(a_bits, kFp16, b_bits, kFp16) : num::multiply(a_bits, b_bits, kFp16, kFp16);
    const bool want_nan = want != want;
    const bool got_nan = as_half(got.bits) != as_half(got.bits);
    if (!same_bits(bits_of(want), got.bits, want_nan, got_nan)) {
      out.report(std::string("fp16 ") + (is_add ? "add " : "multiply ") + hex(a_bits) + ", " + hex(b_bits) +
                 ": _Float16 " + hex(bits_of(want)) + ", accsim " + hex(got.bits));
    }
  }
}

TEST(Native, Bf16AddAndMultiplyAreRoundedFloat) {
  SemiRandom r(test_seed(), 7);
  Failures out;
  const std::uint64_t n = scaled_count(2'000'000);
  for (std::uint64_t i = 0; i < n; ++i) {
    auto [a_bits, b_bits] = operand_pair(r, kBf16);
    const bool is_add = i % 2 == 0;
    const float a = float_from_bf16(a_bits);
    const float b = float_from_bf16(b_bits);
    // float (24 bits) holds bf16 (8 bits) with room: rounding to float
    // first never changes the bf16 result of one add or multiply.
    const std::uint64_t want = bf16_from_float(is_add ? a + b : a * b);
    Result got = is_add ? num::add(a_bits, kBf16, b_bits, kBf16) : num::multiply(a_bits, b_bits, kBf16, kBf16);
    if (!same_bits(want, got.bits, std::isnan(float_from_bf16(want)), std::isnan(float_from_bf16(got.bits)))) {
      out.report(std::string("bf16 ") + (is_add ? "add " : "multiply ") + hex(a_bits) + ", " + hex(b_bits) +
                 ": float-rounded " + hex(want) + ", accsim " + hex(got.bits));
    }
  }
}

}  // namespace
}  // namespace accsim::test
