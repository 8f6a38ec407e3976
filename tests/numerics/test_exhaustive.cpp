// Formats of 8 bits are small enough to test completely: every pair of
// e4m3, e5m2 and e3m4 encodings, multiplied and added, against the MPFR
// oracle, bits and events.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "models/numerics/arith.hpp"
#include "models/numerics/sr.hpp"
#include "tests/numerics/mpfr_oracle.hpp"

namespace accsim::test {
namespace {

using num::Events;
using num::FloatFormat;
using num::Result;
using num::Rounding;
using num::Specials;

FloatFormat make(int exp_bits, int man_bits, int bias, bool ftz, Specials specials, bool saturate,
                 Rounding rounding = Rounding::rne, std::uint64_t seed = 0) {
  FloatFormat f;
  f.exp_bits = exp_bits;
  f.man_bits = man_bits;
  f.bias = bias;
  f.subnormals = !ftz;
  f.specials = specials;
  f.saturate = saturate;
  f.rounding = rounding;
  f.sr_seed = rounding == Rounding::sr ? seed : 0;
  return f;
}

struct Named {
  std::string name;
  FloatFormat format;
};

constexpr Rounding kModes[] = {Rounding::rne, Rounding::rna, Rounding::rtz,
                               Rounding::rd,  Rounding::ru,  Rounding::sr};
constexpr const char* kModeNames[] = {"rne", "rna", "rtz", "rd", "ru", "sr"};

FloatFormat e4m3(Rounding r = Rounding::rne) { return make(4, 3, 7, false, Specials::fn, true, r, 0xe4); }
FloatFormat e5m2(Rounding r = Rounding::rne) { return make(5, 2, 15, false, Specials::ieee, false, r, 0xe5); }
FloatFormat e3m4(Rounding r = Rounding::rne) { return make(3, 4, 3, false, Specials::none, true, r, 0xe3); }
FloatFormat m3e4(Rounding r) { return make(4, 3, 7, false, Specials::none, true, r, 0x34); }

const Named kOperands[] = {{"e4m3", e4m3()}, {"e5m2", e5m2()}, {"e3m4", e3m4()}};

std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// Reports the first few mismatches of a sweep and the total.
class Mismatches {
 public:
  void report(const std::string& what) {
    if (++count_ <= 6) ADD_FAILURE() << what;
  }
  ~Mismatches() {
    if (count_ > 6) ADD_FAILURE() << count_ << " mismatches in total (first 6 shown)";
  }

 private:
  int count_ = 0;
};

std::string text(const Result& r, const FloatFormat& f) {
  return describe_bits(r.bits, f) + " events=" + describe_events(r.events);
}

std::uint64_t key_of(std::uint64_t a, std::uint64_t b) { return num::mix64(a << 8 | b); }

// --- multiply: every pair into a product format --------------------------

struct MultiplyCase {
  std::string name;
  FloatFormat operand;
  FloatFormat product;
  bool exact;  // the product format holds every product exactly
};

std::vector<MultiplyCase> multiply_cases() {
  std::vector<MultiplyCase> cases;
  const FloatFormat fp32 = make(8, 23, 127, false, Specials::ieee, false);
  const FloatFormat paper_product = make(4, 7, 12, true, Specials::none, true, Rounding::rtz);
  for (const Named& op : kOperands) {
    cases.push_back({op.name + "_into_fp32", op.format, fp32, true});
    cases.push_back({op.name + "_into_M7E4_bias12_rtz_ftz", op.format, paper_product, false});
    for (std::size_t m = 0; m < std::size(kModes); ++m) {
      FloatFormat self = op.format;
      self.rounding = kModes[m];
      self.sr_seed = kModes[m] == Rounding::sr ? 0x5e1f : 0;
      cases.push_back({op.name + "_into_itself_" + kModeNames[m], op.format, self, false});
    }
  }
  return cases;
}

class ExhaustiveMultiply : public ::testing::TestWithParam<MultiplyCase> {};

TEST_P(ExhaustiveMultiply, AllPairs) {
  const MultiplyCase& c = GetParam();
  Mismatches out;
  for (std::uint64_t a = 0; a < 256; ++a) {
    for (std::uint64_t b = 0; b < 256; ++b) {
      const std::uint64_t key = key_of(a, b);
      Result got = num::multiply(a, b, c.operand, c.product, key);
      Result want = oracle_multiply(a, b, c.operand, c.product, key);
      if (c.exact && (want.events & ~num::kInvalid) != 0) {
        out.report("oracle: product of " + hex(a) + " and " + hex(b) + " not exact in " + describe(c.product));
      }
      if (!same_result(want, got, c.product)) {
        out.report("multiply " + describe_bits(a, c.operand) + " * " + describe_bits(b, c.operand) +
                   " operand " + describe(c.operand) + " -> " + describe(c.product) +
                   " sr_key=" + hex(key) + "\n  expected " + text(want, c.product) +
                   "\n  got      " + text(got, c.product));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fp8, ExhaustiveMultiply, ::testing::ValuesIn(multiply_cases()),
                         [](const auto& param_info) { return param_info.param.name; });

// --- add: every (accumulator, addend) pair --------------------------------

struct AddCase {
  std::string name;
  FloatFormat acc;
  FloatFormat addend;
};

std::vector<AddCase> add_cases() {
  std::vector<AddCase> cases;
  for (std::size_t m = 0; m < std::size(kModes); ++m) {
    const Named accumulators[] = {{"M3E4", m3e4(kModes[m])}, {"e4m3", e4m3(kModes[m])}};
    for (const Named& acc : accumulators) {
      for (const Named& op : kOperands) {
        cases.push_back({acc.name + "_" + kModeNames[m] + "_plus_" + op.name, acc.format, op.format});
      }
    }
  }
  return cases;
}

class ExhaustiveAdd : public ::testing::TestWithParam<AddCase> {};

TEST_P(ExhaustiveAdd, AllPairs) {
  const AddCase& c = GetParam();
  Mismatches out;
  for (std::uint64_t acc = 0; acc < 256; ++acc) {
    for (std::uint64_t addend = 0; addend < 256; ++addend) {
      const std::uint64_t key = key_of(acc, addend);
      Result got = num::add(acc, c.acc, addend, c.addend, key);
      Result want = oracle_add(acc, c.acc, addend, c.addend, key);
      // Swamp: a non-zero addend (finite or inf; NaN is no number) left the
      // accumulator unchanged, bit for bit.
      // (When both results are NaN, judge by accsim's NaN encoding.)
      const OracleValue addend_value = oracle_decode(addend, c.addend);
      const std::uint64_t result_bits =
          oracle_is_nan(want.bits, c.acc) && oracle_is_nan(got.bits, c.acc) ? got.bits : want.bits;
      if (!addend_value.is_zero() && !addend_value.is_nan() && result_bits == acc) want.events |= num::kSwamp;
      if (!same_result(want, got, c.acc)) {
        out.report("add " + describe_bits(acc, c.acc) + " + " + describe_bits(addend, c.addend) +
                   " acc " + describe(c.acc) + " addend " + describe(c.addend) +
                   " sr_key=" + hex(key) + "\n  expected " + text(want, c.acc) +
                   "\n  got      " + text(got, c.acc));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fp8, ExhaustiveAdd, ::testing::ValuesIn(add_cases()),
                         [](const auto& param_info) { return param_info.param.name; });

// The paper's accumulator (12 bits) against every e4m3 addend: all 2^20
// pairs, under its own rtz and under rne.
class ExhaustivePaperAccumulator : public ::testing::TestWithParam<Rounding> {};

TEST_P(ExhaustivePaperAccumulator, PlusEveryE4m3) {
  const FloatFormat acc_format = make(4, 7, 10, true, Specials::none, true, GetParam());
  const FloatFormat addend_format = e4m3();
  Mismatches out;
  for (std::uint64_t acc = 0; acc < 4096; ++acc) {
    for (std::uint64_t addend = 0; addend < 256; ++addend) {
      Result got = num::add(acc, acc_format, addend, addend_format, 0);
      Result want = oracle_add(acc, acc_format, addend, addend_format, 0);
      const OracleValue addend_value = oracle_decode(addend, addend_format);
      if (!addend_value.is_zero() && !addend_value.is_nan() && want.bits == acc) want.events |= num::kSwamp;
      if (!same_result(want, got, acc_format)) {
        out.report("add " + describe_bits(acc, acc_format) + " + " + describe_bits(addend, addend_format) +
                   " acc " + describe(acc_format) + "\n  expected " + text(want, acc_format) +
                   "\n  got      " + text(got, acc_format));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Paper, ExhaustivePaperAccumulator, ::testing::Values(Rounding::rtz, Rounding::rne),
                         [](const auto& param_info) {
                           return std::string(param_info.param == Rounding::rtz ? "rtz" : "rne");
                         });

}  // namespace
}  // namespace accsim::test
