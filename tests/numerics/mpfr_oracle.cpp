// The oracle: MPFR holds every exact intermediate (each call checks that MPFR
// reported no rounding), and the rounding into a FloatFormat follows the
// README step by step on that exact value. Deliberately naive: clarity over
// speed, and no shared code with models/numerics.
#include "tests/numerics/mpfr_oracle.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "models/numerics/sr.hpp"

namespace accsim::test {

using num::Events;
using num::FloatFormat;
using num::Result;
using num::Rounding;
using num::Specials;

namespace {

// Exactness is the oracle's whole claim: an MPFR operation that rounded is a
// bug in the oracle, never a test failure to shrug off.
void require_exact(int ternary, const char* what) {
  if (ternary != 0) {
    std::fprintf(stderr, "mpfr_oracle: inexact MPFR operation in %s\n", what);
    std::abort();
  }
}

// Field layout, straight from the format's definition.
struct Layout {
  int e_bits;
  int m_bits;
  std::uint64_t top_field;  // all-ones exponent field
  std::uint64_t frac_ones;  // all-ones fraction
  std::uint64_t sign_bit;
};

Layout layout_of(const FloatFormat& f) {
  Layout l{};
  l.e_bits = f.exp_bits;
  l.m_bits = f.man_bits;
  l.top_field = (std::uint64_t{1} << f.exp_bits) - 1;
  l.frac_ones = (std::uint64_t{1} << f.man_bits) - 1;
  l.sign_bit = std::uint64_t{1} << (f.exp_bits + f.man_bits);
  return l;
}

std::uint64_t encode(const FloatFormat& f, bool negative, std::uint64_t field,
                     std::uint64_t fraction) {
  Layout l = layout_of(f);
  return (negative ? l.sign_bit : 0) | (field << l.m_bits) | fraction;
}

std::uint64_t zero_bits(const FloatFormat& f, bool negative) { return encode(f, negative, 0, 0); }

// The largest finite magnitude is maxsig * 2^(emax - M).
std::uint64_t largest_significand(const FloatFormat& f) {
  std::uint64_t ones = (std::uint64_t{2} << f.man_bits) - 1;
  return f.specials == Specials::fn ? ones - 1 : ones;
}
long largest_exponent(const FloatFormat& f) {  // emax, unbiased
  long top = (long{1} << f.exp_bits) - 1;
  if (f.specials == Specials::ieee) top -= 1;
  return top - f.bias;
}

std::uint64_t max_bits(const FloatFormat& f, bool negative) {
  Layout l = layout_of(f);
  std::uint64_t field = largest_exponent(f) + f.bias;
  std::uint64_t fraction = largest_significand(f) - (std::uint64_t{1} << f.man_bits);
  (void)l;
  return encode(f, negative, field, fraction);
}
std::uint64_t infinity_bits(const FloatFormat& f, bool negative) {
  Layout l = layout_of(f);
  return encode(f, negative, l.top_field, 0);
}
// The oracle's NaN: positive, quiet. Tests accept any NaN encoding.
std::uint64_t quiet_nan_bits(const FloatFormat& f) {
  Layout l = layout_of(f);
  if (f.specials == Specials::fn) return encode(f, false, l.top_field, l.frac_ones);
  std::uint64_t quiet = f.man_bits > 0 ? std::uint64_t{1} << (f.man_bits - 1) : 0;
  return encode(f, false, l.top_field, quiet);
}

Result invalid_result(const FloatFormat& f) {
  // A format without NaN answers +0; "invalid" records what happened.
  if (f.specials == Specials::none) return {zero_bits(f, false), num::kInvalid};
  return {quiet_nan_bits(f), num::kInvalid};
}

// Compares n * 2^q with m * 2^p for n, m < 2^64.
int compare_scaled(std::uint64_t n, long q, std::uint64_t m, long p) {
  mpfr_t a;
  mpfr_t b;
  mpfr_init2(a, 64);
  mpfr_init2(b, 64);
  require_exact(mpfr_set_ui_2exp(a, n, q, MPFR_RNDN), "compare_scaled");
  require_exact(mpfr_set_ui_2exp(b, m, p, MPFR_RNDN), "compare_scaled");
  int c = mpfr_cmp(a, b);
  mpfr_clear(a);
  mpfr_clear(b);
  return c;
}

}  // namespace

// --- OracleValue ----------------------------------------------------------

OracleValue::OracleValue() { mpfr_init2(value_, 64); }
OracleValue::OracleValue(const OracleValue& other) : kind_(other.kind_), negative_(other.negative_) {
  mpfr_init2(value_, mpfr_get_prec(other.value_));
  if (kind_ == Kind::finite) require_exact(mpfr_set(value_, other.value_, MPFR_RNDN), "copy");
}
OracleValue& OracleValue::operator=(const OracleValue& other) {
  if (this == &other) return *this;
  kind_ = other.kind_;
  negative_ = other.negative_;
  mpfr_set_prec(value_, mpfr_get_prec(other.value_));
  if (kind_ == Kind::finite) require_exact(mpfr_set(value_, other.value_, MPFR_RNDN), "assign");
  return *this;
}
OracleValue::~OracleValue() { mpfr_clear(value_); }

OracleValue OracleValue::zero(bool negative) {
  OracleValue v;
  v.kind_ = Kind::zero;
  v.negative_ = negative;
  return v;
}
OracleValue OracleValue::inf(bool negative) {
  OracleValue v;
  v.kind_ = Kind::inf;
  v.negative_ = negative;
  return v;
}
OracleValue OracleValue::nan() {
  OracleValue v;
  v.kind_ = Kind::nan;
  return v;
}
OracleValue OracleValue::finite(bool negative, std::uint64_t sig, long exp) {
  if (sig == 0) return zero(negative);
  OracleValue v;
  v.kind_ = Kind::finite;
  v.negative_ = negative;
  require_exact(mpfr_set_ui_2exp(v.value_, sig, exp, MPFR_RNDN), "finite");
  if (negative) mpfr_neg(v.value_, v.value_, MPFR_RNDN);
  return v;
}
OracleValue OracleValue::adopt_finite(mpfr_t v) {
  OracleValue r;
  if (mpfr_zero_p(v)) {
    mpfr_clear(v);
    return r;  // callers handle exact zeros themselves; never reached
  }
  r.kind_ = Kind::finite;
  r.negative_ = mpfr_sgn(v) < 0;
  mpfr_swap(r.value_, v);
  mpfr_clear(v);
  return r;
}

std::string OracleValue::to_string() const {
  switch (kind_) {
    case Kind::zero: return negative_ ? "-0" : "+0";
    case Kind::inf: return negative_ ? "-inf" : "+inf";
    case Kind::nan: return "nan";
    case Kind::finite: break;
  }
  char* text = nullptr;
  mpfr_asprintf(&text, "%Ra (%.10Rg)", value_, value_);
  std::string s = text;
  mpfr_free_str(text);
  return s;
}

// --- decoding -------------------------------------------------------------

OracleValue oracle_decode(std::uint64_t bits, const FloatFormat& f) {
  Layout l = layout_of(f);
  bool negative = (bits & l.sign_bit) != 0;
  std::uint64_t field = (bits >> l.m_bits) & l.top_field;
  std::uint64_t fraction = bits & l.frac_ones;
  if (f.specials == Specials::ieee && field == l.top_field) {
    return fraction == 0 ? OracleValue::inf(negative) : OracleValue::nan();
  }
  if (f.specials == Specials::fn && field == l.top_field && fraction == l.frac_ones) {
    return OracleValue::nan();
  }
  if (field == 0) {  // subnormal (also readable in ftz formats): 0.f * 2^(1-bias)
    return OracleValue::finite(negative, fraction, 1L - f.bias - f.man_bits);
  }
  std::uint64_t sig = (std::uint64_t{1} << f.man_bits) | fraction;
  return OracleValue::finite(negative, sig, static_cast<long>(field) - f.bias - f.man_bits);
}

bool oracle_is_nan(std::uint64_t bits, const FloatFormat& f) { return oracle_decode(bits, f).is_nan(); }

OracleValue oracle_from_double(double x) {
  if (x != x) return OracleValue::nan();
  if (x == 0) return OracleValue::zero(std::signbit(x));
  if (x == 1.0 / 0.0) return OracleValue::inf(false);
  if (x == -1.0 / 0.0) return OracleValue::inf(true);
  mpfr_t v;
  mpfr_init2(v, 53);
  require_exact(mpfr_set_d(v, x, MPFR_RNDN), "from_double");
  return OracleValue::adopt_finite(v);
}

// --- exact arithmetic -----------------------------------------------------

OracleValue oracle_product(const OracleValue& a, const OracleValue& b) {
  using K = OracleValue::Kind;
  if (a.is_nan() || b.is_nan()) return OracleValue::nan();
  bool negative = a.negative() != b.negative();
  if (a.is_inf() || b.is_inf()) {
    if (a.is_zero() || b.is_zero()) return OracleValue::nan();  // 0 * inf
    return OracleValue::inf(negative);
  }
  if (a.kind() == K::zero || b.kind() == K::zero) return OracleValue::zero(negative);
  mpfr_t p;
  mpfr_init2(p, mpfr_get_prec(a.mp()) + mpfr_get_prec(b.mp()));
  require_exact(mpfr_mul(p, a.mp(), b.mp(), MPFR_RNDN), "product");
  return OracleValue::adopt_finite(p);
}

OracleValue oracle_sum(const OracleValue& a, const OracleValue& b, Rounding destination_rounding) {
  // IEEE 754's rule, as the README restates it: an exact zero sum of
  // non-zero operands or of opposite zeros is +0, and -0 under rd.
  const bool zero_sum_negative = destination_rounding == Rounding::rd;
  if (a.is_nan() || b.is_nan()) return OracleValue::nan();
  if (a.is_inf() && b.is_inf()) {
    return a.negative() == b.negative() ? OracleValue::inf(a.negative()) : OracleValue::nan();
  }
  if (a.is_inf()) return a;
  if (b.is_inf()) return b;
  if (a.is_zero() && b.is_zero()) {
    return a.negative() == b.negative() ? OracleValue::zero(a.negative())
                                        : OracleValue::zero(zero_sum_negative);
  }
  if (a.is_zero()) return b;
  if (b.is_zero()) return a;
  // Both finite and non-zero: precision to cover from the larger top bit
  // down to the lower of the two last bits, plus a carry.
  long top = std::max(mpfr_get_exp(a.mp()), mpfr_get_exp(b.mp()));
  long low = std::min(mpfr_get_exp(a.mp()) - static_cast<long>(mpfr_get_prec(a.mp())),
                      mpfr_get_exp(b.mp()) - static_cast<long>(mpfr_get_prec(b.mp())));
  long precision = top - low + 2;
  mpfr_t s;
  mpfr_init2(s, std::max<long>(precision, MPFR_PREC_MIN));
  require_exact(mpfr_add(s, a.mp(), b.mp(), MPFR_RNDN), "sum");
  if (mpfr_zero_p(s)) {
    mpfr_clear(s);
    return OracleValue::zero(zero_sum_negative);
  }
  return OracleValue::adopt_finite(s);
}

// --- rounding -------------------------------------------------------------

Result oracle_round(const OracleValue& x, const FloatFormat& f, std::uint64_t sr_key) {
  using K = OracleValue::Kind;
  switch (x.kind()) {
    case K::nan: return invalid_result(f);
    case K::inf:
      if (f.specials == Specials::ieee) return {infinity_bits(f, x.negative()), 0};
      // No infinity: saturate, which is an overflow (and not the exact value).
      return {max_bits(f, x.negative()), static_cast<Events>(num::kOverflow | num::kInexact)};
    case K::zero: return {zero_bits(f, x.negative()), 0};
    case K::finite: break;
  }

  const bool negative = x.negative();
  const long man_bits = f.man_bits;
  const long emin = 1L - f.bias;
  const long emax = largest_exponent(f);
  const long e = static_cast<long>(mpfr_get_exp(x.mp())) - 1;  // |x| in [2^e, 2^(e+1))
  Events events = 0;

  // Tininess before rounding; flush-to-zero happens before rounding too.
  const bool tiny = e < emin;
  if (tiny) events |= num::kUnderflow;
  if (tiny && !f.subnormals) {
    return {zero_bits(f, negative), static_cast<Events>(events | num::kInexact)};
  }

  // The grid of x's binade, or the subnormal grid below 2^emin.
  const long q = std::max(e - man_bits, emin - man_bits);
  mpfr_t scaled;  // |x| / 2^q, exact
  mpfr_t integer;
  mpfr_init2(scaled, mpfr_get_prec(x.mp()));
  mpfr_init2(integer, 64);
  require_exact(mpfr_abs(scaled, x.mp(), MPFR_RNDN), "abs");
  require_exact(mpfr_mul_2si(scaled, scaled, -q, MPFR_RNDN), "scale");
  const bool exact = mpfr_integer_p(scaled) != 0;

  // Rounding directions act on the magnitude: rd rounds a negative value's
  // magnitude up, ru a positive one's.
  switch (f.rounding) {
    case Rounding::rne: mpfr_rint(integer, scaled, MPFR_RNDN); break;
    case Rounding::rna: mpfr_round(integer, scaled); break;
    case Rounding::rtz: mpfr_rint(integer, scaled, MPFR_RNDZ); break;
    case Rounding::rd: mpfr_rint(integer, scaled, negative ? MPFR_RNDU : MPFR_RNDZ); break;
    case Rounding::ru: mpfr_rint(integer, scaled, negative ? MPFR_RNDZ : MPFR_RNDU); break;
    case Rounding::sr: {
      // Away from zero iff frac * 2^32 > r, frac the exact discarded part.
      mpfr_floor(integer, scaled);
      mpfr_t frac;
      mpfr_init2(frac, mpfr_get_prec(x.mp()));
      require_exact(mpfr_sub(frac, scaled, integer, MPFR_RNDN), "sr frac");
      require_exact(mpfr_mul_2ui(frac, frac, 32, MPFR_RNDN), "sr scale");
      std::uint32_t r = num::sr_draw(f.sr_seed, sr_key);
      if (mpfr_cmp_ui(frac, r) > 0) require_exact(mpfr_add_ui(integer, integer, 1, MPFR_RNDN), "sr up");
      mpfr_clear(frac);
      break;
    }
  }
  std::uint64_t n = mpfr_get_ui(integer, MPFR_RNDN);
  mpfr_clear(scaled);
  mpfr_clear(integer);
  if (!exact) events |= num::kInexact;

  // Overflow after rounding, with an unbounded exponent.
  const std::uint64_t maxsig = largest_significand(f);
  if (n != 0 && compare_scaled(n, q, maxsig, emax - man_bits) > 0) {
    events |= num::kOverflow | num::kInexact;
    bool to_inf = false;
    if (f.specials == Specials::ieee && !f.saturate) {
      switch (f.rounding) {
        case Rounding::rne:
        case Rounding::rna:
        case Rounding::sr: to_inf = true; break;
        case Rounding::rtz: to_inf = false; break;
        case Rounding::ru: to_inf = !negative; break;
        case Rounding::rd: to_inf = negative; break;
      }
    }
    return {to_inf ? infinity_bits(f, negative) : max_bits(f, negative), events};
  }

  if (n == 0) return {zero_bits(f, negative), events};
  long grid = q;
  const std::uint64_t hidden = std::uint64_t{1} << man_bits;
  if (n == hidden << 1) {  // rounded up into the next binade
    n >>= 1;
    grid += 1;
  }
  if (n < hidden) {  // subnormal: only on the lowest grid
    if (grid != emin - man_bits) std::abort();
    return {encode(f, negative, 0, n), events};
  }
  long field = grid + man_bits + f.bias;
  if (field < 1 || static_cast<std::uint64_t>(field) > layout_of(f).top_field) std::abort();
  return {encode(f, negative, static_cast<std::uint64_t>(field), n - hidden), events};
}

// --- operations -----------------------------------------------------------

Result oracle_quantize(double x, const FloatFormat& f, std::uint64_t sr_key) {
  return oracle_round(oracle_from_double(x), f, sr_key);
}

Result oracle_multiply(std::uint64_t a_bits, std::uint64_t b_bits, const FloatFormat& operand,
                       const FloatFormat& product, std::uint64_t sr_key) {
  return oracle_round(oracle_product(oracle_decode(a_bits, operand), oracle_decode(b_bits, operand)),
                      product, sr_key);
}

Result oracle_add(std::uint64_t acc_bits, const FloatFormat& acc, std::uint64_t addend_bits,
                  const FloatFormat& addend_format, std::uint64_t sr_key) {
  OracleValue sum = oracle_sum(oracle_decode(acc_bits, acc), oracle_decode(addend_bits, addend_format),
                               acc.rounding);
  return oracle_round(sum, acc, sr_key);
}

OracleMac oracle_mac(std::uint64_t acc_bits, const FloatFormat& acc, std::uint64_t a_bits,
                     std::uint64_t b_bits, const FloatFormat& operand,
                     const std::optional<FloatFormat>& product, std::uint64_t sr_key) {
  OracleMac out;
  OracleValue p = oracle_product(oracle_decode(a_bits, operand), oracle_decode(b_bits, operand));
  if (product) {
    Result rounded = oracle_round(p, *product, num::product_key(sr_key));
    out.product_events = rounded.events;
    p = oracle_decode(rounded.bits, *product);
  }
  out.addend_nonzero = !p.is_zero() && !p.is_nan();  // NaN is no number: not "non-zero"
  Result sum = oracle_round(oracle_sum(oracle_decode(acc_bits, acc), p, acc.rounding), acc, sr_key);
  out.bits = sum.bits;
  out.sum_events = sum.events;
  return out;
}

// --- descriptions ---------------------------------------------------------

std::string describe(const FloatFormat& f) {
  static const char* const kRounding[] = {"rne", "rna", "rtz", "rd", "ru", "sr"};
  static const char* const kSpecials[] = {"none", "ieee", "fn"};
  char buf[200];
  std::snprintf(buf, sizeof buf, "{E=%d M=%d bias=%d %s specials=%s%s round=%s seed=%llu}",
                f.exp_bits, f.man_bits, f.bias, f.subnormals ? "subnormals" : "ftz",
                kSpecials[static_cast<int>(f.specials)],
                f.specials == Specials::ieee ? (f.saturate ? ",sat" : ",inf") : "",
                kRounding[static_cast<int>(f.rounding)],
                static_cast<unsigned long long>(f.sr_seed));
  return buf;
}

std::string describe_bits(std::uint64_t bits, const FloatFormat& f) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "0x%0*llx", (f.width() + 3) / 4, static_cast<unsigned long long>(bits));
  return std::string(buf) + " = " + oracle_decode(bits, f).to_string();
}

std::string describe_events(Events e) {
  if (e == 0) return "none";
  std::string s;
  auto add = [&](Events bit, const char* name) {
    if ((e & bit) == 0) return;
    if (!s.empty()) s += '|';
    s += name;
  };
  add(num::kOverflow, "overflow");
  add(num::kUnderflow, "underflow");
  add(num::kSwamp, "swamp");
  add(num::kInexact, "inexact");
  add(num::kInvalid, "invalid");
  return s;
}

bool same_result(const Result& expected, const Result& got, const FloatFormat& f) {
  if (expected.events != got.events) return false;
  if (expected.bits == got.bits) return true;
  return oracle_is_nan(expected.bits, f) && got.bits <= (std::uint64_t{2} << (f.width() - 1)) - 1 &&
         oracle_is_nan(got.bits, f);
}

}  // namespace accsim::test
