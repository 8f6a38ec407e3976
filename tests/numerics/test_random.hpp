// Seeded, biased random inputs for the numerics tests (MatchLib's
// semi_random): a mix of uniform encodings and values that sit on the edges
// of a format -- zeros, subnormal and normal extremes, halfway points, the
// overflow boundary, specials.
//
// ACCSIM_TEST_SEED (decimal or 0x-hex) reseeds every generator; tests print it
// on failure. ACCSIM_TEST_SCALE multiplies the number of random cases.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>

#include "models/numerics/format.hpp"

namespace accsim::test {

inline std::uint64_t test_seed() {
  const char* text = std::getenv("ACCSIM_TEST_SEED");
  if (text == nullptr || *text == '\0') return 0x5eedacc5;
  return std::strtoull(text, nullptr, 0);
}

inline double test_scale() {
  const char* text = std::getenv("ACCSIM_TEST_SCALE");
  if (text == nullptr || *text == '\0') return 1.0;
  double scale = std::strtod(text, nullptr);
  return scale > 0 ? scale : 1.0;
}

// n random cases, scaled by ACCSIM_TEST_SCALE (at least one).
inline std::uint64_t scaled_count(std::uint64_t n) {
  double scaled = std::round(static_cast<double>(n) * test_scale());
  return scaled < 1 ? 1 : static_cast<std::uint64_t>(scaled);
}

class SemiRandom {
 public:
  // Independent streams for each test share the one seed.
  SemiRandom(std::uint64_t seed, std::uint64_t stream) : state_(mix(seed ^ mix(stream + 1))) {}

  // SplitMix64.
  std::uint64_t next() {
    state_ += 0x9e3779b97f4a7c15ULL;
    return mix(state_);
  }
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
  bool percent(unsigned p) { return below(100) < p; }
  bool coin() { return (next() & 1) != 0; }

  // A biased encoding of f: 40% uniform bit patterns, the rest built from an
  // interesting exponent field and an interesting fraction.
  std::uint64_t encoding(const num::FloatFormat& f) {
    const std::uint64_t width_mask = mask(f.width());
    if (percent(40)) return next() & width_mask;
    const std::uint64_t top = mask(f.exp_bits);
    std::uint64_t field = 0;
    switch (below(8)) {
      case 0: field = 0; break;
      case 1: field = std::min<std::uint64_t>(1, top); break;
      case 2: field = std::min<std::uint64_t>(2, top); break;
      case 3: field = top; break;
      case 4: field = top > 0 ? top - 1 : 0; break;
      case 5: field = top > 1 ? top - 2 : 0; break;
      case 6: {  // near the value 1.0 when the bias allows it
        long one = f.bias + static_cast<long>(below(5)) - 2;
        field = one >= 0 && static_cast<std::uint64_t>(one) <= top ? static_cast<std::uint64_t>(one)
                                                                   : next() & top;
        break;
      }
      default: field = next() & top; break;
    }
    return assemble(f, coin(), field, fraction(f));
  }

  // An encoding whose value's exponent is near 2^e (the field is clamped to
  // the format's range), with an interesting fraction.
  std::uint64_t encoding_with_exponent(const num::FloatFormat& f, long e, bool negative) {
    const long top = static_cast<long>(mask(f.exp_bits));
    long field = std::clamp(e + f.bias, 0L, top);
    return assemble(f, negative, static_cast<std::uint64_t>(field), fraction(f));
  }

  // An interesting fraction field for f.
  std::uint64_t fraction(const num::FloatFormat& f) {
    const int m = f.man_bits;
    const std::uint64_t ones = mask(m);
    if (m == 0) return 0;
    const std::uint64_t half = std::uint64_t{1} << (m - 1);
    switch (below(10)) {
      case 0: return 0;
      case 1: return 1 & ones;
      case 2: return ones;
      case 3: return ones - 1;
      case 4: return half;
      case 5: return (half | 1) & ones;
      case 6: return half - 1;
      case 7: {  // few significant bits: products and sums land on ties
        int keep = static_cast<int>(below(static_cast<std::uint64_t>(std::min(m, 4)) + 1));
        return (next() & ones) >> (m - keep) << (m - keep);
      }
      default: return next() & ones;
    }
  }

  // A double around f's range: on its grid, exactly halfway between two
  // neighbours, one double ulp beside a halfway point, at the overflow and
  // underflow boundaries, or a special.
  double value_near(const num::FloatFormat& f) {
    const long m = f.man_bits;
    const long emin = 1L - f.bias;
    const long top = static_cast<long>(mask(f.exp_bits));
    const long emax = top - (f.specials == num::Specials::ieee ? 1 : 0) - f.bias;
    const std::uint64_t maxsig =
        (std::uint64_t{2} << m) - (f.specials == num::Specials::fn ? 2 : 1);
    const double sign = coin() ? -1.0 : 1.0;
    auto random_exponent = [&] {
      return emin - m - 3 + static_cast<long>(below(static_cast<std::uint64_t>(emax - emin + m + 6)));
    };
    auto grid = [&](long e) { return std::max(e, emin) - m; };  // ulp exponent of binade e
    auto ldx = [](double v, long e) {
      return std::ldexp(v, static_cast<int>(std::clamp(e, -5000L, 5000L)));
    };
    switch (below(12)) {
      case 0: {
        constexpr double kInf = std::numeric_limits<double>::infinity();
        const double specials[] = {0.0,
                                   kInf,
                                   std::numeric_limits<double>::quiet_NaN(),
                                   std::numeric_limits<double>::max(),
                                   std::numeric_limits<double>::denorm_min(),
                                   std::numeric_limits<double>::min(),
                                   1.0};
        return sign * specials[below(std::size(specials))];
      }
      case 1:
      case 2: {  // random 53-bit significand anywhere near the range
        double sig = static_cast<double>((next() >> 11) | (std::uint64_t{1} << 52));
        return sign * ldx(sig, random_exponent() - 52);
      }
      case 3: {  // on the grid
        long e = random_exponent();
        std::uint64_t k = e < emin ? below(std::uint64_t{1} << m)
                                   : (std::uint64_t{1} << m) + below(std::uint64_t{1} << m);
        return sign * ldx(static_cast<double>(k), grid(e));
      }
      case 4:
      case 5:
      case 6: {  // halfway, possibly nudged by one double ulp
        long e = random_exponent();
        std::uint64_t k = e < emin ? below(std::uint64_t{1} << m)
                                   : (std::uint64_t{1} << m) + below(std::uint64_t{1} << m);
        double x = ldx(static_cast<double>(2 * k + 1), grid(e) - 1);
        if (below(3) == 1) x = std::nextafter(x, 0.0);
        if (below(3) == 2) x = std::nextafter(x, std::numeric_limits<double>::infinity());
        return sign * x;
      }
      case 7:
      case 8: {  // the overflow boundary
        const long q = emax - m;
        const double candidates[] = {
            ldx(static_cast<double>(maxsig), q),                 // max finite
            ldx(static_cast<double>(maxsig - 1), q),             // one ulp below
            ldx(static_cast<double>(2 * maxsig + 1), q - 1),     // max + half ulp
            ldx(static_cast<double>(2 * maxsig - 1), q - 1),     // max - half ulp
            ldx(static_cast<double>(maxsig + 1), q),             // max + one ulp
            ldx(1.0, emax + 1),                                  // next binade
            ldx(1.5, emax + 1),
            ldx(static_cast<double>(4 * maxsig + 3), q - 2),     // max + 3/4 ulp
            ldx(static_cast<double>(4 * maxsig + 1), q - 2),     // max + 1/4 ulp
        };
        double x = candidates[below(std::size(candidates))];
        if (below(4) == 1) x = std::nextafter(x, 0.0);
        if (below(4) == 2) x = std::nextafter(x, std::numeric_limits<double>::infinity());
        return sign * x;
      }
      case 9:
      case 10: {  // the underflow boundary
        const long q = emin - m;
        const double candidates[] = {
            ldx(1.0, emin),       ldx(1.0, q),  // min normal, min subnormal
            ldx(1.0, q - 1),      ldx(3.0, q - 2), ldx(3.0, q - 1), ldx(1.0, q - 2),
            ldx(static_cast<double>((std::uint64_t{2} << m) - 1), q - 1),  // halfway to min normal
            ldx(static_cast<double>((std::uint64_t{1} << m) - 1), q),      // max subnormal
            ldx(1.0, emin - 1),
        };
        double x = candidates[below(std::size(candidates))];
        if (below(4) == 1) x = std::nextafter(x, 0.0);
        if (below(4) == 2) x = std::nextafter(x, std::numeric_limits<double>::infinity());
        return sign * x;
      }
      default: {  // small integers and simple fractions
        return sign * ldx(static_cast<double>(below(64)), static_cast<long>(below(9)) - 4);
      }
    }
  }

  static constexpr std::uint64_t mask(int bits) {
    return bits >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1;
  }
  static std::uint64_t assemble(const num::FloatFormat& f, bool negative, std::uint64_t field,
                                std::uint64_t fraction) {
    return (negative ? std::uint64_t{1} << (f.exp_bits + f.man_bits) : 0) | (field << f.man_bits) |
           fraction;
  }

 private:
  static constexpr std::uint64_t mix(std::uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::uint64_t state_;
};

}  // namespace accsim::test
