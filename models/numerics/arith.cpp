#include "models/numerics/arith.hpp"

#include <bit>
#include <cassert>
#include <cmath>

#include "models/numerics/sr.hpp"

namespace accsim::num {
namespace {

constexpr u128 kOne = 1;

int msb_index(u128 x) {
  assert(x != 0);
  const auto hi = static_cast<std::uint64_t>(x >> 64);
  const auto lo = static_cast<std::uint64_t>(x);
  return hi != 0 ? 127 - std::countl_zero(hi) : 63 - std::countl_zero(lo);
}

// Bits [0, n) of x; n may be anything from 0 up.
u128 low_bits(u128 x, int n) {
  if (n <= 0) return 0;
  if (n >= 128) return x;
  return x & ((kOne << n) - 1);
}
u128 shift_right(u128 x, int n) { return n >= 128 ? 0 : x >> n; }
bool bit_at(u128 x, int i) { return i >= 0 && i < 128 && ((x >> i) & 1) != 0; }

Exact zero(bool negative) { return Exact{Exact::Kind::zero, negative, 0, 0}; }
Exact special(Exact::Kind kind, bool negative = false) { return Exact{kind, negative, 0, 0}; }

std::uint64_t zero_bits(const FloatFormat& f, bool negative) { return pack(negative, 0, 0, f); }

// What overflow returns: infinity, or the largest finite value when the
// format has no infinity, saturates, or the rounding direction points back
// toward zero (IEEE 754 7.4).
std::uint64_t overflow_bits(const FloatFormat& f, bool negative) {
  if (!f.overflow_to_inf()) return max_finite_bits(f, negative);
  switch (f.rounding) {
    case Rounding::rtz: return max_finite_bits(f, negative);
    case Rounding::ru: return negative ? max_finite_bits(f, true) : inf_bits(f, false);
    case Rounding::rd: return negative ? inf_bits(f, true) : max_finite_bits(f, false);
    default: return inf_bits(f, negative);
  }
}

// Whether to add one unit in the last kept place. `rem` holds the `shift`
// discarded bits; `sticky` says a non-zero amount lies below them.
bool round_increment(Rounding mode, bool negative, u128 kept, u128 rem, int shift, bool sticky,
                     std::uint64_t sr_seed, std::uint64_t sr_key) {
  const bool round_bit = bit_at(rem, shift - 1);
  const bool below_round = low_bits(rem, shift - 1) != 0 || sticky;
  const bool inexact = rem != 0 || sticky;
  switch (mode) {
    case Rounding::rne: return round_bit && (below_round || (kept & 1) != 0);
    case Rounding::rna: return round_bit;
    case Rounding::rtz: return false;
    case Rounding::ru: return inexact && !negative;
    case Rounding::rd: return inexact && negative;
    case Rounding::sr: {
      if (!inexact) return false;
      // t = floor(frac * 2^32) from the top 32 discarded bits; the rest says
      // whether frac * 2^32 exceeds t.
      u128 t = 0;
      bool rest = sticky;
      if (shift >= 32) {
        t = shift_right(rem, shift - 32);
        rest = rest || low_bits(rem, shift - 32) != 0;
      } else {
        t = rem << (32 - shift);
      }
      const u128 r = sr_draw(sr_seed, sr_key);
      return t > r || (t == r && rest);
    }
  }
  return false;
}

}  // namespace

// --- encodings ----------------------------------------------------------------

std::uint64_t nan_bits(const FloatFormat& f) {
  const std::uint64_t top = (std::uint64_t{1} << f.exp_bits) - 1;
  const std::uint64_t all_fraction = (std::uint64_t{1} << f.man_bits) - 1;
  if (f.specials == Specials::fn) return pack(false, top, all_fraction, f);
  // Quiet NaN: the top fraction bit set (or the only one).
  const std::uint64_t quiet = f.man_bits > 0 ? std::uint64_t{1} << (f.man_bits - 1) : 0;
  return pack(false, top, quiet == 0 ? 1 : quiet, f);
}

std::uint64_t inf_bits(const FloatFormat& f, bool negative) {
  return pack(negative, (std::uint64_t{1} << f.exp_bits) - 1, 0, f);
}

std::uint64_t max_finite_bits(const FloatFormat& f, bool negative) {
  return pack(negative, static_cast<std::uint64_t>(f.emax() + f.bias),
              f.max_significand() - (std::uint64_t{1} << f.man_bits), f);
}

bool is_nan_bits(std::uint64_t bits, const FloatFormat& f) {
  const std::uint64_t top = (std::uint64_t{1} << f.exp_bits) - 1;
  const std::uint64_t all_fraction = (std::uint64_t{1} << f.man_bits) - 1;
  switch (f.specials) {
    case Specials::none: return false;
    case Specials::ieee: return exponent_field(bits, f) == top && fraction_field(bits, f) != 0;
    case Specials::fn: return exponent_field(bits, f) == top && fraction_field(bits, f) == all_fraction;
  }
  return false;
}

bool is_inf_bits(std::uint64_t bits, const FloatFormat& f) {
  return f.specials == Specials::ieee &&
         exponent_field(bits, f) == (std::uint64_t{1} << f.exp_bits) - 1 &&
         fraction_field(bits, f) == 0;
}

// --- exact values -------------------------------------------------------------

Exact decode(std::uint64_t bits, const FloatFormat& f) {
  const bool negative = sign_of(bits, f);
  if (is_nan_bits(bits, f)) return special(Exact::Kind::nan);
  if (is_inf_bits(bits, f)) return special(Exact::Kind::inf, negative);
  const std::uint64_t e = exponent_field(bits, f);
  const std::uint64_t fraction = fraction_field(bits, f);
  if (e == 0) {
    if (fraction == 0) return zero(negative);
    return Exact{Exact::Kind::finite, negative, f.emin() - f.man_bits, fraction};
  }
  return Exact{Exact::Kind::finite, negative, static_cast<int>(e) - f.bias - f.man_bits,
               fraction | (std::uint64_t{1} << f.man_bits)};
}

Exact decode(std::uint64_t bits, const IntFormat& f) {
  // Sign-extend the low f.bits bits.
  const int unused = 64 - f.bits;
  const auto v = static_cast<std::int64_t>(bits << unused) >> unused;
  if (v == 0) return zero(false);
  const bool negative = v < 0;
  const std::uint64_t magnitude = negative ? 0 - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
  return Exact{Exact::Kind::finite, negative, 0, magnitude};
}

Exact decode(std::uint64_t bits, const Format& f) {
  return std::visit([bits](const auto& x) { return decode(bits, x); }, f);
}

Exact exact_from_double(double x) {
  const auto u = std::bit_cast<std::uint64_t>(x);
  const bool negative = (u >> 63) != 0;
  const std::uint64_t e = (u >> 52) & 0x7ff;
  const std::uint64_t fraction = u & ((std::uint64_t{1} << 52) - 1);
  if (e == 0x7ff) return fraction ? special(Exact::Kind::nan) : special(Exact::Kind::inf, negative);
  if (e == 0) {
    if (fraction == 0) return zero(negative);
    return Exact{Exact::Kind::finite, negative, -1074, fraction};
  }
  return Exact{Exact::Kind::finite, negative, static_cast<int>(e) - 1075,
               fraction | (std::uint64_t{1} << 52)};
}

double to_double(const Exact& x) {
  switch (x.kind) {
    case Exact::Kind::zero: return x.negative ? -0.0 : 0.0;
    case Exact::Kind::inf: return x.negative ? -HUGE_VAL : HUGE_VAL;
    case Exact::Kind::nan: return std::nan("");
    case Exact::Kind::finite: break;
  }
  const double magnitude = std::ldexp(static_cast<double>(x.sig), x.exp);
  return x.negative ? -magnitude : magnitude;
}

double to_double(std::uint64_t bits, const Format& f) { return to_double(decode(bits, f)); }

Exact exact_product(const Exact& a, const Exact& b) {
  const bool negative = a.negative != b.negative;
  if (a.is_nan() || b.is_nan()) return special(Exact::Kind::nan);
  if ((a.is_inf() && b.is_zero()) || (a.is_zero() && b.is_inf())) return special(Exact::Kind::nan);
  if (a.is_inf() || b.is_inf()) return special(Exact::Kind::inf, negative);
  if (a.is_zero() || b.is_zero()) return zero(negative);
  assert(msb_index(a.sig) + msb_index(b.sig) < 126);
  return Exact{Exact::Kind::finite, negative, a.exp + b.exp, a.sig * b.sig};
}

Exact exact_sum(const Exact& a, const Exact& b, bool* sticky) {
  *sticky = false;
  if (a.is_nan() || b.is_nan()) return special(Exact::Kind::nan);
  if (a.is_inf() && b.is_inf() && a.negative != b.negative) return special(Exact::Kind::nan);
  if (a.is_inf()) return a;
  if (b.is_inf()) return b;
  if (a.is_zero() && b.is_zero()) return zero(a.negative && b.negative);
  if (a.is_zero()) return b;
  if (b.is_zero()) return a;

  // Place both leading ones at bit 125 (two bits of headroom for the carry).
  // Operands have at most 106 significant bits, so the bottom 19 bits are
  // zero and an alignment shift of one loses nothing: the only case where
  // massive cancellation can occur.
  constexpr int kTop = 125;
  auto normalized = [](Exact v) {
    const int up = kTop - msb_index(v.sig);
    v.sig <<= up;
    v.exp -= up;
    return v;
  };
  Exact big = normalized(a);
  Exact small = normalized(b);
  if (small.exp > big.exp || (small.exp == big.exp && small.sig > big.sig)) std::swap(big, small);

  const long long gap = static_cast<long long>(big.exp) - small.exp;
  const int d = gap > 127 ? 128 : static_cast<int>(gap);
  const bool lost = low_bits(small.sig, d) != 0;
  const u128 aligned = shift_right(small.sig, d);

  Exact sum{Exact::Kind::finite, big.negative, big.exp, 0};
  if (big.negative == small.negative) {
    // True sum lies in (big + aligned, big + aligned + 1) units when bits were lost.
    sum.sig = big.sig + aligned;
    *sticky = lost;
  } else {
    // True difference lies in (big - aligned - 1, big - aligned): take the
    // lower end and mark that a positive remainder lies below it.
    sum.sig = big.sig - aligned - (lost ? 1 : 0);
    *sticky = lost;
  }
  if (sum.sig == 0) return zero(false);  // exact cancellation (only when nothing was lost)
  return sum;
}

// --- rounding -------------------------------------------------------------------

Result round_pack(const FloatFormat& f, const Exact& x, bool sticky, std::uint64_t sr_key) {
  switch (x.kind) {
    case Exact::Kind::nan:
      return {f.has_nan() ? nan_bits(f) : zero_bits(f, false), kInvalid};
    case Exact::Kind::inf:
      if (f.has_inf()) return {inf_bits(f, x.negative), 0};
      return {max_finite_bits(f, x.negative), static_cast<Events>(kOverflow | kInexact)};
    case Exact::Kind::zero:
      assert(!sticky);
      return {zero_bits(f, x.negative), 0};
    case Exact::Kind::finite: break;
  }

  const int M = f.man_bits;
  const long long top_exp = static_cast<long long>(x.exp) + msb_index(x.sig);  // floor(log2 |x|)
  Events events = 0;
  if (top_exp < f.emin()) {
    events |= kUnderflow;
    // Flush before rounding: hardware without subnormal support zeroes the
    // result instead of shifting the significand into the subnormal grid.
    if (!f.subnormals) return {zero_bits(f, x.negative), static_cast<Events>(events | kInexact)};
  }

  // Exponent of the last kept place: the binade's grid, or the subnormal grid.
  const long long lsb_exp = std::max<long long>(top_exp, f.emin()) - M;
  const long long shift_ll = lsb_exp - x.exp;
  u128 kept = 0;
  u128 rem = 0;
  int shift = 0;
  if (shift_ll <= 0) {
    kept = x.sig << static_cast<int>(-shift_ll);  // at most M+1 bits: top_exp - lsb_exp <= M
  } else {
    shift = shift_ll > 200 ? 200 : static_cast<int>(shift_ll);
    kept = shift_right(x.sig, shift);
    rem = low_bits(x.sig, shift);
  }
  if (rem != 0 || sticky) events |= kInexact;
  if (round_increment(f.rounding, x.negative, kept, rem, shift, sticky, f.sr_seed, sr_key)) ++kept;

  if (kept == 0) return {zero_bits(f, x.negative), events};

  long long q = lsb_exp;
  const u128 hidden = kOne << M;
  if (kept == (hidden << 1)) {  // carried into the next binade
    kept >>= 1;
    ++q;
  }
  if (kept < hidden) {  // subnormal: q is the subnormal grid
    return {pack(x.negative, 0, static_cast<std::uint64_t>(kept), f), events};
  }
  const long long e = q + M;
  if (e > f.emax() || (e == f.emax() && kept > f.max_significand())) {
    return {overflow_bits(f, x.negative), static_cast<Events>(events | kOverflow | kInexact)};
  }
  return {pack(x.negative, static_cast<std::uint64_t>(e + f.bias), static_cast<std::uint64_t>(kept - hidden), f),
          events};
}

namespace {

// Rounds to an integer (nearest-even), then wraps or saturates into f.
Result round_int(const IntFormat& f, const Exact& x, bool sticky, bool saturate) {
  const std::int64_t max = (std::int64_t{1} << (f.bits - 1)) - 1;
  const std::int64_t min = -max - 1;
  const std::uint64_t mask = encoding_mask(f.bits);
  auto encode = [&](std::int64_t v) { return static_cast<std::uint64_t>(v) & mask; };
  switch (x.kind) {
    case Exact::Kind::nan: return {0, kInvalid};
    case Exact::Kind::inf:
      return {encode(x.negative ? min : max), static_cast<Events>(kOverflow | kInexact)};
    case Exact::Kind::zero: return {0, 0};
    case Exact::Kind::finite: break;
  }
  Events events = 0;
  u128 magnitude = 0;
  bool too_big = false;
  if (x.exp >= 0) {
    too_big = x.exp >= 64 || msb_index(x.sig) + x.exp >= 64;
    if (x.exp < 128) magnitude = x.sig << x.exp;  // only the low bits matter when wrapping
    if (sticky) events |= kInexact;  // cannot happen for integers built here; kept for completeness
  } else {
    const int shift = x.exp < -200 ? 200 : -x.exp;
    magnitude = shift_right(x.sig, shift);
    const u128 rem = low_bits(x.sig, shift);
    if (rem != 0 || sticky) events |= kInexact;
    if (round_increment(Rounding::rne, x.negative, magnitude, rem, shift, sticky, 0, 0)) ++magnitude;
  }
  const u128 limit = x.negative ? static_cast<u128>(max) + 1 : static_cast<u128>(max);
  if (too_big || magnitude > limit) {
    events |= kOverflow;
    if (saturate) return {encode(x.negative ? min : max), static_cast<Events>(events | kInexact)};
  }
  // Two's complement wrap: only the low f.bits bits survive.
  std::uint64_t low = static_cast<std::uint64_t>(magnitude);
  if (x.negative) low = 0 - low;
  return {low & mask, events};
}

}  // namespace

Result round_pack(const IntFormat& f, const Exact& x, bool sticky) {
  return round_int(f, x, sticky, f.saturate);
}

Result round_pack(const Format& f, const Exact& x, bool sticky, std::uint64_t sr_key) {
  if (const auto* ff = std::get_if<FloatFormat>(&f)) return round_pack(*ff, x, sticky, sr_key);
  return round_pack(std::get<IntFormat>(f), x, sticky);
}

// --- operations ------------------------------------------------------------------

Result quantize(const Exact& x, const Format& f, std::uint64_t sr_key) {
  if (const auto* ff = std::get_if<FloatFormat>(&f)) return round_pack(*ff, x, false, sr_key);
  return round_int(std::get<IntFormat>(f), x, false, /*saturate=*/true);
}

Result quantize(double x, const Format& f, std::uint64_t sr_key) {
  return quantize(exact_from_double(x), f, sr_key);
}

Result multiply(std::uint64_t a_bits, std::uint64_t b_bits, const Format& operand, const Format& product,
                std::uint64_t sr_key) {
  return round_pack(product, exact_product(decode(a_bits, operand), decode(b_bits, operand)), false, sr_key);
}

Result accumulate(std::uint64_t acc_bits, const Format& acc, const Exact& addend, std::uint64_t sr_key) {
  const Exact current = decode(acc_bits, acc);
  bool sticky = false;
  Exact sum = exact_sum(current, addend, &sticky);
  // IEEE 754 6.3: a zero sum is +0 except under rounding toward -inf, where
  // it is -0 unless both operands were +0.
  if (sum.is_zero()) {
    const auto* ff = std::get_if<FloatFormat>(&acc);
    const bool both_positive_zeros =
        current.is_zero() && !current.negative && addend.is_zero() && !addend.negative;
    if (ff != nullptr && ff->rounding == Rounding::rd && !both_positive_zeros) sum.negative = true;
  }
  Result r = round_pack(acc, sum, sticky, sr_key);
  const bool addend_nonzero = addend.kind == Exact::Kind::finite || addend.kind == Exact::Kind::inf;
  if (addend_nonzero && r.bits == acc_bits) r.events |= kSwamp;
  return r;
}

Result add(std::uint64_t acc_bits, const Format& acc, std::uint64_t addend_bits, const Format& addend_format,
           std::uint64_t sr_key) {
  return accumulate(acc_bits, acc, decode(addend_bits, addend_format), sr_key);
}

MacResult mac(std::uint64_t acc_bits, const Format& acc, std::uint64_t a_bits, std::uint64_t b_bits,
              const Format& operand, const std::optional<Format>& product, std::uint64_t sr_key) {
  MacResult out;
  Exact addend = exact_product(decode(a_bits, operand), decode(b_bits, operand));
  if (product) {
    const Result p = round_pack(*product, addend, false, product_key(sr_key));
    out.product_events = p.events;
    addend = decode(p.bits, *product);
  }
  const Result s = accumulate(acc_bits, acc, addend, sr_key);
  out.bits = s.bits;
  out.sum_events = s.events;
  return out;
}

}  // namespace accsim::num
