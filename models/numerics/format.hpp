// Number formats: runtime descriptors for floating-point and integer formats,
// and the format strings that name them everywhere (CLI, sweeps, reports).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>

namespace accsim::num {

// How a result that falls between two representable values is resolved.
enum class Rounding : std::uint8_t {
  rne,  // nearest, ties to even
  rna,  // nearest, ties away from zero
  rtz,  // toward zero (truncate the magnitude): the paper's choice
  rd,   // toward -infinity
  ru,   // toward +infinity
  sr,   // stochastic: away from zero with probability equal to the discarded
        // fraction of an ulp, decided by a counter-based generator (see sr.hpp)
};

// Which encodings are reserved for non-finite values.
enum class Specials : std::uint8_t {
  none,  // every encoding is a finite number (the paper's accumulators)
  ieee,  // top exponent field reserved: mantissa 0 is inf, otherwise NaN
  fn,    // OCP E4M3 style: only S.1..1.1..1 is NaN, no infinities
};

// A binary floating-point format: sign, exp_bits exponent bits, man_bits
// fraction bits. Value of a normal encoding: (-1)^s * 1.f * 2^(e - bias).
struct FloatFormat {
  int exp_bits = 8;
  int man_bits = 23;
  int bias = 127;
  bool subnormals = true;  // false: flush-to-zero (before rounding)
  Specials specials = Specials::none;
  // Only meaningful with ieee specials: clamp overflow to the largest finite
  // value instead of following IEEE 754. Formats without infinities always
  // saturate.
  bool saturate = true;
  Rounding rounding = Rounding::rne;
  std::uint64_t sr_seed = 0;  // seed of the stochastic-rounding generator

  // Derived quantities (exponents are unbiased powers of two).
  [[nodiscard]] constexpr int width() const { return 1 + exp_bits + man_bits; }
  [[nodiscard]] constexpr int emin() const { return 1 - bias; }  // smallest normal exponent
  [[nodiscard]] constexpr int emax() const {                      // largest finite exponent
    return ((1 << exp_bits) - (specials == Specials::ieee ? 2 : 1)) - bias;
  }
  // Largest finite significand (with the hidden bit) in the top binade.
  [[nodiscard]] constexpr std::uint64_t max_significand() const {
    std::uint64_t all_ones = (std::uint64_t{2} << man_bits) - 1;
    return specials == Specials::fn ? all_ones - 1 : all_ones;
  }
  [[nodiscard]] constexpr bool has_inf() const { return specials == Specials::ieee; }
  [[nodiscard]] constexpr bool has_nan() const { return specials != Specials::none; }
  // Overflow returns infinity (IEEE semantics) rather than the largest finite.
  [[nodiscard]] constexpr bool overflow_to_inf() const { return has_inf() && !saturate; }

  friend bool operator==(const FloatFormat&, const FloatFormat&) = default;
};

// A two's-complement integer format; the accumulator either wraps around or
// saturates on overflow. Quantizing a real value into it always rounds to
// nearest-even and saturates.
struct IntFormat {
  int bits = 32;  // 2..32
  bool saturate = false;
  friend bool operator==(const IntFormat&, const IntFormat&) = default;
};

using Format = std::variant<FloatFormat, IntFormat>;

// Error in a format string; what() names the string and the bad part,
// e.g. "M60E4: mantissa bits must be 0..52".
class FormatError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Throws FormatError when the descriptor is not a usable format.
void validate(const FloatFormat& f);
void validate(const IntFormat& f);

// Parses "fp32", "bf16", "e4m3", "M7E4,bias=10,round=rtz,ftz", "int8,sat", ...
[[nodiscard]] Format parse_format(std::string_view text);
[[nodiscard]] FloatFormat parse_float_format(std::string_view text);

// Canonical spelling; parse_format(to_string(f)) == f for every valid f.
[[nodiscard]] std::string to_string(const FloatFormat& f);
[[nodiscard]] std::string to_string(const IntFormat& f);
[[nodiscard]] std::string to_string(const Format& f);
[[nodiscard]] std::string_view to_string(Rounding r);

[[nodiscard]] int width(const Format& f);

// The named formats.
namespace formats {
FloatFormat fp32();
FloatFormat fp16();
FloatFormat bf16();
FloatFormat e5m2();
FloatFormat e4m3();
FloatFormat e3m4();
// sign + exp_bits + man_bits, bias 2^(E-1)-1, subnormals, no specials,
// saturating, rne: what "MxEy" names.
FloatFormat mxey(int man_bits, int exp_bits);
}  // namespace formats

}  // namespace accsim::num
