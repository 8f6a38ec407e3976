// Verilator harness: the reference RTL against accsim::num, bit for bit,
// events included. For one configuration of configs.txt it checks
//   - fp_mul's exact product against num::exact_product (exhaustive for
//     operand formats of 8 bits or fewer, random otherwise),
//   - fp_mul_round against num::multiply,
//   - fp_acc on the exact product against num::mac without a product format,
//   - fp_acc on a product-format encoding against num::mac with one (the
//     encoding being the model's own product) and num::add (any encoding),
//   - the clocked pe against num::mac chained over a stream of operands,
// on corner vectors (every pairing of each format's edge encodings) and on
// biased random vectors that hit the edges and the cancellations.
//
//   rtl_harness --config NAME [--vectors N] [--seed S] [--pe-ops N]
//   rtl_harness --list
// The seed also comes from ACCSIM_RTL_SEED; it is printed on failure.
#include <algorithm>
#include <bit>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "Vharness.h"
#include "harness_types.hpp"
#include "models/numerics/arith.hpp"
#include "models/numerics/events.hpp"
#include "models/numerics/format.hpp"
#include "models/numerics/sr.hpp"
#include "verilated.h"

#include "harness_configs.inc"

namespace {

namespace num = accsim::num;
using num::Exact;
using num::FloatFormat;
using num::Format;
using num::IntFormat;

// --- random numbers ----------------------------------------------------------

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() { return num::mix64(state_ += 0x9e3779b97f4a7c15ULL); }
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
  bool chance(int percent) { return below(100) < static_cast<std::uint64_t>(percent); }
  std::int64_t between(std::int64_t lo, std::int64_t hi) {
    return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo + 1)));
  }

 private:
  std::uint64_t state_;
};

// --- encodings of interest ---------------------------------------------------

std::uint64_t field_mask(int bits) { return bits >= 64 ? ~0ULL : (1ULL << bits) - 1; }

// Largest exponent field that encodes a finite value.
std::uint64_t top_finite_field(const FloatFormat& f) {
  const std::uint64_t all = field_mask(f.exp_bits);
  return f.specials == num::Specials::ieee ? all - 1 : all;
}

// Edge encodings of a float format: zeros, subnormal and normal extremes,
// one and its neighbours, the largest values, infinities and NaNs. `rich`
// adds more fractions per exponent (for the accumulator).
std::vector<std::uint64_t> float_corners(const FloatFormat& f, bool rich = false) {
  const std::uint64_t all_frac = field_mask(f.man_bits);
  const std::uint64_t top = field_mask(f.exp_bits);
  std::vector<std::uint64_t> fracs = {0, 1, all_frac, 1ULL << (f.man_bits - 1)};
  if (rich) fracs.insert(fracs.end(), {2, all_frac - 1, all_frac >> 1});
  std::vector<std::uint64_t> fields = {0, 1, top_finite_field(f), top};
  if (rich) fields.insert(fields.end(), {2, top_finite_field(f) - 1});
  if (f.bias >= 1 && static_cast<std::uint64_t>(f.bias) < top) {
    fields.push_back(static_cast<std::uint64_t>(f.bias));  // around 1.0
    if (rich) fields.push_back(static_cast<std::uint64_t>(f.bias) - 1);
  }
  std::set<std::uint64_t> s;
  for (std::uint64_t e : fields) {
    for (std::uint64_t m : fracs) {
      for (bool negative : {false, true}) s.insert(num::pack(negative, e & top, m & all_frac, f));
    }
  }
  return {s.begin(), s.end()};
}

std::vector<std::uint64_t> int_corners(const IntFormat& f) {
  const std::int64_t max = (std::int64_t{1} << (f.bits - 1)) - 1;
  const std::int64_t min = -max - 1;
  std::set<std::uint64_t> s;
  for (std::int64_t v : {std::int64_t{0}, std::int64_t{1}, std::int64_t{-1}, std::int64_t{2}, std::int64_t{-2}, max,
                         max - 1, min, min + 1, max / 2, min / 2, std::int64_t{16384}, std::int64_t{-16384},
                         std::int64_t{-16256}, std::int64_t{127}, std::int64_t{-128}}) {
    if (v <= max && v >= min) s.insert(static_cast<std::uint64_t>(v) & field_mask(f.bits));
  }
  return {s.begin(), s.end()};
}

// MatchLib's semi_random: fields drawn from their edges more often than
// uniform bits would.
std::uint64_t semi_random(const FloatFormat& f, const std::vector<std::uint64_t>& corners, Rng& rng) {
  const std::uint64_t all_frac = field_mask(f.man_bits);
  const std::uint64_t top = field_mask(f.exp_bits);
  switch (rng.below(8)) {
    case 0:
    case 1: return rng.next() & field_mask(f.width());
    case 2: return corners[rng.below(corners.size())];
    default: break;
  }
  std::uint64_t e = 0;
  switch (rng.below(6)) {
    case 0: e = 0; break;
    case 1: e = 1 + rng.below(2); break;
    case 2: e = top - rng.below(3); break;
    default: e = rng.next() & top; break;
  }
  std::uint64_t m = 0;
  switch (rng.below(6)) {
    case 0: m = 0; break;
    case 1: m = 1 + rng.below(2); break;
    case 2: m = all_frac - rng.below(2); break;
    case 3: m = (1ULL << (f.man_bits - 1)) + rng.below(2); break;
    default: m = rng.next(); break;
  }
  return num::pack(rng.chance(50), e, m & all_frac, f);
}

std::uint64_t semi_random_int(const IntFormat& f, const std::vector<std::uint64_t>& corners, Rng& rng) {
  switch (rng.below(4)) {
    case 0: return corners[rng.below(corners.size())];
    case 1: {  // near a corner
      const auto c = static_cast<std::int64_t>(corners[rng.below(corners.size())]);
      return static_cast<std::uint64_t>(c + rng.between(-3, 3)) & field_mask(f.bits);
    }
    case 2: return static_cast<std::uint64_t>(rng.between(-300, 300)) & field_mask(f.bits);
    default: return rng.next() & field_mask(f.bits);
  }
}

int msb_index(num::u128 x) {
  const auto hi = static_cast<std::uint64_t>(x >> 64);
  return hi != 0 ? 127 - std::countl_zero(hi) : 63 - std::countl_zero(static_cast<std::uint64_t>(x));
}

// An accumulator value near the addend x: a few binades away, often with
// x's own leading bits and often the opposite sign, so that alignment,
// cancellation, ties and swamping all come up.
std::uint64_t near_acc(const FloatFormat& f, const Exact& x, const std::vector<std::uint64_t>& corners, Rng& rng) {
  if (x.kind != Exact::Kind::finite || rng.chance(10)) return semi_random(f, corners, rng);
  const int msb = msb_index(x.sig);
  const long long top_exp = static_cast<long long>(x.exp) + msb;
  long long delta = 0;
  switch (rng.below(4)) {
    case 0: delta = 0; break;
    case 1: delta = rng.between(-3, 3); break;
    case 2: delta = rng.between(-(f.man_bits + 4), f.man_bits + 4); break;
    default: delta = rng.between(-(f.man_bits + 40), f.man_bits + 40); break;
  }
  long long field = top_exp + delta + f.bias;
  field = std::clamp<long long>(field, 0, static_cast<long long>(top_finite_field(f)));
  std::uint64_t frac = 0;
  if (rng.chance(60)) {
    // x's bits below its leading one, on the accumulator's fraction grid.
    const int shift = msb - f.man_bits;
    const num::u128 aligned = shift >= 0 ? x.sig >> shift : x.sig << -shift;
    frac = static_cast<std::uint64_t>(aligned) + static_cast<std::uint64_t>(rng.between(-2, 2));
  } else {
    frac = rng.next();
  }
  const bool negative = rng.chance(50) ? !x.negative : x.negative;
  return num::pack(negative, static_cast<std::uint64_t>(field), frac & field_mask(f.man_bits), f);
}

// --- the checker --------------------------------------------------------------

struct Stats {
  std::uint64_t vectors = 0;
  std::uint64_t failures = 0;
};

class Checker {
 public:
  Checker(Vharness& top, const HarnessConfig& cfg, std::uint64_t seed)
      : top_(top), cfg_(cfg), p_(cfg.ports), seed_(seed), rng_(seed),
        operand_(num::parse_format(cfg.operand)), product_(num::parse_format(cfg.product)),
        acc_(num::parse_format(cfg.accumulator)) {}

  int run(std::uint64_t random_vectors, std::uint64_t pe_ops) {
    if (cfg_.is_int) run_int(random_vectors);
    else run_float(random_vectors);
    run_pe(pe_ops);
    std::printf("%s: %" PRIu64 " vectors, %" PRIu64 " mismatches (seed %" PRIu64 ")\n", cfg_.name.c_str(),
                stats_.vectors, stats_.failures, seed_);
    return stats_.failures == 0 ? 0 : 1;
  }

 private:
  static constexpr std::uint64_t kMaxReports = 10;

  const FloatFormat& op_f() const { return std::get<FloatFormat>(operand_); }
  const FloatFormat& prod_f() const { return std::get<FloatFormat>(product_); }
  const FloatFormat& acc_f() const { return std::get<FloatFormat>(acc_); }

  void fail(const char* what, const std::string& inputs, std::uint64_t want_bits, num::Events want_ev,
            std::uint64_t got_bits, num::Events got_ev) {
    ++stats_.failures;
    if (stats_.failures > kMaxReports) return;
    std::printf("MISMATCH %s [%s] %s: model %#" PRIx64 " {%s}, rtl %#" PRIx64 " {%s} (seed %" PRIu64 ")\n",
                cfg_.name.c_str(), what, inputs.c_str(), want_bits, num::to_string_events(want_ev).c_str(),
                got_bits, num::to_string_events(got_ev).c_str(), seed_);
  }

  static std::string hex_inputs(std::initializer_list<std::pair<const char*, std::uint64_t>> kv) {
    std::string s;
    char buf[64];
    for (const auto& [k, v] : kv) {
      std::snprintf(buf, sizeof buf, "%s%s=%#" PRIx64, s.empty() ? "" : " ", k, v);
      s += buf;
    }
    return s;
  }

  void compare(const char* what, const std::string& inputs, const num::Result& want, std::uint64_t got_bits,
               std::uint64_t got_ev) {
    if (want.bits != got_bits || want.events != static_cast<num::Events>(got_ev)) {
      fail(what, inputs, want.bits, want.events, got_bits, static_cast<num::Events>(got_ev));
    }
  }

  // Exact values compare by value: strip trailing zeros from both.
  static Exact canonical(Exact x) {
    if (x.kind != Exact::Kind::finite) {
      if (x.kind == Exact::Kind::nan) x.negative = false;
      x.exp = 0;
      x.sig = 0;
      return x;
    }
    while ((x.sig & 1) == 0) {
      x.sig >>= 1;
      ++x.exp;
    }
    return x;
  }

  Exact rtl_product() const {
    const std::uint64_t flags = *p_.m_flags;
    Exact x;
    x.negative = (flags & 1) != 0;
    if (flags & 8) x.kind = Exact::Kind::nan;
    else if (flags & 4) x.kind = Exact::Kind::inf;
    else if (flags & 2) x.kind = Exact::Kind::zero;
    else x.kind = Exact::Kind::finite;
    const int sig_w = 2 * (op_f().man_bits + 1);
    x.sig = *p_.m_sig;
    x.exp = static_cast<int>(static_cast<std::int64_t>(*p_.m_exp)) - (sig_w - 1);
    return x;
  }

  // One combinational vector through every float unit. Without p_in the
  // add path gets the model's own rounded product (the MAC chain, num::mac
  // with a product format); with it, that encoding (num::add).
  void float_vector(std::uint64_t a, std::uint64_t b, std::uint64_t acc, std::optional<std::uint64_t> p_in) {
    const std::uint64_t key = rng_.next();
    const std::uint64_t pkey = num::product_key(key);
    const std::uint32_t r_prod = num::sr_draw(prod_f().sr_seed, pkey);
    const std::uint32_t r_acc = num::sr_draw(acc_f().sr_seed, key);

    const Exact exact = num::exact_product(num::decode(a, operand_), num::decode(b, operand_));
    const num::Result prod = num::multiply(a, b, operand_, product_, pkey);
    const num::MacResult fused = num::mac(acc, acc_, a, b, operand_, std::nullopt, key);
    num::Result added;
    if (p_in) {
      added = num::add(acc, acc_, *p_in, product_, key);
    } else {
      const num::MacResult chained = num::mac(acc, acc_, a, b, operand_, product_, key);
      added = {chained.bits, chained.sum_events};
    }

    *p_.a = a;
    *p_.b = b;
    *p_.acc = acc;
    *p_.p_in = p_in ? *p_in : prod.bits;
    *p_.sr_prod = r_prod;
    *p_.sr_acc = r_acc;
    top_.eval();
    ++stats_.vectors;

    const std::string in = hex_inputs({{"a", a}, {"b", b}, {"acc", acc}, {"p", *p_.p_in}, {"key", key}});
    const Exact got = canonical(rtl_product());
    const Exact want = canonical(exact);
    if (got.kind != want.kind || got.negative != want.negative || got.exp != want.exp || got.sig != want.sig) {
      ++stats_.failures;
      if (stats_.failures <= kMaxReports) {
        std::printf("MISMATCH %s [fp_mul exact] %s: model kind %d neg %d sig %#" PRIx64 "*2^%d, rtl kind %d neg %d "
                    "sig %#" PRIx64 "*2^%d (seed %" PRIu64 ")\n",
                    cfg_.name.c_str(), in.c_str(), static_cast<int>(want.kind), want.negative,
                    static_cast<std::uint64_t>(want.sig), want.exp, static_cast<int>(got.kind), got.negative,
                    static_cast<std::uint64_t>(got.sig), got.exp, seed_);
      }
    }
    compare("fp_mul_round", in, prod, *p_.p_bits, *p_.p_events);
    compare("fp_acc fused", in, {fused.bits, fused.sum_events}, *p_.fused_sum, *p_.fused_events);
    compare(p_in ? "fp_acc add" : "fp_acc mac", in, added, *p_.add_sum, *p_.add_events);
  }

  void run_float(std::uint64_t random_vectors) {
    const auto op_c = float_corners(op_f());
    const auto prod_c = float_corners(prod_f());
    const auto acc_c = float_corners(acc_f(), /*rich=*/true);
    const int op_w = op_f().width();

    // Corners: every pairing of operand corners against every accumulator
    // corner, and every product-format corner against them too.
    for (std::uint64_t a : op_c) {
      for (std::uint64_t b : op_c) {
        for (std::uint64_t acc : acc_c) float_vector(a, b, acc, std::nullopt);
      }
    }
    for (std::uint64_t p : prod_c) {
      for (std::uint64_t acc : acc_c) float_vector(op_c[0], op_c[0], acc, p);
    }
    const std::uint64_t corner_vectors = stats_.vectors;

    // Exhaustive 8-bit multipliers: every operand pair, against an
    // accumulator near the product and a semi-random one.
    if (op_w <= 8) {
      for (std::uint64_t a = 0; a < (1ULL << op_w); ++a) {
        for (std::uint64_t b = 0; b < (1ULL << op_w); ++b) {
          const Exact x = num::exact_product(num::decode(a, operand_), num::decode(b, operand_));
          float_vector(a, b, near_acc(acc_f(), x, acc_c, rng_), std::nullopt);
          float_vector(a, b, semi_random(acc_f(), acc_c, rng_), std::nullopt);
        }
      }
    }
    if (cfg_.exhaustive_acc) {
      // Every accumulator encoding against every distinct exact product (the
      // adder sees only the product's value; fp_mul itself was checked on
      // every pair above) and against every product-format encoding.
      std::map<std::tuple<int, bool, int, std::uint64_t>, std::pair<std::uint64_t, std::uint64_t>> products;
      for (std::uint64_t a = 0; a < (1ULL << op_w); ++a) {
        for (std::uint64_t b = 0; b < (1ULL << op_w); ++b) {
          const Exact x = canonical(num::exact_product(num::decode(a, operand_), num::decode(b, operand_)));
          products.emplace(std::tuple{static_cast<int>(x.kind), x.negative, x.exp, static_cast<std::uint64_t>(x.sig)},
                           std::pair{a, b});
        }
      }
      for (std::uint64_t acc = 0; acc < (1ULL << acc_f().width()); ++acc) {
        for (const auto& [value, ab] : products) float_vector(ab.first, ab.second, acc, std::nullopt);
        for (std::uint64_t p = 0; p < (1ULL << prod_f().width()); ++p) float_vector(0, 0, acc, p);
      }
    }
    const std::uint64_t systematic = stats_.vectors;

    for (std::uint64_t i = 0; i < random_vectors; ++i) {
      const std::uint64_t a = semi_random(op_f(), op_c, rng_);
      const std::uint64_t b = semi_random(op_f(), op_c, rng_);
      const Exact x = num::exact_product(num::decode(a, operand_), num::decode(b, operand_));
      const std::uint64_t acc = rng_.chance(70) ? near_acc(acc_f(), x, acc_c, rng_) : semi_random(acc_f(), acc_c, rng_);
      std::optional<std::uint64_t> p_in;
      if (rng_.chance(30)) {
        p_in = semi_random(prod_f(), prod_c, rng_);
        const Exact px = num::decode(*p_in, product_);
        const std::uint64_t acc2 = near_acc(acc_f(), px, acc_c, rng_);
        float_vector(a, b, acc2, p_in);
      } else {
        float_vector(a, b, acc, std::nullopt);
      }
    }
    std::printf("%s: %" PRIu64 " corner, %" PRIu64 " exhaustive, %" PRIu64 " random vectors\n", cfg_.name.c_str(),
                corner_vectors, systematic - corner_vectors, stats_.vectors - systematic);
  }

  void int_vector(std::uint64_t a, std::uint64_t b, std::uint64_t acc, std::uint64_t p_in) {
    const num::Result prod = num::multiply(a, b, operand_, product_);
    const num::Result added = num::add(acc, acc_, p_in, product_);
    *p_.a = a;
    *p_.b = b;
    *p_.acc = acc;
    *p_.p_in = p_in;
    top_.eval();
    ++stats_.vectors;
    const std::string in = hex_inputs({{"a", a}, {"b", b}, {"acc", acc}, {"p", p_in}});
    compare("int_mul", in, prod, *p_.p_bits, *p_.p_events);
    compare("int_acc", in, added, *p_.add_sum, *p_.add_events);
  }

  void run_int(std::uint64_t random_vectors) {
    const auto& opf = std::get<IntFormat>(operand_);
    const auto& prodf = std::get<IntFormat>(product_);
    const auto& accf = std::get<IntFormat>(acc_);
    const auto op_c = int_corners(opf);
    const auto prod_c = int_corners(prodf);
    const auto acc_c = int_corners(accf);
    for (std::uint64_t p : prod_c) {
      for (std::uint64_t acc : acc_c) int_vector(0, 0, acc, p);
    }
    if (opf.bits <= 8) {
      for (std::uint64_t a = 0; a < (1ULL << opf.bits); ++a) {
        for (std::uint64_t b = 0; b < (1ULL << opf.bits); ++b) {
          const std::uint64_t p = num::multiply(a, b, operand_, product_).bits;
          int_vector(a, b, semi_random_int(accf, acc_c, rng_), p);
        }
      }
    }
    for (std::uint64_t i = 0; i < random_vectors; ++i) {
      const std::uint64_t a = semi_random_int(opf, op_c, rng_);
      const std::uint64_t b = semi_random_int(opf, op_c, rng_);
      const std::uint64_t p =
          rng_.chance(50) ? num::multiply(a, b, operand_, product_).bits : semi_random_int(prodf, prod_c, rng_);
      int_vector(a, b, semi_random_int(accf, acc_c, rng_), p);
    }
  }

  // --- the clocked PE ---------------------------------------------------------

  void tick() {
    top_.clk = 0;
    top_.eval();
    top_.clk = 1;
    top_.eval();
  }

  void run_pe(std::uint64_t ops) {
    struct Expected {
      std::uint64_t bits;
      num::Events sum_events, product_events;
      std::string inputs;
    };
    std::deque<Expected> pending;
    const bool is_int = cfg_.is_int;
    const std::optional<Format> pe_product =
        (!is_int && cfg_.pe_rounded) ? std::optional<Format>(product_) : std::nullopt;

    std::vector<std::uint64_t> op_c;
    if (is_int) op_c = int_corners(std::get<IntFormat>(operand_));
    else op_c = float_corners(op_f());

    *p_.pe_ctl = 0;  // reset
    for (int i = 0; i < 3; ++i) tick();
    std::uint64_t acc_model = 0;
    std::uint64_t issued = 0, cycles = 0;
    bool first = true;
    while (issued < ops || !pending.empty()) {
      const bool valid = issued < ops && rng_.chance(85);
      std::uint64_t ctl = 1;
      if (valid) {
        // Operands: mostly ordinary values (the sum then grows, swamps and
        // cancels as real dot products do), some edge encodings.
        std::uint64_t a = 0, b = 0;
        if (is_int) {
          const auto& f = std::get<IntFormat>(operand_);
          a = semi_random_int(f, op_c, rng_);
          b = semi_random_int(f, op_c, rng_);
        } else if (rng_.chance(80)) {
          const double sa = static_cast<double>(rng_.between(-1000, 1000)) / 256.0;
          const double sb = static_cast<double>(rng_.between(-1000, 1000)) / 256.0;
          a = num::quantize(sa, operand_).bits;
          b = num::quantize(sb, operand_).bits;
        } else {
          a = semi_random(op_f(), op_c, rng_);
          b = semi_random(op_f(), op_c, rng_);
        }
        const bool clear = first || rng_.chance(3);
        first = false;
        const std::uint64_t key = rng_.next();
        if (clear) acc_model = 0;
        const num::MacResult r = num::mac(acc_model, acc_, a, b, operand_, pe_product, key);
        pending.push_back({r.bits, r.sum_events, r.product_events,
                           hex_inputs({{"acc", acc_model}, {"a", a}, {"b", b}, {"key", key}})});
        acc_model = r.bits;
        ctl |= 2u | (clear ? 4u : 0u);
        *p_.pe_a = a;
        *p_.pe_b = b;
        if (!is_int) {
          const std::uint32_t r_prod = num::sr_draw(prod_f().sr_seed, num::product_key(key));
          const std::uint32_t r_acc = num::sr_draw(acc_f().sr_seed, key);
          *p_.pe_sr = (static_cast<std::uint64_t>(r_acc) << 32) | r_prod;
        }
        ++issued;
      }
      *p_.pe_ctl = ctl;
      tick();
      ++cycles;
      const std::uint64_t status = *p_.pe_status;
      if ((status >> 16) & 1) {
        ++stats_.vectors;
        if (pending.empty()) {
          fail("pe", "out_valid without an operation", 0, 0, *p_.pe_acc, 0);
          break;
        }
        const Expected e = pending.front();
        pending.pop_front();
        const auto acc_ev = static_cast<num::Events>(status & 0x1f);
        const auto prod_ev = static_cast<num::Events>((status >> 8) & 0x1f);
        if (*p_.pe_acc != e.bits || acc_ev != e.sum_events) {
          fail("pe acc", e.inputs, e.bits, e.sum_events, *p_.pe_acc, acc_ev);
        } else if (!is_int && prod_ev != e.product_events) {
          fail("pe product events", e.inputs, 0, e.product_events, 0, prod_ev);
        }
      }
      if (cycles > 4 * ops + 100) {
        fail("pe", "pipeline stalled", 0, 0, 0, 0);
        break;
      }
    }
    *p_.pe_ctl = 1;
    std::printf("%s: pe %" PRIu64 " operations in %" PRIu64 " cycles\n", cfg_.name.c_str(), issued, cycles);
  }

  Vharness& top_;
  const HarnessConfig& cfg_;
  const HarnessPorts& p_;
  std::uint64_t seed_;
  Rng rng_;
  Format operand_, product_, acc_;
  Stats stats_;
};

std::uint64_t parse_u64(const char* s, const char* flag) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s, &end, 0);
  if (end == s || *end != '\0') {
    std::fprintf(stderr, "rtl_harness: %s '%s' is not a number\n", flag, s);
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  auto context = std::make_unique<VerilatedContext>();
  context->commandArgs(argc, argv);
  auto top = std::make_unique<Vharness>(context.get());
  const std::vector<HarnessConfig> configs = harness_configs(top.get());

  std::string name;
  std::uint64_t vectors = 1000000;
  std::uint64_t pe_ops = 100000;
  std::uint64_t seed = 1;
  if (const char* env = std::getenv("ACCSIM_RTL_SEED")) seed = parse_u64(env, "ACCSIM_RTL_SEED");
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const char* flag) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "rtl_harness: %s needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--config") name = value("--config");
    else if (arg == "--vectors") vectors = parse_u64(value("--vectors"), "--vectors");
    else if (arg == "--pe-ops") pe_ops = parse_u64(value("--pe-ops"), "--pe-ops");
    else if (arg == "--seed") seed = parse_u64(value("--seed"), "--seed");
    else if (arg == "--list") {
      for (const auto& c : configs) {
        std::printf("%-16s %s x %s -> %s -> %s (pe %s)\n", c.name.c_str(), c.operand.c_str(), c.operand.c_str(),
                    c.product.c_str(), c.accumulator.c_str(), c.pe_rounded ? "rounded" : "fused");
      }
      return 0;
    } else {
      std::fprintf(stderr, "rtl_harness: unknown argument '%s' (expected --config NAME, --vectors N, --seed S, "
                           "--pe-ops N, --list)\n", arg.c_str());
      return 2;
    }
  }
  const auto it = std::find_if(configs.begin(), configs.end(), [&](const HarnessConfig& c) { return c.name == name; });
  if (it == configs.end()) {
    std::fprintf(stderr, "rtl_harness: unknown configuration '%s'; --list shows them\n", name.c_str());
    return 2;
  }
  Checker checker(*top, *it, seed);
  const int rc = checker.run(vectors, pe_ops);
  top->final();
  return rc;
}
