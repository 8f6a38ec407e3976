#include "models/numerics/fast.hpp"

#include <bit>
#include <algorithm>
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

std::optional<Rounder> Rounder::make_lanes(const Format& format, Span input) {
  if (const auto* i = std::get_if<IntFormat>(&format)) {
    // Every sum exact, and below 2^51 for round_integer_lanes.
    if (!fits_double(input) || input.msb > 50) return std::nullopt;
    Rounder r;
    r.int_bits = i->bits;
    r.int_saturate = i->saturate;
    return r;
  }
  const FloatFormat& f = std::get<FloatFormat>(format);
  if (f.rounding != Rounding::sr && !f.overflow_to_inf()) {
    if (auto r = make(f, input)) return r;  // sums exact in double
  }
  // Checks of format_ok that do not depend on the mode or the overflow policy.
  if (f.man_bits < 1 || f.man_bits > 51) return std::nullopt;
  if (f.emin() - f.man_bits < -1022 || f.emax() > 1022) return std::nullopt;
  // Inputs (and TwoSum's errors, on their grid) normal doubles or zero; sums
  // finite, and in rne, 2^(e + 52 - M) finite for the sums' largest e.
  if (input.lsb < -1022 || input.msb > 1021) return std::nullopt;
  if (input.msb + 1 + 52 - f.man_bits > 1023) return std::nullopt;
  const bool exact = fits_double(input) && (!f.subnormals || f.emin() - input.lsb <= 52);
  Rounder r = build(f);
  r.wide = !exact;
  // Round-to-odd must leave 2 bits below the format's last place. For
  // stochastic rounding it must leave 33, the 32 bits of the draw's
  // comparison and one more, which keeps x's order against every value those
  // 32 bits can take; with fewer (fp32), the sums are carried as TwoSum's
  // pairs instead (sr_pair, see round_sr_pair_lanes), whose draw scale
  // 2^(emin - M - 32) must be a normal double.
  if (r.wide && 52 - f.man_bits < 2) return std::nullopt;
  r.to_inf = f.overflow_to_inf() && f.rounding != Rounding::rtz;
  if (f.rounding == Rounding::sr) {
    r.sr_right = std::max(r.drop - 32, 0);
    r.sr_left = std::max(32 - r.drop, 0);
    r.sr_mixed_seed = mix64(f.sr_seed + 0x9e3779b97f4a7c15ULL);  // as sr_draw
    if (r.wide && 52 - f.man_bits < 33) {
      if (f.emin() - f.man_bits - 32 < -1022) return std::nullopt;
      r.sr_pair = true;
      r.sr_unit_offset = static_cast<std::uint64_t>(f.man_bits) << 52;
      r.sr_draw_offset = static_cast<std::uint64_t>(f.man_bits + 32) << 52;
    }
  }
  return r;
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

ScalarResult accumulate_any(const Rounder& r, double acc, double addend, std::uint64_t sr_key) {
  using L = Lanes<1>;
  L::I swamp;
  if (r.integer()) {
    const Rounded<1> out = accumulate_integer_lanes<1>(r, L::D{acc}, L::D{addend}, &swamp);
    return ScalarResult{out.value[0], events_of(out, swamp)};
  }
  const L::U draw = sr_draw_lanes<1>(r, L::U{sr_key});
  if (r.sr_pair) {
    const Rounded<1> out = accumulate_sr_pair_lanes<1>(r, L::D{acc}, L::D{addend}, &swamp, draw);
    return ScalarResult{out.value[0], events_of(out, swamp)};
  }
  return dispatch_any_mode(r.mode, [&]<Rounding Mode>() {
    const Rounded<1> out = r.wide ? accumulate_lanes<Mode, 1, Ftz::runtime, true>(r, L::D{acc}, L::D{addend}, &swamp, draw)
                                  : accumulate_lanes<Mode, 1, Ftz::runtime, false>(r, L::D{acc}, L::D{addend}, &swamp, draw);
    return ScalarResult{out.value[0], events_of(out, swamp)};
  });
}

ScalarResult round_any(const Rounder& r, double exact, std::uint64_t sr_key) {
  using L = Lanes<1>;
  if (r.integer()) {
    const Rounded<1> out = round_integer_lanes<1>(r, L::D{exact});
    return ScalarResult{out.value[0], events_of(out, L::I{0})};
  }
  const L::U draw = sr_draw_lanes<1>(r, L::U{sr_key});
  if (r.sr_pair) {
    const Rounded<1> out = round_sr_pair_lanes<1>(r, L::D{exact}, L::D{0.0}, draw);
    return ScalarResult{out.value[0], events_of(out, L::I{0})};
  }
  return dispatch_any_mode(r.mode, [&]<Rounding Mode>() {
    const Rounded<1> out = round_lanes<Mode, 1>(r, L::D{exact}, draw);
    return ScalarResult{out.value[0], events_of(out, L::I{0})};
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
