// The double-domain fast path for hot loops (GEMM tiles, PE arrays).
//
// When an operation's exact result provably fits in a double (the operands'
// value grids span at most 53 bits), the double operation is exact, and
// rounding that double once into the target format gives exactly what
// round_pack gives: there is no double rounding because the first step does
// not round. The rounding itself is a few integer operations on the double's
// bit pattern, written over GCC vector lanes so one code path serves a scalar
// (W = 1) and SIMD lanes (W = 4), and compiled per ISA by the caller.
//
// Sums that a double does not hold exactly (wide accumulators such as fp32
// and bf16) take one more step: TwoSum gives the rounded sum s and its exact
// error e, and s is moved to the odd neighbour on e's side when e != 0. That
// round-to-odd in 53 bits rounds correctly into any format of at most 51
// significand bits in every mode (Boldo and Melquiond, IEEE TC 57(4), 2008),
// and it keeps the order of x against every point of a grid 2 bits coarser,
// which stochastic rounding's comparison with its draw needs. Integer
// accumulators round to an integer with the FPU and wrap or saturate with
// integer lane operations.
//
// Tests check every path here bit for bit against round_pack.
#pragma once

#include <bit>
#include <cstdint>
#include <optional>
#include <utility>
#include <variant>

#include "models/numerics/arith.hpp"
#include "models/numerics/format.hpp"
#include "models/numerics/sr.hpp"

namespace accsim::num::fast {

// The grid of a set of values: every non-zero value is a multiple of 2^lsb
// and has magnitude below 2^(msb + 1).
struct Span {
  int msb = 0;
  int lsb = 0;
};
[[nodiscard]] constexpr Span span_of(const FloatFormat& f) { return {f.emax(), f.emin() - f.man_bits}; }
// Integers of `bits` bits: magnitudes up to 2^(bits-1), on the grid of 1.
[[nodiscard]] constexpr Span span_of(const IntFormat& f) { return {f.bits - 1, 0}; }
[[nodiscard]] constexpr Span span_of(const Format& f) {
  if (const auto* ff = std::get_if<FloatFormat>(&f)) return span_of(*ff);
  return span_of(std::get<IntFormat>(f));
}
[[nodiscard]] constexpr Span product_span(Span a, Span b) { return {a.msb + b.msb + 1, a.lsb + b.lsb}; }
[[nodiscard]] constexpr Span sum_span(Span a, Span b) {
  return {(a.msb > b.msb ? a.msb : b.msb) + 1, a.lsb < b.lsb ? a.lsb : b.lsb};
}
// Every value of the span is a normal double, held exactly.
[[nodiscard]] constexpr bool fits_double(Span s) {
  return s.msb - s.lsb + 1 <= 53 && s.lsb >= -1022 && s.msb <= 1022;
}

// Constants for rounding exact doubles into one FloatFormat.
struct Rounder {
  Rounding mode = Rounding::rne;
  bool ftz = false;
  int drop = 0;                    // fraction bits of a double below the format's last place
  std::uint64_t drop_mask = 0;     // (1 << drop) - 1
  std::uint64_t half = 0;          // 1 << (drop - 1)
  double grid_scale = 0;           // 2^drop
  std::uint64_t min_normal_bits = 0;  // double bits of 2^emin
  std::uint64_t max_bits = 0;         // double bits of the largest finite magnitude, which is
                                      // also what overflow returns (see make())
  // For round_common and special_lanes: 2^63 - min_normal_bits, and
  // (max_bits - min_normal_bits) - 2^63 as a signed value.
  std::uint64_t range_offset = 0;
  std::int64_t range_limit = 0;

  // Set by make_lanes only (make's rounders leave them at their defaults):
  // The sums this rounder takes may be inexact in double: the caller forms
  // them with sum_to_odd and rounds them with round_lanes<..., Odd = true>.
  bool wide = false;
  // Overflow gives an infinity, which the lanes do not carry: they saturate
  // instead, and the caller must redo whatever overflowed in this format.
  bool to_inf = false;
  // Stochastic rounding: the discarded bits (a & drop_mask) << sr_left
  // against the draw << sr_right (sr_left = max(32 - drop, 0), sr_right =
  // max(drop - 32, 0)); the draw is sr_draw's, with mix64(seed + golden)
  // premixed.
  int sr_right = 0, sr_left = 0;
  std::uint64_t sr_mixed_seed = 0;
  // Stochastic rounding of wide sums into a format with fewer than 33 bits
  // below its last place in a double (fp32: 29), where round-to-odd cannot
  // keep the draw's 32 bits: the sum is carried as TwoSum's pair (s, e) and
  // rounded by round_sr_pair_lanes. sr_unit_offset and sr_draw_offset are
  // M << 52 and (M + 32) << 52: subtracted from the bit pattern of 2^E they
  // give the format's ulp 2^(E - M) and 2^-32 of it.
  bool sr_pair = false;
  std::uint64_t sr_unit_offset = 0, sr_draw_offset = 0;
  // An integer accumulator (integer() true): its limits, and whether it
  // saturates rather than wraps.
  int int_bits = 0;
  bool int_saturate = false;

  [[nodiscard]] bool integer() const { return int_bits != 0; }

  // A rounder for results that lie on `input`'s grid, or nullopt when the
  // double trick would not be exact: stochastic rounding, no fraction bits,
  // a range outside double's normals, infinities that can arise from finite
  // operands, or inputs too wide to hold exactly.
  [[nodiscard]] static std::optional<Rounder> make(const FloatFormat& f, Span input);

  // What make accepts, and beyond it whatever the lanes can still round
  // exactly: sums too wide for a double (TwoSum and round-to-odd, for
  // formats of at most 50 fraction bits), stochastic rounding, formats whose
  // overflow gives an infinity (see to_inf), and integer formats (sums exact
  // in double and below 2^51). Nullopt for the rest.
  [[nodiscard]] static std::optional<Rounder> make_lanes(const Format& f, Span input);

  // A rounder for any finite double that is a normal double or zero (the
  // operands of quantize, which lie on no narrower grid), or nullopt. Nearest-
  // even is exact for all of them (the FPU rounds once); the other modes are
  // exact for all of them in flush-to-zero formats and, with subnormals, for
  // every input except 0 < |x| < 2^emin, which the caller must route elsewhere
  // (see exact_for).
  [[nodiscard]] static std::optional<Rounder> make_any(const FloatFormat& f);
  // Whether rounding x with a make_any rounder is exact (see make_any).
  [[nodiscard]] bool exact_for(double x) const {
    const double a = x < 0 ? -x : x;
    // Not inf or NaN, and far enough below double's top that no rounding
    // step (2^drop times |x| in nearest-even, a carry in the others)
    // overflows it.
    if (!(a < 0x1p960)) return false;
    if (a != 0 && a < 0x1p-1022) return false;  // a subnormal double: the lanes read its exponent field
    if (mode == Rounding::rne || ftz || a == 0) return true;
    return a >= std::bit_cast<double>(min_normal_bits);  // the subnormal shift might round
  }
};

// The encoding of a finite double on a float format's grid (zero, subnormal
// or normal: what the rounders return) in that format; the inverse of
// num::to_double on those values. Normal values only re-bias the exponent
// field; a subnormal x becomes the fraction field of x + 2^emin, which is
// exact.
class Encoder {
 public:
  Encoder() = default;
  explicit Encoder(const FloatFormat& f)
      : min_normal_bits_(static_cast<std::uint64_t>(f.emin() + 1023) << 52),
        normal_offset_(static_cast<std::uint64_t>(1023 - f.bias) << 52),
        sign_(std::uint64_t{1} << (f.exp_bits + f.man_bits)),
        drop_(52 - f.man_bits) {}

  [[nodiscard]] std::uint64_t operator()(double x) const {
    const auto u = std::bit_cast<std::uint64_t>(x);
    const std::uint64_t sign = (u >> 63) != 0 ? sign_ : 0;
    const std::uint64_t a = u & ~(std::uint64_t{1} << 63);
    std::uint64_t magnitude;
    if (a >= min_normal_bits_) [[likely]] {
      magnitude = (a - normal_offset_) >> drop_;
    } else if (a == 0) {
      magnitude = 0;
    } else {
      const double shifted = std::bit_cast<double>(a) + std::bit_cast<double>(min_normal_bits_);
      magnitude = (std::bit_cast<std::uint64_t>(shifted) - min_normal_bits_) >> drop_;
    }
    return sign | magnitude;
  }

 private:
  std::uint64_t min_normal_bits_ = 0, normal_offset_ = 0, sign_ = 0;
  int drop_ = 0;
};

// Per-lane SIMD types. Masks are all-ones (true) or zero in each 64-bit lane.
template <int W>
struct Lanes;
template <>
struct Lanes<1> {
  typedef double D __attribute__((vector_size(8)));
  typedef std::uint64_t U __attribute__((vector_size(8)));
  typedef std::int64_t I __attribute__((vector_size(8)));
};
template <>
struct Lanes<4> {
  typedef double D __attribute__((vector_size(32)));
  typedef std::uint64_t U __attribute__((vector_size(32)));
  typedef std::int64_t I __attribute__((vector_size(32)));
};

template <>
struct Lanes<8> {
  typedef double D __attribute__((vector_size(64)));
  typedef std::uint64_t U __attribute__((vector_size(64)));
  typedef std::int64_t I __attribute__((vector_size(64)));
};

#define ACCSIM_INLINE inline __attribute__((always_inline))

template <int W>
struct Rounded {
  typename Lanes<W>::D value;
  // Event masks; `exact` is the complement of inexact (counting exact lanes
  // saves an inversion in the hot loop).
  typename Lanes<W>::I overflow, underflow, exact;
};

// Rounds the magnitude bits `a` (an exact double's |x|) on a grid whose last
// place is bit `drop`. Adding to the bit pattern carries into the exponent
// exactly as the value would carry into the next binade.
template <Rounding Mode, int W>
ACCSIM_INLINE typename Lanes<W>::U round_magnitude(const Rounder& r, typename Lanes<W>::U a,
                                                   typename Lanes<W>::I negative,
                                                   typename Lanes<W>::U draw) {
  using U = typename Lanes<W>::U;
  using I = typename Lanes<W>::I;
  const U keep = ~U{} ^ r.drop_mask;
  // (Nearest-even is done by the FPU in round_lanes.)
  if constexpr (Mode == Rounding::sr) {
    // round_pack's test, away from zero iff t > draw, or t == draw with bits
    // below t (t = floor(frac * 2^32), frac the discarded fraction), is
    // frac * 2^32 > draw: on the discarded bits rem (frac = rem / 2^drop),
    // rem * 2^(32 - drop) > draw, which both shifts keep within 64 bits.
    (void)negative;
    const U rem = a & r.drop_mask;
    const I up = (I)(rem << r.sr_left) > (I)(draw << r.sr_right);
    return (a & keep) + (U(up) & (r.drop_mask + 1));
  } else if constexpr (Mode == Rounding::rtz) {
    return a & keep;
  } else if constexpr (Mode == Rounding::rna) {
    return (a + r.half) & keep;
  } else {
    static_assert(Mode == Rounding::ru || Mode == Rounding::rd);
    const U away = Mode == Rounding::ru ? U(~negative) : U(negative);
    return (a + (away & r.drop_mask)) & keep;
  }
}

// Whether the target flushes to zero: read from the rounder at run time, or
// fixed at compile time by hot loops that instantiate both cases (which takes
// a branch out of every step).
enum class Ftz { runtime, off, on };

// x + y rounded to odd in 53 bits: TwoSum's s = fl(x + y) and its exact
// error e; where e != 0 and s is even, s moves one unit toward e (its
// magnitude's bit pattern up when e has s's sign, down otherwise; a carry
// or borrow crosses binades as the value does). Branch-free as
// (s - d) | b, with b = 1 where e != 0 and d = 1 where e != 0 has the sign
// opposite to s: an odd s comes back unchanged either way ((s - 1) | 1 = s),
// an even one moves down by d or up by b. s is never zero where e != 0,
// and never reaches the top of double's range in the formats make_lanes
// takes.
//
// two_sum and to_odd are its two halves, for stochastic rounding of wide
// sums, which needs the pair itself (round_sr_pair_lanes).
template <int W>
ACCSIM_INLINE typename Lanes<W>::D two_sum(typename Lanes<W>::D x, typename Lanes<W>::D y,
                                           typename Lanes<W>::D* error) {
  using D = typename Lanes<W>::D;
  const D s = x + y;
  const D yy = s - x;
  *error = (x - (s - yy)) + (y - yy);
  return s;
}
template <int W>
ACCSIM_INLINE typename Lanes<W>::D to_odd(typename Lanes<W>::D s, typename Lanes<W>::D e) {
  using D = typename Lanes<W>::D;
  using U = typename Lanes<W>::U;
  const U su = (U)(s);
  const U inexact = (U)(e != 0.0);  // all ones where e != 0 (e may be -0)
  const U down = ((su ^ (U)(e)) >> 63) & inexact;
  return (D)((su - down) | (inexact >> 63));
}
template <int W>
ACCSIM_INLINE typename Lanes<W>::D sum_to_odd(typename Lanes<W>::D x, typename Lanes<W>::D y) {
  typename Lanes<W>::D e;
  const typename Lanes<W>::D s = two_sum<W>(x, y, &e);
  return to_odd<W>(s, e);
}

// round_pack for an exact finite double x, lane-wise. With Odd, x may
// instead be the round-to-odd (sum_to_odd) of the exact value, for a
// rounder made with wide set. `draw` is the stochastic-rounding draw of each
// lane (Mode == sr only).
template <Rounding Mode, int W, Ftz F = Ftz::runtime, bool Odd = false>
ACCSIM_INLINE Rounded<W> round_lanes(const Rounder& r, typename Lanes<W>::D x, typename Lanes<W>::U draw) {
  using D = typename Lanes<W>::D;
  using U = typename Lanes<W>::U;
  using I = typename Lanes<W>::I;
  constexpr std::uint64_t kSign = std::uint64_t{1} << 63;
  const U u = (U)(x);
  const U sign = u & kSign;
  const U a = u ^ sign;
  const I negative = (I)(u) < 0;
  const bool ftz = F == Ftz::runtime ? r.ftz : F == Ftz::on;

  // 0 < |x| < 2^emin, as one signed compare: a - 1 with its sign bit flipped
  // orders like an unsigned a - 1, which wraps zero to the top.
  const I tiny = (I)(a + 0x7fffffffffffffffULL) < static_cast<std::int64_t>((r.min_normal_bits - 1) ^ kSign);
  U m;
  if constexpr (Mode == Rounding::rne) {
    // The FPU itself rounds to nearest-even: adding C = 2^(max(e, emin) + 52 - M)
    // moves the format's last place (normal or subnormal grid) onto the
    // double's last place, and subtracting C again is exact.
    D c = (D)(a & 0x7ff0000000000000ULL);
    if (!ftz) {
      const D min_normal = D{} + std::bit_cast<double>(r.min_normal_bits);
      c = c > min_normal ? c : min_normal;
    }
    c *= r.grid_scale;
    D rounded = ((D)(a) + c) - c;
    m = (U)(rounded);
    if (ftz) m = tiny ? U{} : m;  // flush to zero, before rounding
  } else if (!ftz) {
    // Below 2^emin the grid is fixed at 2^(emin - M): shift |x| into the
    // binade of 2^emin by adding 2^emin (exact), round there, and subtract
    // it again. Other lanes (and zeros, which round to themselves) add and
    // subtract +0, which changes nothing.
    // A round-to-odd x is not on so coarse a grid: the sum is itself
    // rounded to odd, on the grid of 2^emin's binade, which the format's
    // subnormal grid coarsens by 52 - M >= 2 bits (33 for stochastic
    // rounding: make_lanes checks).
    const U offset_bits = U(tiny) & r.min_normal_bits;
    const D offset = (D)(offset_bits);
    D y;
    if constexpr (Odd) {
      y = sum_to_odd<W>((D)(a), offset);
    } else {
      y = (D)(a) + offset;
    }
    const U yr = round_magnitude<Mode, W>(r, (U)(y), negative, draw);
    D rounded = (D)(yr) - offset;
    m = (U)(rounded);
  } else {
    m = round_magnitude<Mode, W>(r, a, negative, draw);
    m = tiny ? U{} : m;  // flush to zero, before rounding
  }
  const I overflow = (I)(m) > static_cast<std::int64_t>(r.max_bits);
  m = overflow ? (U{} + r.max_bits) : m;
  const U bits = m | sign;

  Rounded<W> out;
  out.value = (D)(bits);
  out.overflow = overflow;
  out.underflow = tiny;
  out.exact = (I)(m) == (I)(a);
  return out;
}

// acc + addend, both exact doubles whose sum is exact (with Odd: any sum,
// formed by sum_to_odd), rounded into the accumulator; also the swamp mask
// (non-zero addend, accumulator unchanged).
template <Rounding Mode, int W, Ftz F = Ftz::runtime, bool Odd = false>
ACCSIM_INLINE Rounded<W> accumulate_lanes(const Rounder& r, typename Lanes<W>::D acc,
                                          typename Lanes<W>::D addend,
                                          typename Lanes<W>::I* swamp, typename Lanes<W>::U draw) {
  using D = typename Lanes<W>::D;
  using U = typename Lanes<W>::U;
  using I = typename Lanes<W>::I;
  D sum;
  if constexpr (Odd) {
    sum = sum_to_odd<W>(acc, addend);  // zero iff the exact sum is, with the FPU's sign
  } else {
    sum = acc + addend;
  }
  if constexpr (Mode == Rounding::rd) {
    // IEEE 754: an exact zero sum is -0 under rd unless both operands are +0;
    // the FPU (in rne) produced +0 instead.
    const I zero = sum == 0.0;
    const I both_plus_zero = ((I)(acc) == 0) & ((I)(addend) == 0);
    const U fix = U(zero & ~both_plus_zero) & (std::uint64_t{1} << 63);
    U s = (U)(sum) | fix;
    sum = (D)(s);
  }
  Rounded<W> out = round_lanes<Mode, W, F, Odd>(r, sum, draw);
  *swamp = (addend != 0.0) & ((I)(out.value) == (I)(acc));
  return out;
}

// The same without a draw, for every mode but stochastic rounding.
template <Rounding Mode, int W, Ftz F = Ftz::runtime, bool Odd = false>
ACCSIM_INLINE Rounded<W> round_lanes(const Rounder& r, typename Lanes<W>::D x) {
  static_assert(Mode != Rounding::sr);
  return round_lanes<Mode, W, F, Odd>(r, x, typename Lanes<W>::U{});
}
template <Rounding Mode, int W, Ftz F = Ftz::runtime, bool Odd = false>
ACCSIM_INLINE Rounded<W> accumulate_lanes(const Rounder& r, typename Lanes<W>::D acc, typename Lanes<W>::D addend,
                                          typename Lanes<W>::I* swamp) {
  static_assert(Mode != Rounding::sr);
  return accumulate_lanes<Mode, W, F, Odd>(r, acc, addend, swamp, typename Lanes<W>::U{});
}

// --- Stochastic rounding of wide sums into fine formats (Rounder::sr_pair) ---
//
// round_pack's test, frac * 2^32 > draw (frac the discarded fraction of an
// ulp), needs the exact value 32 bits below the format's last place, which
// in fp32 is 3 bits below a double's: round-to-odd cannot keep it. The
// exact x = s + e (s = fl(x), e exact, |e| <= ulp(s) / 2, or e = 0) decides
// it in doubles, exactly:
// - kept = trunc(|x|) on the format's grid, ftz and saturation included, is
//   round_lanes' toward-zero rounding of to_odd(s, e) (round-to-odd keeps
//   x's order against every point of the format's grid);
// - q, the format's ulp at |x| (its subnormal grid below 2^emin), and
//   G = draw * q * 2^-32, exact (a 32-bit integer times a power of two);
// - frac * 2^32 > draw iff |x| - kept > G, where |x| - kept = A + e' with
//   A = |s| - kept (exact: kept <= |s| <= kept + q, Sterbenz) and e' = e
//   signed as |x|. A is a multiple of ulp(s) (kept is on a grid at least as
//   coarse), so A = 0 or |A| >= 2 |e'|, and Fast2Sum gives h + l = A + e'
//   exactly; h = fl(A + e') is monotone in A + e', so A + e' > G iff h > G,
//   or h == G and l > 0.
// Rounding up adds q to kept (exact: both on the grid of q); past the
// largest value it overflows, as in round_lanes. Flushed lanes (ftz, |x| <
// 2^emin) stay zero, as round_pack flushes before rounding.
template <int W, Ftz F = Ftz::runtime>
ACCSIM_INLINE Rounded<W> round_sr_pair_lanes(const Rounder& r, typename Lanes<W>::D s, typename Lanes<W>::D e,
                                             typename Lanes<W>::U draw) {
  using D = typename Lanes<W>::D;
  using U = typename Lanes<W>::U;
  using I = typename Lanes<W>::I;
  constexpr std::uint64_t kSign = std::uint64_t{1} << 63;
  constexpr std::uint64_t kExponent = 0x7ff0000000000000ULL;
  const D odd = to_odd<W>(s, e);
  Rounded<W> out = round_lanes<Rounding::rtz, W, F, true>(r, odd, U{});
  const U u = (U)(odd);
  const U sign = u & kSign;
  const U kept = (U)(out.value) & ~kSign;
  const D a = (D)(((U)(s) & ~kSign)) - (D)(kept);
  const D ep = (D)((U)(e) ^ sign);
  const D h = a + ep;
  const D l = ep - (h - a);
  // 2^max(E, emin): |x|'s binade, or 2^emin's below it.
  U binade = u & kExponent;
  binade = (I)(binade) > static_cast<std::int64_t>(r.min_normal_bits) ? binade : U{} + r.min_normal_bits;
  const D g = ((D)(draw | 0x4330000000000000ULL) - 0x1p52) * (D)(binade - r.sr_draw_offset);
  I up = (h > g) | ((h == g) & (l > 0.0));
  up &= ~out.overflow;  // saturated already
  const bool ftz = F == Ftz::runtime ? r.ftz : F == Ftz::on;
  if (ftz) up &= ~out.underflow;
  U m = (U)((D)(kept) + (D)(U(up) & (binade - r.sr_unit_offset)));
  const I overflow = (I)(m) > static_cast<std::int64_t>(r.max_bits);
  m = overflow ? (U{} + r.max_bits) : m;
  out.value = (D)(m | sign);
  out.overflow |= overflow;
  return out;
}

// acc + addend (any doubles) rounded by round_sr_pair_lanes, with the swamp
// mask, as accumulate_lanes.
template <int W, Ftz F = Ftz::runtime>
ACCSIM_INLINE Rounded<W> accumulate_sr_pair_lanes(const Rounder& r, typename Lanes<W>::D acc,
                                                  typename Lanes<W>::D addend, typename Lanes<W>::I* swamp,
                                                  typename Lanes<W>::U draw) {
  using D = typename Lanes<W>::D;
  using I = typename Lanes<W>::I;
  D e;
  const D s = two_sum<W>(acc, addend, &e);
  Rounded<W> out = round_sr_pair_lanes<W, F>(r, s, e, draw);
  *swamp = (addend != 0.0) & ((I)(out.value) == (I)(acc));
  return out;
}

// --- Integer accumulators -----------------------------------------------------
//
// round_pack for an integer format, for an exact double x with |x| < 2^51:
// adding and subtracting K = 1.5 * 2^52 rounds x to an integer (nearest-
// even, the FPU's own rounding, on the grid of 1 in K's binade), and the
// bits of x + K less K's bits are that integer n in two's complement. It
// wraps as ((n + 2^(B-1)) mod 2^B) - 2^(B-1), or saturates. Integer formats
// have one zero, +0, which is what both give: (x + K) - K is +0 when zero.
inline constexpr double kIntegerShift = 0x1.8p52;

template <int W>
ACCSIM_INLINE Rounded<W> round_integer_lanes(const Rounder& r, typename Lanes<W>::D x) {
  using D = typename Lanes<W>::D;
  using U = typename Lanes<W>::U;
  using I = typename Lanes<W>::I;
  constexpr std::uint64_t kShiftBits = std::bit_cast<std::uint64_t>(kIntegerShift);
  const D shifted = x + kIntegerShift;
  const D rounded = shifted - kIntegerShift;
  const I n = (I)((U)(shifted) - kShiftBits);
  const std::int64_t half = std::int64_t{1} << (r.int_bits - 1);
  const I overflow = (n >= half) | (n < -half);
  Rounded<W> out;
  if (r.int_saturate) {
    const D hi = D{} + static_cast<double>(half - 1), lo = D{} - static_cast<double>(half);
    D v = rounded > hi ? hi : rounded;
    v = v < lo ? lo : v;
    out.value = v;
    out.exact = (rounded == x) & ~overflow;
  } else {
    const U mask = U{} + static_cast<std::uint64_t>(2 * half - 1);
    const I wrapped = (I)(((U)(n) + static_cast<std::uint64_t>(half)) & mask) - half;
    out.value = (D)((U)(wrapped) + kShiftBits) - kIntegerShift;
    out.exact = rounded == x;  // round_pack: a wrap alone is not inexact
  }
  out.overflow = overflow;
  out.underflow = I{};
  return out;
}

// acc + addend, exact in double, rounded into an integer accumulator.
template <int W>
ACCSIM_INLINE Rounded<W> accumulate_integer_lanes(const Rounder& r, typename Lanes<W>::D acc,
                                                  typename Lanes<W>::D addend, typename Lanes<W>::I* swamp) {
  using I = typename Lanes<W>::I;
  Rounded<W> out = round_integer_lanes<W>(r, acc + addend);
  *swamp = (addend != 0.0) & ((I)(out.value) == (I)(acc));
  return out;
}

// The stochastic-rounding draws for the lanes' keys: sr_draw(seed, key), with
// the seed premixed in the rounder.
template <int W>
ACCSIM_INLINE typename Lanes<W>::U mix64_lanes(typename Lanes<W>::U z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
template <int W>
ACCSIM_INLINE typename Lanes<W>::U sr_draw_lanes(const Rounder& r, typename Lanes<W>::U key) {
  return mix64_lanes<W>(r.sr_mixed_seed ^ key) >> 32;
}

// The same draw at the top of the word, (sr_draw << 32): mix64's last step
// z ^ (z >> 31) keeps its top 32 bits there, so no shift brings them down.
template <int W>
ACCSIM_INLINE typename Lanes<W>::U sr_draw_high_lanes(const Rounder& r, typename Lanes<W>::U key) {
  using U = typename Lanes<W>::U;
  U z = r.sr_mixed_seed ^ key;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return (z ^ (z >> 31)) & 0xffffffff00000000ULL;
}

// sr_draw_high_lanes for n vectors of keys, through pointers: callers built
// for an ISA (the 8-lane draws of the AVX-512 GEMM kernels) pass no vector
// by value to this template built without it, which clang rejects.
template <int W>
ACCSIM_INLINE void sr_draws_high(const Rounder& r, const typename Lanes<W>::U* keys, typename Lanes<W>::U* out,
                                 int n) {
  for (int i = 0; i < n; ++i) out[i] = sr_draw_high_lanes<W>(r, keys[i]);
}

// Stochastic rounding of an exact x's bits u, where x is zero or a normal
// of the format no larger than its largest value (as round_common), with
// draw_high = sr_draw_high_lanes: round_magnitude's test frac * 2^32 > draw
// as frac * 2^64 > draw * 2^32, both within 64 bits, frac * 2^64 being the
// discarded bits moved to the top of the word. The carry moves into the
// exponent as the value moves into the next binade, never past the largest
// value (which is on the grid); a zero has no discarded bits and stays.
template <int W>
ACCSIM_INLINE typename Lanes<W>::U round_sr_common(const Rounder& r, typename Lanes<W>::U u,
                                                   typename Lanes<W>::U draw_high) {
  using U = typename Lanes<W>::U;
  const U up = (U)((u << (64 - r.drop)) > draw_high);
  return (u & ~r.drop_mask) + (up & (r.drop_mask + 1));
}

// --- The common case, for hot loops that branch to round_lanes on the rest --
//
// Most roundings in a realistic GEMM neither overflow nor underflow. For
// nearest-even and toward-zero, a lane whose exact value x is zero or a
// normal of the format no larger than its largest finite value rounds to
// round_common's bits, with neither overflow nor underflow, exact iff those
// bits equal x's; special_lanes flags every other lane (tiny non-zero, too
// large), which the caller must round with round_lanes instead. Both take
// x's bits u and its magnitude bits a = u & ~sign.

// Lanes outside [2^emin, max] (zeros included): one unsigned range test,
// a - 2^emin > max - 2^emin, done signed after moving the range by 2^63.
template <int W>
ACCSIM_INLINE typename Lanes<W>::I outside_normal_range(const Rounder& r, typename Lanes<W>::U a) {
  using I = typename Lanes<W>::I;
  return (I)(a + r.range_offset) > r.range_limit;
}
// Lanes that round_common does not cover: 0 < |x| < 2^emin or |x| > max.
template <int W>
ACCSIM_INLINE typename Lanes<W>::I special_lanes(const Rounder& r, typename Lanes<W>::U a) {
  using I = typename Lanes<W>::I;
  return outside_normal_range<W>(r, a) & ~(I)(a == 0);
}

template <Rounding Mode, int W>
ACCSIM_INLINE typename Lanes<W>::U round_common(const Rounder& r, typename Lanes<W>::U u,
                                                typename Lanes<W>::U a) {
  using U = typename Lanes<W>::U;
  static_assert(Mode == Rounding::rtz || Mode == Rounding::rne);
  if constexpr (Mode == Rounding::rtz) {
    return u & ~r.drop_mask;  // truncating the magnitude keeps the sign
  } else {
    // Nearest-even on the bit pattern (x is zero, which stays itself, or
    // normal, so the grid's last place is bit `drop`): add half an ulp less one, plus
    // the kept last bit (ties go to even), and truncate. A carry out of the
    // fraction moves into the exponent exactly as the value moves into the
    // next binade, and none reaches the sign: x <= max, which is on the grid.
    // Integer lanes keep the dependency chain short (four one-cycle
    // operations, where adding and subtracting 2^(e + drop) in the FPU took
    // two three-cycle ones and three more to build and re-sign the constant).
    (void)a;
    const U lsb = (u >> r.drop) & 1;
    return (u + (r.half - 1) + lsb) & ~r.drop_mask;
  }
}

// Scalar entry points (W = 1) for callers outside hot loops and for tests.
struct ScalarResult {
  double value = 0;
  Events events = 0;
};
[[nodiscard]] ScalarResult round(const Rounder& r, double exact);
[[nodiscard]] ScalarResult accumulate(const Rounder& r, double acc, double addend);
// For any rounder of make_lanes: acc + addend (through sum_to_odd when the
// rounder is wide), rounded with the draw of sr_key in stochastic rounding.
[[nodiscard]] ScalarResult accumulate_any(const Rounder& r, double acc, double addend, std::uint64_t sr_key = 0);
// And x, exact, rounded alone (a product into its format).
[[nodiscard]] ScalarResult round_any(const Rounder& r, double exact, std::uint64_t sr_key = 0);

// Calls f.template operator()<Mode>() with the rounder's mode as a
// compile-time constant.
template <class F>
decltype(auto) dispatch_mode(Rounding mode, F&& f) {
  switch (mode) {
    case Rounding::rne: return f.template operator()<Rounding::rne>();
    case Rounding::rna: return f.template operator()<Rounding::rna>();
    case Rounding::rtz: return f.template operator()<Rounding::rtz>();
    case Rounding::rd: return f.template operator()<Rounding::rd>();
    case Rounding::ru: return f.template operator()<Rounding::ru>();
    case Rounding::sr: break;  // never: Rounder::make refuses sr
  }
  __builtin_unreachable();
}

// The same over every mode, stochastic rounding included.
template <class F>
decltype(auto) dispatch_any_mode(Rounding mode, F&& f) {
  if (mode == Rounding::sr) return f.template operator()<Rounding::sr>();
  return dispatch_mode(mode, std::forward<F>(f));
}

// Calls f.template operator()<F>() with Ftz::on or Ftz::off.
template <class F>
decltype(auto) dispatch_ftz(bool ftz, F&& f) {
  if (ftz) return f.template operator()<Ftz::on>();
  return f.template operator()<Ftz::off>();
}

}  // namespace accsim::num::fast
