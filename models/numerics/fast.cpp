#include "models/numerics/fast.hpp"

#include <bit>
#include <cmath>

namespace accsim::num::fast {

namespace {

// Checks that hold for any input: the mode and the format's range.
bool format_ok(const FloatFormat& f) {
  if (f.rounding == Rounding::sr) return false;  // needs a draw per operation
  if (f.man_bits < 1 || f.man_bits > 51) return false;
  // Overflow must land on the largest finite value: an infinity would then
  // have to flow through the double domain, which the lanes do not model.
  if (f.overflow_to_inf() && f.rounding != Rounding::rtz) return false;
  // Nearest-even adds and subtracts 2^(e + 52 - M), which must be a finite
  // double (only formats with 11 exponent bits and a small bias come close).
  if (f.rounding == Rounding::rne && f.emax() + 52 - f.man_bits > 1023) return false;
  // Every value of the format, subnormals included, must be a normal double.
  return f.emin() - f.man_bits >= -1022 && f.emax() <= 1022;
}

Rounder build(const FloatFormat& f) {
  Rounder r;
  r.mode = f.rounding;
  r.ftz = !f.subnormals;
  r.drop = 52 - f.man_bits;
  r.drop_mask = (std::uint64_t{1} << r.drop) - 1;
  r.half = std::uint64_t{1} << (r.drop - 1);
  r.grid_scale = std::ldexp(1.0, r.drop);
  r.min_normal_bits = static_cast<std::uint64_t>(f.emin() + 1023) << 52;
  const std::uint64_t max_fraction = f.max_significand() - (std::uint64_t{1} << f.man_bits);
  r.max_bits = (static_cast<std::uint64_t>(f.emax() + 1023) << 52) | (max_fraction << r.drop);
  constexpr std::uint64_t kTop = std::uint64_t{1} << 63;
  r.range_offset = kTop - r.min_normal_bits;
  r.range_limit = static_cast<std::int64_t>((r.max_bits - r.min_normal_bits) ^ kTop);
  return r;
}

}  // namespace

std::optional<Rounder> Rounder::make(const FloatFormat& f, Span input) {
  if (!format_ok(f) || !fits_double(input)) return std::nullopt;
  // The subnormal trick adds 2^emin to |x| < 2^emin; that sum must be exact.
  if (f.subnormals && f.emin() - input.lsb > 52) return std::nullopt;
  return build(f);
}

std::optional<Rounder> Rounder::make_any(const FloatFormat& f) {
  if (!format_ok(f)) return std::nullopt;
  return build(f);
}

namespace {
Events events_of(const Rounded<1>& x, Lanes<1>::I swamp) {
  Events e = 0;
  if (x.overflow[0]) e |= kOverflow;
  if (x.underflow[0]) e |= kUnderflow;
  if (!x.exact[0]) e |= kInexact;
  if (swamp[0]) e |= kSwamp;
  return e;
}
}  // namespace

ScalarResult round(const Rounder& r, double exact) {
  return dispatch_mode(r.mode, [&]<Rounding Mode>() {
    const Rounded<1> out = round_lanes<Mode, 1>(r, Lanes<1>::D{exact});
    return ScalarResult{out.value[0], events_of(out, Lanes<1>::I{0})};
  });
}

ScalarResult accumulate(const Rounder& r, double acc, double addend) {
  return dispatch_mode(r.mode, [&]<Rounding Mode>() {
    Lanes<1>::I swamp;
    const Rounded<1> out = accumulate_lanes<Mode, 1>(r, Lanes<1>::D{acc}, Lanes<1>::D{addend}, &swamp);
    return ScalarResult{out.value[0], events_of(out, swamp)};
  });
}

}  // namespace accsim::num::fast
