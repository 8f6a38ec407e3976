// accsim's arithmetic against the MPFR oracle: formats x rounding modes, with
// biased random operands and every corner encoding, comparing bits and
// events. Reproduce a failure with the printed ACCSIM_TEST_SEED.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "models/numerics/arith.hpp"
#include "models/numerics/sr.hpp"
#include "tests/numerics/mpfr_oracle.hpp"
#include "tests/numerics/test_random.hpp"

namespace accsim::test {
namespace {

using num::Events;
using num::FloatFormat;
using num::Result;
using num::Rounding;
using num::Specials;

constexpr Rounding kModes[] = {Rounding::rne, Rounding::rna, Rounding::rtz,
                               Rounding::rd,  Rounding::ru,  Rounding::sr};
constexpr const char* kModeNames[] = {"rne", "rna", "rtz", "rd", "ru", "sr"};

// Built field by field, not parsed: these tests must not depend on the parser.
FloatFormat make(int exp_bits, int man_bits, int bias, bool ftz = false,
                 Specials specials = Specials::none, bool saturate = true) {
  FloatFormat f;
  f.exp_bits = exp_bits;
  f.man_bits = man_bits;
  f.bias = bias;
  f.subnormals = !ftz;
  f.specials = specials;
  f.saturate = saturate;
  return f;
}
FloatFormat with_mode(FloatFormat f, Rounding mode, std::uint64_t seed = 0) {
  f.rounding = mode;
  f.sr_seed = mode == Rounding::sr ? seed : 0;
  return f;
}

struct NamedFormat {
  const char* name;
  FloatFormat format;
};

const std::vector<NamedFormat>& formats_under_test() {
  static const std::vector<NamedFormat> list = {
      {"fp32", make(8, 23, 127, false, Specials::ieee, false)},
      {"fp16", make(5, 10, 15, false, Specials::ieee, false)},
      {"bf16", make(8, 7, 127, false, Specials::ieee, false)},
      {"e5m2", make(5, 2, 15, false, Specials::ieee, false)},
      {"e4m3", make(4, 3, 7, false, Specials::fn)},
      {"e4m3_ftz", make(4, 3, 7, true, Specials::fn)},
      {"e3m4", make(3, 4, 3)},
      {"M7E4_bias10_ftz", make(4, 7, 10, true)},  // the paper's accumulator
      {"M7E4_bias12_ftz", make(4, 7, 12, true)},
      {"M7E4_bias10", make(4, 7, 10)},
      {"M3E4", make(4, 3, 7)},
      {"M0E2", make(2, 0, 1)},
      {"M1E2", make(2, 1, 1)},
      {"M2E2_bias0", make(2, 2, 0)},
      {"M0E5", make(5, 0, 15)},
      {"M3E3_bias_neg3", make(3, 3, -3)},
      {"M5E5_bias20", make(5, 5, 20)},
      {"M4E6_bias0_ftz", make(6, 4, 0, true)},
      {"M6E5_ieee_sat", make(5, 6, 15, false, Specials::ieee, true)},
      {"fp16_sat", make(5, 10, 15, false, Specials::ieee, true)},
      {"M23E8", make(8, 23, 127)},
      {"M23E8_ftz", make(8, 23, 127, true)},
      {"M12E6", make(6, 12, 31)},
      {"M15E7_bias_neg20", make(7, 15, -20)},
      {"M8E8_ieee_ftz", make(8, 8, 127, true, Specials::ieee, false)},
      {"M9E4_bias5", make(4, 9, 5)},
      {"M1E5_ieee", make(5, 1, 15, false, Specials::ieee, false)},
      {"M20E3", make(3, 20, 3)},
      {"M3E8_bias200", make(8, 3, 200)},
      {"M6E2_ftz", make(2, 6, 1, true)},
      {"M16E4_ieee", make(4, 16, 7, false, Specials::ieee, false)},
      {"M11E7_bias70_ftz", make(7, 11, 70, true)},
      {"M2E5_ieee_sat_ftz", make(5, 2, 15, true, Specials::ieee, true)},
      {"fp64", make(11, 52, 1023, false, Specials::ieee, false)},
      {"M23E11", make(11, 23, 1023)},
      {"M10E11_bias_neg900", make(11, 10, -900)},  // entirely above double's range
  };
  return list;
}

// Second formats for mixed-format operations: narrower and wider ones.
const std::vector<FloatFormat>& partner_formats() {
  static const std::vector<FloatFormat> list = {
      make(8, 23, 127, false, Specials::ieee, false),  // fp32
      make(8, 7, 127, false, Specials::ieee, false),   // bf16
      make(5, 2, 15, false, Specials::ieee, false),    // e5m2
      make(4, 3, 7, false, Specials::fn),              // e4m3
      make(3, 2, 3),                                   // M2E3
      make(4, 7, 10, true),                            // paper accumulator
      make(5, 10, 15, false, Specials::ieee, false),   // fp16
      make(8, 23, 0),                                  // M23E8, bias 0
      make(11, 52, 1023, false, Specials::ieee, false),
      make(5, 4, 20, true),                            // M4E5, bias 20, ftz
  };
  return list;
}

struct Case {
  std::string name;
  FloatFormat format;
  FloatFormat partner;
  std::uint64_t stream;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name << ' ' << describe(c.format); }

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  const auto& formats = formats_under_test();
  const auto& partners = partner_formats();
  for (std::size_t i = 0; i < formats.size(); ++i) {
    for (std::size_t m = 0; m < std::size(kModes); ++m) {
      Case c;
      c.name = std::string(formats[i].name) + "_" + kModeNames[m];
      c.stream = i * 16 + m;
      c.format = with_mode(formats[i].format, kModes[m], 0x5151 + c.stream);
      c.partner = with_mode(partners[(i * 3 + 1) % partners.size()], kModes[m], 0xa0a0 + c.stream);
      cases.push_back(c);
    }
  }
  return cases;
}

// --- comparison and reporting -------------------------------------------

std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// Collects mismatches; prints the first few in full and the total count.
// Also tallies the expected events, to show a sweep reached its edges.
class Mismatches {
 public:
  num::EventCounts seen;

  void report(const std::string& what) {
    if (++count_ <= kShown) {
      ADD_FAILURE() << what << "\n  reproduce with ACCSIM_TEST_SEED=" << test_seed();
    }
  }
  ~Mismatches() {
    if (count_ > kShown) ADD_FAILURE() << count_ << " mismatches in total (first " << kShown << " shown)";
  }

 private:
  static constexpr int kShown = 6;
  int count_ = 0;
};

std::string result_text(const Result& r, const FloatFormat& f) {
  return describe_bits(r.bits, f) + " events=" + describe_events(r.events);
}

// The bits to judge swamp by: the oracle's, or the implementation's NaN
// when both are NaN (the README fixes no NaN payload).
std::uint64_t judged_bits(const Result& expected, const Result& got, const FloatFormat& f) {
  if (oracle_is_nan(expected.bits, f) && oracle_is_nan(got.bits, f)) return got.bits;
  return expected.bits;
}

// Swamp, restated independently: non-zero addend, accumulator unchanged.
// A NaN addend is no number, so it is not a non-zero one; inf is.
Events swamp(bool addend_nonzero, std::uint64_t result_bits, std::uint64_t acc_bits) {
  return addend_nonzero && result_bits == acc_bits ? num::kSwamp : 0;
}
bool nonzero_number(const OracleValue& v) { return !v.is_zero() && !v.is_nan(); }

// Unbiased exponent of an encoding's value (emin for subnormals), for
// steering related operands.
long exponent_of(std::uint64_t bits, const FloatFormat& f) {
  std::uint64_t field = (bits >> f.man_bits) & SemiRandom::mask(f.exp_bits);
  return field == 0 ? 1L - f.bias : static_cast<long>(field) - f.bias;
}

// Checkers shared by random and corner tests -------------------------------

void check_quantize(double x, const FloatFormat& f, std::uint64_t key, Mismatches& out) {
  Result got = num::quantize(x, f, key);
  Result want = oracle_quantize(x, f, key);
  out.seen.record(want.events);
  if (!same_result(want, got, f)) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%a", x);
    out.report("quantize(" + std::string(buf) + ") into " + describe(f) + " sr_key=" + hex(key) +
               "\n  expected " + result_text(want, f) + "\n  got      " + result_text(got, f));
  }
}

void check_multiply(std::uint64_t a, std::uint64_t b, const FloatFormat& operand,
                    const FloatFormat& product, std::uint64_t key, Mismatches& out) {
  Result got = num::multiply(a, b, operand, product, key);
  Result want = oracle_multiply(a, b, operand, product, key);
  out.seen.record(want.events);
  if (!same_result(want, got, product)) {
    out.report("multiply " + describe_bits(a, operand) + " * " + describe_bits(b, operand) +
               " operand " + describe(operand) + " -> product " + describe(product) +
               " sr_key=" + hex(key) + "\n  expected " + result_text(want, product) +
               "\n  got      " + result_text(got, product));
  }
}

// add() or, when via_accumulate, accumulate() with the addend decoded.
void check_add(std::uint64_t acc, const FloatFormat& acc_format, std::uint64_t addend,
               const FloatFormat& addend_format, std::uint64_t key, bool via_accumulate,
               Mismatches& out) {
  Result got = via_accumulate
                   ? num::accumulate(acc, acc_format, num::decode(addend, addend_format), key)
                   : num::add(acc, acc_format, addend, addend_format, key);
  Result want = oracle_add(acc, acc_format, addend, addend_format, key);
  want.events |= swamp(nonzero_number(oracle_decode(addend, addend_format)),
                       judged_bits(want, got, acc_format), acc);
  out.seen.record(want.events);
  if (!same_result(want, got, acc_format)) {
    out.report(std::string(via_accumulate ? "accumulate " : "add ") + describe_bits(acc, acc_format) +
               " + " + describe_bits(addend, addend_format) + " acc " + describe(acc_format) +
               " addend " + describe(addend_format) + " sr_key=" + hex(key) + "\n  expected " +
               result_text(want, acc_format) + "\n  got      " + result_text(got, acc_format));
  }
}

void check_mac(std::uint64_t acc, const FloatFormat& acc_format, std::uint64_t a, std::uint64_t b,
               const FloatFormat& operand, const std::optional<FloatFormat>& product,
               std::uint64_t key, Mismatches& out) {
  std::optional<num::Format> product_format;
  if (product) product_format = *product;
  num::MacResult got = num::mac(acc, acc_format, a, b, operand, product_format, key);
  OracleMac want = oracle_mac(acc, acc_format, a, b, operand, product, key);
  Result want_sum{want.bits, want.sum_events};
  Result got_sum{got.bits, got.sum_events};
  want_sum.events |= swamp(want.addend_nonzero, judged_bits(want_sum, got_sum, acc_format), acc);
  out.seen.record(want_sum.events);
  if (!same_result(want_sum, got_sum, acc_format) || want.product_events != got.product_events) {
    out.report("mac " + describe_bits(acc, acc_format) + " + " + describe_bits(a, operand) + " * " +
               describe_bits(b, operand) + " acc " + describe(acc_format) + " operand " +
               describe(operand) + " product " + (product ? describe(*product) : "exact") +
               " sr_key=" + hex(key) + "\n  expected " + result_text(want_sum, acc_format) +
               " product_events=" + describe_events(want.product_events) + "\n  got      " +
               result_text(got_sum, acc_format) +
               " product_events=" + describe_events(got.product_events));
  }
}

// Every corner encoding of f: zeros, subnormal and normal extremes, one,
// the largest finite values, infinities and NaNs.
std::vector<std::uint64_t> corner_encodings(const FloatFormat& f) {
  const std::uint64_t top = SemiRandom::mask(f.exp_bits);
  const std::uint64_t ones = SemiRandom::mask(f.man_bits);
  const std::uint64_t max_field = f.specials == Specials::ieee ? top - 1 : top;
  const std::uint64_t max_fraction = f.specials == Specials::fn ? ones - 1 : ones;
  std::vector<std::uint64_t> out;
  for (bool negative : {false, true}) {
    auto add = [&](std::uint64_t field, std::uint64_t fraction) {
      out.push_back(SemiRandom::assemble(f, negative, field, fraction & ones));
    };
    add(0, 0);
    add(0, 1);                  // min subnormal
    add(0, ones);               // max subnormal
    add(1, 0);                  // min normal
    add(1, 1);
    if (f.bias >= 1 && static_cast<std::uint64_t>(f.bias) <= max_field) add(f.bias, 0);  // 1.0
    add(max_field, max_fraction);  // max finite
    add(max_field, max_fraction - 1);
    add(max_field, 0);
    if (max_field > 1) add(max_field - 1, ones);
    if (f.specials == Specials::ieee) {
      add(top, 0);                                  // inf
      add(top, std::uint64_t{1} << (f.man_bits - 1));  // quiet NaN
      add(top, 1);
    }
    if (f.specials == Specials::fn) add(top, ones);  // NaN
  }
  return out;
}

// Doubles on f's corners: extremes, halfway points and the overflow and
// underflow boundaries, with one double ulp either side.
std::vector<double> corner_doubles(const FloatFormat& f) {
  const long m = f.man_bits;
  const long emin = 1L - f.bias;
  const long top = static_cast<long>(SemiRandom::mask(f.exp_bits));
  const long emax = top - (f.specials == Specials::ieee ? 1 : 0) - f.bias;
  const double maxsig = static_cast<double>((std::uint64_t{2} << m) - (f.specials == Specials::fn ? 2 : 1));
  auto ldx = [](double v, long e) { return std::ldexp(v, static_cast<int>(std::clamp(e, -5000L, 5000L))); };
  std::vector<double> base = {
      0.0,
      ldx(1.0, emin - m),                 // min subnormal
      ldx(1.0, emin - m - 1),             // half of it: a tie with zero
      ldx(3.0, emin - m - 1),             // 1.5 min subnormal: a tie
      ldx(static_cast<double>((std::uint64_t{1} << m) - 1), emin - m),  // max subnormal
      ldx(static_cast<double>((std::uint64_t{2} << m) - 1), emin - m - 1),  // tie below min normal
      ldx(1.0, emin),                     // min normal
      ldx(1.0, emin - 1),
      1.0,
      1.0 + std::ldexp(1.0, static_cast<int>(-m - 1)),  // tie above one
      1.0 + std::ldexp(3.0, static_cast<int>(-m - 1)),  // tie above 1 + ulp
      ldx(maxsig, emax - m),              // max finite
      ldx(maxsig - 0.5, emax - m),        // tie below max
      ldx(maxsig + 0.5, emax - m),        // max + half ulp
      ldx(maxsig + 1, emax - m),          // max + ulp
      ldx(1.0, emax + 1),                 // next binade
      ldx(1.0, emax + 2),
      std::numeric_limits<double>::infinity(),
      std::numeric_limits<double>::quiet_NaN(),
      std::numeric_limits<double>::max(),
      std::numeric_limits<double>::denorm_min(),
  };
  std::vector<double> out;
  for (double x : base) {
    for (double s : {1.0, -1.0}) {
      out.push_back(s * x);
      if (std::isfinite(x) && x != 0) {
        out.push_back(s * std::nextafter(x, 0.0));
        out.push_back(s * std::nextafter(x, std::numeric_limits<double>::infinity()));
      }
    }
  }
  return out;
}

// --- the parameterized suite --------------------------------------------

// A sweep that never raised an event did not test the path behind it; it
// must also have seen exact results.
void expect_reached(const num::EventCounts& seen, std::initializer_list<Events> events) {
  for (Events e : events) {
    const std::uint64_t n = e == num::kOverflow    ? seen.overflow
                            : e == num::kUnderflow ? seen.underflow
                            : e == num::kSwamp     ? seen.swamp
                            : e == num::kInexact   ? seen.inexact
                                                   : seen.invalid;
    EXPECT_GT(n, 0u) << "no case raised " << describe_events(e) << " in " << seen.ops << " cases";
  }
  EXPECT_LT(seen.inexact, seen.ops) << "no exact case";
}

class OracleTest : public ::testing::TestWithParam<Case> {
 protected:
  SemiRandom rng(std::uint64_t salt) const { return SemiRandom(test_seed(), GetParam().stream * 8 + salt); }
  static std::uint64_t count() { return scaled_count(5000); }
};

TEST_P(OracleTest, Quantize) {
  const FloatFormat& f = GetParam().format;
  SemiRandom r = rng(1);
  Mismatches out;
  const std::uint64_t n = count();
  for (std::uint64_t i = 0; i < n; ++i) {
    double x = r.percent(90) ? r.value_near(f) : r.value_near(GetParam().partner);
    check_quantize(x, f, r.next(), out);
  }
  // binary64 holds every double: quantizing into it is exact and never overflows.
  if (f.man_bits < 52) expect_reached(out.seen, {num::kOverflow, num::kUnderflow, num::kInexact, num::kInvalid});
}

TEST_P(OracleTest, Multiply) {
  const FloatFormat& f = GetParam().format;
  const FloatFormat& g = GetParam().partner;
  SemiRandom r = rng(2);
  Mismatches out;
  const std::uint64_t n = count();
  for (std::uint64_t i = 0; i < n; ++i) {
    // Same format, into the partner, and the partner's operands into f.
    const FloatFormat& operand = i % 3 == 2 ? g : f;
    const FloatFormat& product = i % 3 == 1 ? g : f;
    std::uint64_t a = r.encoding(operand);
    std::uint64_t b = r.encoding(operand);
    check_multiply(a, b, operand, product, r.next(), out);
  }
  expect_reached(out.seen, {num::kOverflow, num::kUnderflow, num::kInexact});
}

TEST_P(OracleTest, Add) {
  const FloatFormat& f = GetParam().format;
  const FloatFormat& g = GetParam().partner;
  SemiRandom r = rng(3);
  Mismatches out;
  const std::uint64_t n = count();
  for (std::uint64_t i = 0; i < n; ++i) {
    const bool partner_acc = i % 5 == 4;
    const FloatFormat& acc_format = partner_acc ? g : f;
    const FloatFormat& addend_format = partner_acc ? f : (i % 2 == 0 ? f : g);
    std::uint64_t acc = r.encoding(acc_format);
    std::uint64_t addend = 0;
    const unsigned kind = static_cast<unsigned>(r.below(10));
    if (kind < 4) {
      addend = r.encoding(addend_format);
    } else if (kind < 9) {
      // Steer the addend's exponent to where swamping, ties and carries
      // happen: d binades below the accumulator.
      const long m = acc_format.man_bits;
      const long choices[] = {-2, -1, 0, 1, 2, m - 1, m, m + 1, m + 2, m + 3};
      long d = r.percent(80) ? choices[r.below(std::size(choices))]
                             : static_cast<long>(r.below(static_cast<std::uint64_t>(2 * m + 12))) - 6;
      addend = r.encoding_with_exponent(addend_format, exponent_of(acc, acc_format) - d, r.coin());
    } else if (&acc_format == &addend_format || acc_format == addend_format) {
      // Exact or near cancellation.
      const std::uint64_t sign = std::uint64_t{1} << (acc_format.width() - 1);
      addend = ((acc ^ sign) + r.below(5) - 2) & SemiRandom::mask(acc_format.width());
    } else {
      addend = r.encoding(addend_format);
    }
    check_add(acc, acc_format, addend, addend_format, r.next(), i % 4 == 3, out);
  }
  expect_reached(out.seen, {num::kOverflow, num::kUnderflow, num::kInexact, num::kSwamp});
}

TEST_P(OracleTest, Mac) {
  const FloatFormat& f = GetParam().format;
  const FloatFormat& g = GetParam().partner;
  SemiRandom r = rng(4);
  Mismatches out;
  const std::uint64_t n = count();
  for (std::uint64_t i = 0; i < n; ++i) {
    const FloatFormat& operand = i % 2 == 0 ? f : g;
    std::optional<FloatFormat> product;
    if (i % 3 == 1) product = f;
    if (i % 3 == 2) product = g;
    std::uint64_t a = r.encoding(operand);
    std::uint64_t b = r.encoding(operand);
    std::uint64_t acc = 0;
    if (r.percent(50)) {
      acc = r.encoding(f);
    } else {  // accumulator near the product's magnitude
      long e = exponent_of(a, operand) + exponent_of(b, operand) +
               static_cast<long>(r.below(static_cast<std::uint64_t>(f.man_bits + 6))) - 3;
      acc = r.encoding_with_exponent(f, e, r.coin());
    }
    check_mac(acc, f, a, b, operand, product, r.next(), out);
  }
  expect_reached(out.seen, {num::kOverflow, num::kUnderflow, num::kInexact, num::kSwamp});
}

// All pairs (and triples for mac) of corner encodings, and every corner
// double: +-0, subnormal and normal extremes, ties, the overflow boundary,
// inf - inf, 0 * inf, NaN.
TEST_P(OracleTest, Corners) {
  const FloatFormat& f = GetParam().format;
  const FloatFormat& g = GetParam().partner;
  Mismatches out;
  std::uint64_t key = 0x1234 + GetParam().stream;
  auto next_key = [&] { return key = num::mix64(key); };
  for (double x : corner_doubles(f)) check_quantize(x, f, next_key(), out);
  const auto corners = corner_encodings(f);
  const auto partner_corners = corner_encodings(g);
  for (std::uint64_t a : corners) {
    for (std::uint64_t b : corners) {
      check_multiply(a, b, f, f, next_key(), out);
      check_multiply(a, b, f, g, next_key(), out);
      check_add(a, f, b, f, next_key(), false, out);
      for (std::uint64_t acc : corners) {
        check_mac(acc, f, a, b, f, std::nullopt, next_key(), out);
        check_mac(acc, f, a, b, f, f, next_key(), out);
      }
    }
    for (std::uint64_t b : partner_corners) {
      check_add(a, f, b, g, next_key(), false, out);
      check_add(b, g, a, f, next_key(), false, out);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, OracleTest, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<Case>& param_info) { return param_info.param.name; });

// --- hand-checked values: the oracle and the implementation both ---------

struct Expected {
  std::uint64_t bits;
  Events events;
};

// Checks want against both the oracle and accsim (NaN: any NaN encoding).
void expect_both(const char* what, const Result& oracle, const Result& impl, const Expected& want,
                 const FloatFormat& f) {
  Result w{want.bits, want.events};
  EXPECT_TRUE(same_result(w, oracle, f))
      << "oracle, " << what << " in " << describe(f) << "\n  expected " << result_text(w, f)
      << "\n  oracle   " << result_text(oracle, f);
  EXPECT_TRUE(same_result(w, impl, f))
      << "accsim, " << what << " in " << describe(f) << "\n  expected " << result_text(w, f)
      << "\n  got      " << result_text(impl, f);
}
void quantize_is(double x, const FloatFormat& f, Expected want, std::uint64_t key = 0) {
  char buf[80];
  std::snprintf(buf, sizeof buf, "quantize(%a = %.17g)", x, x);
  expect_both(buf, oracle_quantize(x, f, key), num::quantize(x, f, key), want, f);
}
void add_is(std::uint64_t a, std::uint64_t b, const FloatFormat& f, Expected want) {
  std::string what = "add(" + hex(a) + ", " + hex(b) + ")";
  Result impl = num::add(a, f, b, f, 0);
  Result oracle = oracle_add(a, f, b, f, 0);
  oracle.events |= swamp(nonzero_number(oracle_decode(b, f)), oracle.bits, a);
  expect_both(what.c_str(), oracle, impl, want, f);
}
void multiply_is(std::uint64_t a, std::uint64_t b, const FloatFormat& f, Expected want) {
  std::string what = "multiply(" + hex(a) + ", " + hex(b) + ")";
  expect_both(what.c_str(), oracle_multiply(a, b, f, f, 0), num::multiply(a, b, f, f, 0), want, f);
}

constexpr Events kO = num::kOverflow;
constexpr Events kU = num::kUnderflow;
constexpr Events kS = num::kSwamp;
constexpr Events kX = num::kInexact;
constexpr Events kV = num::kInvalid;

const FloatFormat kFp32 = make(8, 23, 127, false, Specials::ieee, false);
const FloatFormat kFp16 = make(5, 10, 15, false, Specials::ieee, false);
const FloatFormat kE4m3 = make(4, 3, 7, false, Specials::fn);
const FloatFormat kPaper = with_mode(make(4, 7, 10, true), Rounding::rtz);

TEST(HandChecked, Fp32SpecialsAndZeros) {
  const FloatFormat rd = with_mode(kFp32, Rounding::rd);
  add_is(0x7f800000, 0xff800000, kFp32, {0x7fc00000, kV});  // inf - inf
  multiply_is(0x00000000, 0x7f800000, kFp32, {0x7fc00000, kV});  // 0 * inf
  multiply_is(0x80000000, 0x3f800000, kFp32, {0x80000000, 0});   // -0 * 1
  multiply_is(0x7fc00000, 0x3f800000, kFp32, {0x7fc00000, kV});  // NaN in
  add_is(0x3f800000, 0xbf800000, kFp32, {0x00000000, 0});        // 1 - 1 = +0
  add_is(0x3f800000, 0xbf800000, rd, {0x80000000, 0});           // ... -0 under rd
  add_is(0x00000000, 0x80000000, kFp32, {0x00000000, 0});
  add_is(0x00000000, 0x80000000, rd, {0x80000000, 0});
  add_is(0x80000000, 0x80000000, kFp32, {0x80000000, 0});
  add_is(0x7f800000, 0x3f800000, kFp32, {0x7f800000, kS});       // inf + 1: unchanged
  add_is(0x3f800000, 0x33000000, kFp32, {0x3f800000, kS | kX});  // 1 + 2^-25: swamped
  add_is(0x3f800000, 0x33800000, kFp32, {0x3f800000, kS | kX});  // 1 + 2^-24: tie to even
  add_is(0x3f800001, 0x33800000, kFp32, {0x3f800002, kX});       // tie to even, up
  add_is(0x7f7fffff, 0x73000000, kFp32, {0x7f800000, kO | kX});  // max + half ulp
  add_is(0x7f7fffff, 0x72800000, kFp32, {0x7f7fffff, kS | kX});  // max + quarter ulp
  add_is(0x00800000, 0x80000001, kFp32, {0x007fffff, kU});       // min normal - min sub
}

TEST(HandChecked, E4m3) {
  quantize_is(448, kE4m3, {0x7e, 0});
  quantize_is(464, kE4m3, {0x7e, kX});                 // tie: to even 448
  quantize_is(464.5, kE4m3, {0x7e, kO | kX});          // rounds to 480 > max
  quantize_is(-480, kE4m3, {0xfe, kO | kX});
  quantize_is(479, with_mode(kE4m3, Rounding::rtz), {0x7e, kX});
  quantize_is(480, with_mode(kE4m3, Rounding::rtz), {0x7e, kO | kX});
  quantize_is(std::nan(""), kE4m3, {0x7f, kV});
  quantize_is(-INFINITY, kE4m3, {0xfe, kO | kX});
  quantize_is(0x1p-9, kE4m3, {0x01, kU});              // min subnormal, exact
  quantize_is(0x1p-10, kE4m3, {0x00, kU | kX});        // tie with zero: even
  quantize_is(0x1.8p-10, kE4m3, {0x01, kU | kX});
  quantize_is(0x1p-10, with_mode(kE4m3, Rounding::rna), {0x01, kU | kX});
  quantize_is(-0x1p-11, with_mode(kE4m3, Rounding::rd), {0x81, kU | kX});
  quantize_is(0x1.ep-7, kE4m3, {0x08, kU | kX});       // 7.5 * 2^-9: up to min normal
  quantize_is(0x1p-6, kE4m3, {0x08, 0});
  quantize_is(0x1p-10, with_mode(kE4m3, Rounding::ru), {0x01, kU | kX});
  quantize_is(0x1p-10, make(4, 3, 7, true, Specials::fn), {0x00, kU | kX});  // ftz
  multiply_is(0x7f, 0x38, kE4m3, {0x7f, kV});          // NaN * 1
  multiply_is(0x7e, 0x7e, kE4m3, {0x7e, kO | kX});     // 448^2 saturates
}

TEST(HandChecked, PaperAccumulator) {  // M7E4,bias=10,round=rtz,ftz: 12 bits
  quantize_is(1.0, kPaper, {0x500, 0});
  quantize_is(1 + 0x1p-7, kPaper, {0x501, 0});
  quantize_is(1 + 0x1.fp-7, kPaper, {0x501, kX});
  quantize_is(-(1 + 0x1.fp-7), kPaper, {0xd01, kX});
  quantize_is(63.75, kPaper, {0x7ff, 0});
  quantize_is(100, kPaper, {0x7ff, kO | kX});
  quantize_is(-1e300, kPaper, {0xfff, kO | kX});
  quantize_is(0x1p-9, kPaper, {0x080, 0});             // smallest normal
  quantize_is(0x1.fffp-10, kPaper, {0x000, kU | kX});  // flushed
  quantize_is(-0x1p-10, kPaper, {0x800, kU | kX});
  quantize_is(std::nan(""), kPaper, {0x000, kV});      // no NaN: +0, invalid
  quantize_is(INFINITY, kPaper, {0x7ff, kO | kX});
}

TEST(HandChecked, Fp16Overflow) {
  quantize_is(65504, kFp16, {0x7bff, 0});
  quantize_is(65519.99, kFp16, {0x7bff, kX});
  quantize_is(65520, kFp16, {0x7c00, kO | kX});        // tie rounds to 2^16
  quantize_is(65520, with_mode(kFp16, Rounding::rtz), {0x7bff, kX});
  quantize_is(65536, with_mode(kFp16, Rounding::rtz), {0x7bff, kO | kX});
  quantize_is(65505, with_mode(kFp16, Rounding::ru), {0x7c00, kO | kX});
  quantize_is(-65505, with_mode(kFp16, Rounding::ru), {0xfbff, kX});  // rounds to -max
  quantize_is(-70000, with_mode(kFp16, Rounding::ru), {0xfbff, kO | kX});
  quantize_is(-70000, with_mode(kFp16, Rounding::rd), {0xfc00, kO | kX});
  quantize_is(70000, with_mode(kFp16, Rounding::rd), {0x7bff, kO | kX});
  quantize_is(1e6, make(5, 10, 15, false, Specials::ieee, true), {0x7bff, kO | kX});  // sat
  quantize_is(INFINITY, make(5, 10, 15, false, Specials::ieee, true), {0x7c00, 0});
  quantize_is(0x1p-25, kFp16, {0x0000, kU | kX});
  quantize_is(0x1.000002p-25, kFp16, {0x0001, kU | kX});
  quantize_is(0x1p-24, kFp16, {0x0001, kU});
  quantize_is(-0x1p-26, with_mode(kFp16, Rounding::rd), {0x8001, kU | kX});
  quantize_is(-0x1p-26, with_mode(kFp16, Rounding::ru), {0x8000, kU | kX});
}

TEST(HandChecked, StochasticRounding) {
  FloatFormat f = with_mode(make(4, 3, 7), Rounding::sr, 99);  // M3E4
  int ups = 0;
  for (std::uint64_t key = 0; key < 64; ++key) {
    const bool up = std::uint64_t{1} << 31 > num::sr_draw(99, key);  // frac = 1/2
    ups += up;
    quantize_is(1.0625, f, {up ? 0x39u : 0x38u, kX}, key);
    quantize_is(-1.0625, f, {up ? 0xb9u : 0xb8u, kX}, key);
    quantize_is(1.0, f, {0x38, 0}, key);  // exact values never move
    const bool up_quarter = std::uint64_t{1} << 30 > num::sr_draw(99, key);
    quantize_is(1.03125, f, {up_quarter ? 0x39u : 0x38u, kX}, key);
  }
  EXPECT_GT(ups, 16);
  EXPECT_LT(ups, 48);
  // On the threshold: frac * 2^32 == r stays, a hair above it moves.
  for (std::uint64_t key = 100; key < 132; ++key) {
    const double r = num::sr_draw(99, key);
    const double frac = std::ldexp(r, -32);  // of an ulp of 2^-3
    quantize_is(1 + frac / 8, f, {0x38, frac == 0 ? Events{0} : kX}, key);
    quantize_is(1 + (frac + 0x1p-40) / 8, f, {0x39, kX}, key);
    quantize_is(-(1 + (frac + 0x1p-40) / 8), f, {0xb9, kX}, key);
    // Wider than 32 discarded bits: only bits far below decide.
    quantize_is(1 + (frac + 0x1p-45) / 8, f, {0x39, kX}, key);
  }
}

// The oracle checked on its own against the machine's IEEE arithmetic, so
// that agreement elsewhere means something.
TEST(OracleSelfCheck, MatchesNativeFloat) {
  SemiRandom r(test_seed(), 0xf10a7);
  const std::uint64_t n = scaled_count(30000);
  for (std::uint64_t i = 0; i < n; ++i) {
    auto a_bits = static_cast<std::uint32_t>(r.encoding(kFp32));
    auto b_bits = static_cast<std::uint32_t>(r.encoding(kFp32));
    float a;
    float b;
    std::memcpy(&a, &a_bits, 4);
    std::memcpy(&b, &b_bits, 4);
    float sum = a + b;
    float product = a * b;
    std::uint32_t sum_bits;
    std::uint32_t product_bits;
    std::memcpy(&sum_bits, &sum, 4);
    std::memcpy(&product_bits, &product, 4);
    Result s = oracle_add(a_bits, kFp32, b_bits, kFp32, 0);
    Result p = oracle_multiply(a_bits, b_bits, kFp32, kFp32, 0);
    ASSERT_TRUE(s.bits == sum_bits || (std::isnan(sum) && oracle_is_nan(s.bits, kFp32)))
        << hex(a_bits) << " + " << hex(b_bits) << " oracle " << hex(s.bits) << " native " << hex(sum_bits);
    ASSERT_TRUE(p.bits == product_bits || (std::isnan(product) && oracle_is_nan(p.bits, kFp32)))
        << hex(a_bits) << " * " << hex(b_bits) << " oracle " << hex(p.bits) << " native " << hex(product_bits);
    double x = r.value_near(kFp32);
    float q = static_cast<float>(x);
    std::uint32_t q_bits;
    std::memcpy(&q_bits, &q, 4);
    Result qo = oracle_quantize(x, kFp32, 0);
    ASSERT_TRUE(qo.bits == q_bits || (std::isnan(q) && oracle_is_nan(qo.bits, kFp32)))
        << "quantize " << x << " oracle " << hex(qo.bits) << " native " << hex(q_bits);
  }
}

}  // namespace
}  // namespace accsim::test
