// An independent oracle for accsim's arithmetic, written from
// models/numerics/README.md with MPFR only: it forms every exact result with
// enough precision that MPFR never rounds, then rounds it into a FloatFormat
// by the README's rules and encodes the bits itself. It shares no code with
// the implementation under test; the one accsim function it calls is
// sr_draw, which *defines* the stochastic-rounding draw.
#pragma once

#include <mpfr.h>

#include <cstdint>
#include <optional>
#include <string>

#include "models/numerics/arith.hpp"  // types only: FloatFormat, Result, Events

namespace accsim::test {

// An exactly known value: NaN, +-inf, +-0 or a non-zero real held exactly in
// an mpfr_t whose precision was chosen so that it never rounded.
class OracleValue {
 public:
  enum class Kind : std::uint8_t { zero, finite, inf, nan };

  OracleValue();  // +0
  OracleValue(const OracleValue& other);
  OracleValue& operator=(const OracleValue& other);
  ~OracleValue();

  static OracleValue zero(bool negative);
  static OracleValue inf(bool negative);
  static OracleValue nan();
  // (-1)^negative * sig * 2^exp, exactly.
  static OracleValue finite(bool negative, std::uint64_t sig, long exp);

  [[nodiscard]] Kind kind() const { return kind_; }
  [[nodiscard]] bool negative() const { return negative_; }
  [[nodiscard]] bool is_zero() const { return kind_ == Kind::zero; }
  [[nodiscard]] bool is_nan() const { return kind_ == Kind::nan; }
  [[nodiscard]] bool is_inf() const { return kind_ == Kind::inf; }
  // The signed value; only meaningful for finite values.
  [[nodiscard]] mpfr_srcptr mp() const { return value_; }
  [[nodiscard]] std::string to_string() const;  // "-0x1.8p+3", "inf", "nan"

  // Takes ownership of an exactly computed non-zero value.
  static OracleValue adopt_finite(mpfr_t v);

 private:
  Kind kind_ = Kind::zero;
  bool negative_ = false;
  mpfr_t value_;
};

// Value of an encoding, decoded from the README's definition.
[[nodiscard]] OracleValue oracle_decode(std::uint64_t bits, const num::FloatFormat& f);
[[nodiscard]] OracleValue oracle_from_double(double x);
[[nodiscard]] bool oracle_is_nan(std::uint64_t bits, const num::FloatFormat& f);

// Exact product and sum with the README's special-value and zero-sign rules.
// The sign of an exactly zero sum depends on the destination's rounding mode.
[[nodiscard]] OracleValue oracle_product(const OracleValue& a, const OracleValue& b);
[[nodiscard]] OracleValue oracle_sum(const OracleValue& a, const OracleValue& b,
                                     num::Rounding destination_rounding);

// Rounds x once into f, with the events the README prescribes (no swamp:
// that one depends on the operation and is checked by the tests).
[[nodiscard]] num::Result oracle_round(const OracleValue& x, const num::FloatFormat& f,
                                       std::uint64_t sr_key);

// The operations of arith.hpp, restated on the oracle (swamp not included).
[[nodiscard]] num::Result oracle_quantize(double x, const num::FloatFormat& f,
                                          std::uint64_t sr_key);
[[nodiscard]] num::Result oracle_multiply(std::uint64_t a_bits, std::uint64_t b_bits,
                                          const num::FloatFormat& operand,
                                          const num::FloatFormat& product, std::uint64_t sr_key);
[[nodiscard]] num::Result oracle_add(std::uint64_t acc_bits, const num::FloatFormat& acc,
                                     std::uint64_t addend_bits,
                                     const num::FloatFormat& addend_format, std::uint64_t sr_key);
struct OracleMac {
  std::uint64_t bits = 0;
  num::Events product_events = 0;
  num::Events sum_events = 0;
  bool addend_nonzero = false;  // the addend the accumulator saw is finite non-zero or inf (for swamp)
};
// Q_acc(acc + Q_prod(a*b)); fused when product is empty. The product is
// rounded with product_key(sr_key), the sum with sr_key.
[[nodiscard]] OracleMac oracle_mac(std::uint64_t acc_bits, const num::FloatFormat& acc,
                                   std::uint64_t a_bits, std::uint64_t b_bits,
                                   const num::FloatFormat& operand,
                                   const std::optional<num::FloatFormat>& product,
                                   std::uint64_t sr_key);

// Human-readable descriptions for failure messages, independent of
// accsim's to_string.
[[nodiscard]] std::string describe(const num::FloatFormat& f);
[[nodiscard]] std::string describe_bits(std::uint64_t bits, const num::FloatFormat& f);
[[nodiscard]] std::string describe_events(num::Events e);

// Result comparison: events equal, and bits equal or both NaN.
[[nodiscard]] bool same_result(const num::Result& expected, const num::Result& got,
                               const num::FloatFormat& f);

}  // namespace accsim::test
