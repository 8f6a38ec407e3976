// The arithmetic core. Every operation forms its exact result as an Exact
// value (sign, binary exponent, wide integer significand) and hands it to
// round_pack, the one routine that knows rounding modes, flush-to-zero,
// subnormals, overflow and the events they raise.
//
// Raw encodings are std::uint64_t named *_bits; their meaning is given by the
// Format passed beside them.
#pragma once

#include <cstdint>
#include <optional>

#include "models/numerics/events.hpp"
#include "models/numerics/format.hpp"

namespace accsim::num {

using u128 = unsigned __int128;

// An exactly known real value: (-1)^negative * sig * 2^exp, or a special.
// Significands of decoded values have at most 53 bits and exact products at
// most 106, which leaves add() room to align without losing cancelled bits.
struct Exact {
  enum class Kind : std::uint8_t { zero, finite, inf, nan };
  Kind kind = Kind::zero;
  bool negative = false;
  int exp = 0;
  u128 sig = 0;  // non-zero iff kind == finite

  [[nodiscard]] bool is_zero() const { return kind == Kind::zero; }
  [[nodiscard]] bool is_nan() const { return kind == Kind::nan; }
  [[nodiscard]] bool is_inf() const { return kind == Kind::inf; }
};

// {bits, events}: what every rounding operation returns.
struct Result {
  std::uint64_t bits = 0;
  Events events = 0;
  friend bool operator==(const Result&, const Result&) = default;
};

// --- encoding helpers (raw bit patterns) ---------------------------------
[[nodiscard]] constexpr std::uint64_t sign_mask(const FloatFormat& f) {
  return std::uint64_t{1} << (f.exp_bits + f.man_bits);
}
[[nodiscard]] constexpr std::uint64_t encoding_mask(int width) {
  return width >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << width) - 1;
}
[[nodiscard]] constexpr bool sign_of(std::uint64_t bits, const FloatFormat& f) {
  return (bits & sign_mask(f)) != 0;
}
[[nodiscard]] constexpr std::uint64_t exponent_field(std::uint64_t bits, const FloatFormat& f) {
  return (bits >> f.man_bits) & ((std::uint64_t{1} << f.exp_bits) - 1);
}
[[nodiscard]] constexpr std::uint64_t fraction_field(std::uint64_t bits, const FloatFormat& f) {
  return bits & ((std::uint64_t{1} << f.man_bits) - 1);
}
[[nodiscard]] constexpr std::uint64_t pack(bool negative, std::uint64_t exponent_field,
                                           std::uint64_t fraction, const FloatFormat& f) {
  return (negative ? sign_mask(f) : 0) | (exponent_field << f.man_bits) | fraction;
}
// Canonical encodings of specials and extremes.
[[nodiscard]] std::uint64_t nan_bits(const FloatFormat& f);  // requires f.has_nan()
[[nodiscard]] std::uint64_t inf_bits(const FloatFormat& f, bool negative);
[[nodiscard]] std::uint64_t max_finite_bits(const FloatFormat& f, bool negative);
[[nodiscard]] bool is_nan_bits(std::uint64_t bits, const FloatFormat& f);
[[nodiscard]] bool is_inf_bits(std::uint64_t bits, const FloatFormat& f);

// --- exact values -----------------------------------------------------------
[[nodiscard]] Exact decode(std::uint64_t bits, const FloatFormat& f);
[[nodiscard]] Exact decode(std::uint64_t bits, const IntFormat& f);
[[nodiscard]] Exact decode(std::uint64_t bits, const Format& f);
[[nodiscard]] Exact exact_from_double(double x);
// Nearest double (round to nearest even); exact whenever the value is a
// double, which holds for every format with exp_bits <= 11 and a bias that
// keeps its range inside double's.
[[nodiscard]] double to_double(const Exact& x);
[[nodiscard]] double to_double(std::uint64_t bits, const Format& f);

[[nodiscard]] Exact exact_product(const Exact& a, const Exact& b);
// Exact sum, except that bits far below the larger operand's range collapse
// into *sticky; they can never reach the rounding position of a format with
// at most 53 significand bits.
[[nodiscard]] Exact exact_sum(const Exact& a, const Exact& b, bool* sticky);

// --- the one rounding routine ---------------------------------------------
// Rounds x (plus, if sticky, a positive amount below one unit of x.sig's
// last place) into f. sr_key selects the stochastic-rounding draw; it is
// ignored by the other modes.
[[nodiscard]] Result round_pack(const FloatFormat& f, const Exact& x, bool sticky = false,
                                std::uint64_t sr_key = 0);
[[nodiscard]] Result round_pack(const IntFormat& f, const Exact& x, bool sticky = false);
[[nodiscard]] Result round_pack(const Format& f, const Exact& x, bool sticky = false,
                                std::uint64_t sr_key = 0);

// --- operations -------------------------------------------------------------
// double -> format, rounded once with the format's mode (integer formats:
// nearest-even, saturating).
[[nodiscard]] Result quantize(double x, const Format& f, std::uint64_t sr_key = 0);
// The same for an exact value, e.g. x * scale without an intermediate rounding.
[[nodiscard]] Result quantize(const Exact& x, const Format& f, std::uint64_t sr_key = 0);

// Product of two encodings, rounded once into `product`.
[[nodiscard]] Result multiply(std::uint64_t a_bits, std::uint64_t b_bits, const Format& operand,
                              const Format& product, std::uint64_t sr_key = 0);

// acc + addend (exact) rounded once into the accumulator format; raises
// kSwamp when the addend is non-zero and the accumulator does not change.
[[nodiscard]] Result accumulate(std::uint64_t acc_bits, const Format& acc, const Exact& addend,
                                std::uint64_t sr_key = 0);
// Both operands given as encodings, possibly in different formats.
[[nodiscard]] Result add(std::uint64_t acc_bits, const Format& acc, std::uint64_t addend_bits,
                         const Format& addend_format, std::uint64_t sr_key = 0);

// Multiply-accumulate, the paper's Q_acc(acc + Q_prod(a*b)): the product is
// exact (fused) when product is nullopt, otherwise rounded into it first.
struct MacResult {
  std::uint64_t bits = 0;    // new accumulator
  Events product_events = 0;  // from rounding the product (0 when fused)
  Events sum_events = 0;      // from rounding the sum
};
[[nodiscard]] MacResult mac(std::uint64_t acc_bits, const Format& acc, std::uint64_t a_bits,
                            std::uint64_t b_bits, const Format& operand,
                            const std::optional<Format>& product, std::uint64_t sr_key = 0);

}  // namespace accsim::num
