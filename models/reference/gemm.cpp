#include "models/reference/gemm.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <immintrin.h>

#include "models/numerics/arith.hpp"
#include "models/numerics/fast.hpp"
#include "models/reference/fast_plan.hpp"
#include "models/reference/lanes_f32.hpp"
#include "models/reference/parallel.hpp"

namespace accsim::ref {

using num::EventCounts;
using num::Format;
using num::Rounding;
namespace fast = num::fast;

std::optional<Scaling> parse_scaling(std::string_view text) {
  for (Scaling s : {Scaling::none, Scaling::tensor, Scaling::channel, Scaling::pow2}) {
    if (text == to_string(s)) return s;
  }
  return std::nullopt;
}

std::string_view to_string(Scaling s) {
  switch (s) {
    case Scaling::none: return "none";
    case Scaling::tensor: return "tensor";
    case Scaling::channel: return "channel";
    case Scaling::pow2: return "pow2";
  }
  return "?";
}

// --- quantization: quantize.cpp -------------------------------------------------

// --- the general path: one output element at a time through num::mac ---------

namespace {

struct ElementCounts {
  EventCounts product, accumulate, merge;
};

struct Plan {
  const QuantizedOperand& a;
  const QuantizedOperand& b;
  const GemmConfig& config;
  std::size_t m, k, n;
  std::size_t chunk;   // == k for sequential
  std::size_t chunks;  // number of chunks
  const Format& c_format;
};

// Follows config.order literally; every rounding is num::mac or num::add.
std::uint64_t dot_general(const Plan& p, std::size_t i, std::size_t j, ElementCounts& counts) {
  const GemmConfig& cfg = p.config;
  const Format& acc = cfg.accumulator;
  const std::size_t steps = p.k + p.chunks;
  std::uint64_t merged = 0;  // +0 in the merge format (all formats encode +0 as 0)
  for (std::size_t c = 0; c < p.chunks; ++c) {
    std::uint64_t sum = 0;  // each chunk starts from +0
    const std::size_t k_end = std::min(p.k, (c + 1) * p.chunk);
    for (std::size_t kk = c * p.chunk; kk < k_end; ++kk) {
      const num::MacResult r = num::mac(sum, acc, p.a.bits[i * p.k + kk], p.b.bits[kk * p.n + j], cfg.multiplier,
                                        cfg.product, sr_key(i, j, kk, p.n, steps));
      if (cfg.product) counts.product.record(r.product_events);
      counts.accumulate.record(r.sum_events);
      sum = r.bits;
    }
    if (cfg.order.sequential()) return sum;
    const num::Result r = num::add(merged, p.c_format, sum, acc, sr_key(i, j, p.k + c, p.n, steps));
    counts.merge.record(r.events);
    merged = r.bits;
  }
  return merged;
}

// --- the fast path: kPanel output columns at a time in double lanes ----------

constexpr int kVectors = 4;                  // independent 4-lane accumulators per panel
constexpr std::size_t kPanel = 4 * kVectors;  // columns per panel
using L4 = fast::Lanes<4>;

// Whether every value is finite: x - x is 0 for a finite x and NaN for an
// infinity or a NaN, and a NaN stays in a sum. Four 2-lane sums (every
// x86-64 has them) instead of a branch per element: the plans scan both
// operands of every GEMM.
bool all_finite(const std::vector<double>& v) {
  typedef double D2 __attribute__((vector_size(16)));
  D2 sum[4] = {};
  std::size_t i = 0;
  for (; i + 8 <= v.size(); i += 8) {
    for (std::size_t j = 0; j < 4; ++j) {
      D2 x;
      std::memcpy(&x, &v[i + 2 * j], sizeof x);
      sum[j] += x - x;
    }
  }
  double total = 0;
  for (; i < v.size(); ++i) total += v[i] - v[i];
  for (const D2& s : sum) total += s[0] + s[1];
  return total == 0;
}

}  // namespace

bool finite_values(const num::Format& multiplier, const QuantizedOperand& q) {
  // Every encoding of a format without infinities or NaNs (integers too) decodes to a finite value.
  const auto* f = std::get_if<num::FloatFormat>(&multiplier);
  return f == nullptr || !f->has_nan() || all_finite(q.values);
}

std::optional<FastPlan> plan_fast(const GemmConfig& cfg, const Format& c_format, const QuantizedOperand& a,
                                  const QuantizedOperand& b) {
  const auto* mul = std::get_if<num::FloatFormat>(&cfg.multiplier);
  const auto* acc = std::get_if<num::FloatFormat>(&cfg.accumulator);
  if (mul == nullptr || acc == nullptr || !cfg.allow_fast_path) return std::nullopt;
  if (!finite_values(cfg.multiplier, a) || !finite_values(cfg.multiplier, b)) return std::nullopt;
  fast::Span addend = fast::product_span(fast::span_of(*mul), fast::span_of(*mul));
  if (!fast::fits_double(addend)) return std::nullopt;
  FastPlan plan;
  if (cfg.product) {
    const auto* prod = std::get_if<num::FloatFormat>(&*cfg.product);
    if (prod == nullptr || !(plan.product = fast::Rounder::make(*prod, addend))) return std::nullopt;
    addend = fast::span_of(*prod);
  }
  const auto accumulate = fast::Rounder::make(*acc, fast::sum_span(fast::span_of(*acc), addend));
  if (!accumulate) return std::nullopt;
  plan.accumulate = *accumulate;
  if (!cfg.order.sequential()) {
    const auto* merge = std::get_if<num::FloatFormat>(&c_format);
    if (merge == nullptr) return std::nullopt;
    plan.merge = fast::Rounder::make(*merge, fast::sum_span(fast::span_of(*merge), fast::span_of(*acc)));
    if (!plan.merge) return std::nullopt;
  }
  return plan;
}

std::optional<FastPlan> plan_any_lanes(const GemmConfig& cfg, const Format& c_format, const QuantizedOperand& a,
                                   const QuantizedOperand& b) {
  if (!cfg.allow_fast_path) return std::nullopt;
  if (!finite_values(cfg.multiplier, a) || !finite_values(cfg.multiplier, b)) return std::nullopt;
  // Products exact in double: two significands of at most 26 bits (e5m2's
  // products span 64 bits, but each has 6), or integers that fit, inside
  // double's normal range.
  fast::Span addend = fast::product_span(fast::span_of(cfg.multiplier), fast::span_of(cfg.multiplier));
  if (addend.lsb < -1022 || addend.msb > 1021) return std::nullopt;
  if (const auto* mul = std::get_if<num::FloatFormat>(&cfg.multiplier)) {
    if (2 * (mul->man_bits + 1) > 53) return std::nullopt;
  } else if (!fast::fits_double(addend)) {
    return std::nullopt;
  }
  FastPlan plan;
  if (cfg.product) {
    // (A lone product is exact, and the kernel rounds it as make_lanes'
    // wide rounders allow, whatever the span.)
    if (!std::holds_alternative<num::FloatFormat>(*cfg.product)) return std::nullopt;
    if (!(plan.product = fast::Rounder::make_lanes(*cfg.product, addend))) return std::nullopt;
    addend = fast::span_of(*cfg.product);
  }
  const auto accumulate = fast::Rounder::make_lanes(cfg.accumulator, fast::sum_span(fast::span_of(cfg.accumulator), addend));
  if (!accumulate) return std::nullopt;
  plan.accumulate = *accumulate;
  if (!cfg.order.sequential()) {
    plan.merge = fast::Rounder::make_lanes(c_format, fast::sum_span(fast::span_of(c_format), fast::span_of(cfg.accumulator)));
    if (!plan.merge) return std::nullopt;
  }
  return plan;
}

namespace {

// Per-lane event tallies of one kind of rounding over a whole panel, summed
// over its kVectors vectors (a mask lane is -1 when true, so subtracting
// counts). One set per kind keeps the tallies in registers. Padding columns
// (zero columns of the packed B) only ever hold +-0 products and sums of +-0
// (2^emin in panel_kernel_common, plus +-0), which round exactly and raise
// no event, so they add to `exact` alone and drain takes them out again.
struct LaneTally {
  L4::I overflow{}, underflow{}, swamp{}, exact{};
  ACCSIM_INLINE void add(const fast::Rounded<4>& r) {
    overflow -= r.overflow;
    underflow -= r.underflow;
    exact -= r.exact;
  }
  // Adds the panel's `valid_cols` real columns, each of which ran
  // ops_per_col operations, into `counts`.
  void drain(EventCounts& counts, std::size_t valid_cols, std::uint64_t ops_per_col) const {
    std::uint64_t ov = 0, un = 0, sw = 0, ex = 0;
    for (int l = 0; l < 4; ++l) {
      ov += static_cast<std::uint64_t>(overflow[l]);
      un += static_cast<std::uint64_t>(underflow[l]);
      sw += static_cast<std::uint64_t>(swamp[l]);
      ex += static_cast<std::uint64_t>(exact[l]);
    }
    const std::uint64_t ops = valid_cols * ops_per_col;
    const std::uint64_t padding_ops = (kPanel - valid_cols) * ops_per_col;  // all exact
    counts.ops += ops;
    counts.overflow += ov;
    counts.underflow += un;
    counts.swamp += sw;
    counts.inexact += ops - (ex - padding_ops);
  }
};

// Unaligned vector loads and stores that leave the register variables'
// addresses untaken (a memcpy of a local array keeps it in memory).
typedef double UnalignedD __attribute__((vector_size(32), aligned(8), may_alias));
ACCSIM_INLINE L4::D load(const double* p) { return *reinterpret_cast<const UnalignedD*>(p); }
ACCSIM_INLINE void store(double* p, L4::D v) { *reinterpret_cast<UnalignedD*>(p) = v; }
typedef std::uint64_t UnalignedU __attribute__((vector_size(32), aligned(8), may_alias));
ACCSIM_INLINE L4::U load(const std::uint64_t* p) { return *reinterpret_cast<const UnalignedU*>(p); }

struct PanelJob {
  const double* a_row;  // k values
  const double* panel;  // k rows of kPanel values
  std::size_t k, chunk;
  const FastPlan* rounders;
  double* chunk_sums;  // out: ceil(k / chunk) rows of kPanel chunk sums (one row: the results)
  LaneTally* tallies;  // out: [2]: product, accumulate
  const double* init;  // kPanel starting values of panel_kernel_common's sums: +0, 2^emin in padding columns
  // Stochastic rounding (panel_kernel_lanes): the key of the panel's first
  // column at step 0, and the keys' stride between columns (sr_key's steps).
  std::uint64_t sr_key0 = 0, sr_steps = 0;
};

// Merges the chunk sums of each column in order (chunk 0 first) into the
// merge format, starting from +0. A chunked order merges even a single chunk
// (k <= chunk), as the general path does.
template <Rounding Mode, fast::Ftz F>
ACCSIM_INLINE void merge_chunks(const fast::Rounder& r, const double* sums, std::size_t chunks, double* out,
                                LaneTally& tally) {
  L4::D running[kVectors] = {};
  for (std::size_t c = 0; c < chunks; ++c) {
    for (int v = 0; v < kVectors; ++v) {
      L4::I swamp;
      const fast::Rounded<4> m = fast::accumulate_lanes<Mode, 4, F>(r, running[v], load(sums + c * kPanel + 4 * v), &swamp);
      running[v] = m.value;
      tally.add(m);
      tally.swamp -= swamp;
    }
  }
  for (int v = 0; v < kVectors; ++v) store(out + 4 * v, running[v]);
}

// Whether any lane of a mask is set: one vptest in the AVX2 kernels.
//
// The AVX2 helpers take their vectors by reference: a 256-bit vector passed
// by value between a function built for AVX and one built without has two
// calling conventions (clang rejects the call, GCC warns). The templates
// that call them are built without AVX and run only inlined into the
// target("avx2") entry points (panel_avx2, merge_avx2), where the compiler
// inlines these too and the references vanish.
__attribute__((target("avx2"))) inline bool any_lane_avx2(const L4::I& mask) {
  return !_mm256_testz_si256(reinterpret_cast<__m256i>(mask), reinterpret_cast<__m256i>(mask));
}
template <bool kAvx2>
ACCSIM_INLINE bool any_lane(L4::I mask) {
  if constexpr (kAvx2) {
    return any_lane_avx2(mask);
  } else {
    return (mask[0] | mask[1] | mask[2] | mask[3]) != 0;
  }
}

// Whether any lane is fast::special_lanes: the same test, with the zero
// exclusion folded into vptest (its carry flag is set iff mask & ~zero is
// all zero) in the AVX2 kernels.
__attribute__((target("avx2"))) inline bool any_outside_avx2(const L4::I& outside, const L4::I& zero) {
  return !_mm256_testc_si256(reinterpret_cast<__m256i>(zero), reinterpret_cast<__m256i>(outside));
}
template <bool kAvx2>
ACCSIM_INLINE bool any_special(const fast::Rounder& r, L4::U a) {
  if constexpr (kAvx2) {
    const L4::I outside = fast::outside_normal_range<4>(r, a), zero = (L4::I)(a == 0);
    return any_outside_avx2(outside, zero);
  } else {
    return any_lane<false>(fast::special_lanes<4>(r, a));
  }
}

// merge_chunks for nearest-even and toward-zero: fast::round_common where
// no lane is special, round_lanes on the rest (as panel_kernel_common; the
// exact test, since zero sums are common here: padding columns, and chunk
// sums of zero products).
template <Rounding Mode, fast::Ftz F, bool kAvx2>
ACCSIM_INLINE void merge_chunks_common(const fast::Rounder& r, const double* sums, std::size_t chunks, double* out,
                                       LaneTally& tally) {
  constexpr std::uint64_t kMagnitude = ~(std::uint64_t{1} << 63);
  L4::I exact{}, swamp{};
  const auto step = [&](L4::D& running, const L4::D addend) __attribute__((always_inline)) {
    const L4::U u = (L4::U)(running + addend), ua = u & kMagnitude;
    if (any_special<kAvx2>(r, ua)) [[unlikely]] {
      L4::I sw;
      const fast::Rounded<4> m = fast::accumulate_lanes<Mode, 4, F>(r, running, addend, &sw);
      tally.overflow -= m.overflow;
      tally.underflow -= m.underflow;
      exact -= m.exact;
      swamp -= sw;
      running = m.value;
    } else {
      // As panel_kernel_common's commit.
      const L4::U bits = fast::round_common<Mode, 4>(r, u, ua);
      const L4::I e = (L4::I)(bits == u);
      exact -= e;
      swamp -= (L4::I)(bits == (L4::U)(running)) & ~e;
      running = (L4::D)(bits);
    }
  };
  L4::D run0{}, run1{}, run2{}, run3{};
  for (std::size_t c = 0; c < chunks; ++c) {
    const double* row = sums + c * kPanel;
    step(run0, load(row));
    step(run1, load(row + 4));
    step(run2, load(row + 8));
    step(run3, load(row + 12));
  }
  store(out, run0);
  store(out + 4, run1);
  store(out + 8, run2);
  store(out + 12, run3);
  tally.exact += exact;
  tally.swamp += swamp;
}

// The general kernel: every rounding through round_lanes, branch-free.
// AccFtz and ProdFtz fix flush-to-zero at compile time where select_kernel
// instantiates them (Ftz::runtime reads the rounder). Chunk sums go to
// memory and are merged afterwards (merge_chunks), which keeps the merge's
// state out of the registers the hot loop needs.
template <Rounding AccMode, fast::Ftz AccFtz, Rounding ProdMode, fast::Ftz ProdFtz, bool kHasProduct, bool kAvx2>
ACCSIM_INLINE void panel_kernel(const PanelJob& job) {
  fast::Rounder acc_r = job.rounders->accumulate;
  fast::Rounder prod_r = kHasProduct ? *job.rounders->product : fast::Rounder{};
  // Tallies live in locals (registers) for the whole panel; written back once.
  LaneTally product_tally, acc_tally;
  const auto step = [&](L4::D& acc, L4::D p) __attribute__((always_inline)) {
    if constexpr (kHasProduct) {
      const fast::Rounded<4> pr = fast::round_lanes<ProdMode, 4, ProdFtz>(prod_r, p);
      p = pr.value;
      product_tally.add(pr);
    }
    L4::I swamp;
    const fast::Rounded<4> s = fast::accumulate_lanes<AccMode, 4, AccFtz>(acc_r, acc, p, &swamp);
    acc = s.value;
    acc_tally.add(s);
    acc_tally.swamp -= swamp;
  };
  double* const sums = job.chunk_sums;
  std::size_t chunks = 0;
  for (std::size_t c0 = 0; c0 < job.k; c0 += job.chunk, ++chunks) {
    const std::size_t c1 = std::min(job.k, c0 + job.chunk);
    // Four named accumulators rather than an array, which GCC would leave in
    // memory (it scalarizes arrays before it unrolls the loop over them).
    L4::D acc0{}, acc1{}, acc2{}, acc3{};
    for (std::size_t kk = c0; kk < c1; ++kk) {
      // The rounders' constants are re-read from memory in every step (an
      // empty asm that may change them): with 16 vector registers, GCC would
      // otherwise keep the constants and spill the accumulators, which puts a
      // store and a reload in every step's dependency chain.
      asm volatile("" : "+m"(acc_r), "+m"(prod_r));
      // Broadcast by initializer: adding to a zero vector would turn -0 into +0
      // (and a -0 operand's products into +0).
      const double av = job.a_row[kk];
      const L4::D a = {av, av, av, av};
      const double* brow = job.panel + kk * kPanel;
      // Products are exact: the plan checked their span.
      step(acc0, a * load(brow));
      step(acc1, a * load(brow + 4));
      step(acc2, a * load(brow + 8));
      step(acc3, a * load(brow + 12));
    }
    double* out = sums + chunks * kPanel;
    store(out, acc0);
    store(out + 4, acc1);
    store(out + 8, acc2);
    store(out + 12, acc3);
  }
  job.tallies[0] = product_tally;
  job.tallies[1] = acc_tally;
}

// For the hot loop of panel_kernel_common, where every lane is a non-zero
// normal no larger than the format's largest value once outside() is false
// in every lane: fast::outside_normal_range, and fast::round_common on x's
// bits u alone. Nearest-even lets the FPU round, as round_lanes does:
// adding C = +-2^(e + drop), of x's sign, moves the format's last place onto
// the double's last place, and subtracting C again is exact (a -0 would come
// back as +0, hence the precondition); four operations where round_common's
// integer rounding takes five. The constants are whole vectors in memory,
// which the loop reads as memory operands (see its asm statement), leaving
// the vector registers to the accumulators and tallies.
template <Rounding Mode>
struct alignas(32) HotRounder {
  L4::U magnitude, range_offset, sign_exponent, exponent_step, keep;
  L4::I range_limit;
  L4::U unit, frac_shift;  // for stochastic rounding (see round_sr)
  explicit HotRounder(const fast::Rounder& r)
      : magnitude(L4::U{} + ~(std::uint64_t{1} << 63)),
        range_offset(L4::U{} + r.range_offset),
        sign_exponent(L4::U{} + 0xfff0000000000000ULL),
        exponent_step(L4::U{} + (static_cast<std::uint64_t>(r.drop) << 52)),
        keep(L4::U{} + ~r.drop_mask),
        range_limit(L4::I{} + r.range_limit),
        unit(L4::U{} + (r.drop_mask + 1)),
        frac_shift(L4::U{} + static_cast<std::uint64_t>(64 - r.drop)) {}
  ACCSIM_INLINE L4::I outside(L4::U u) const { return (L4::I)((u & magnitude) + range_offset) > range_limit; }
  ACCSIM_INLINE L4::U round(L4::U u) const {
    if constexpr (Mode == Rounding::rtz) {
      return u & keep;
    } else {
      const L4::D c = (L4::D)((u & sign_exponent) + exponent_step);
      return (L4::U)(((L4::D)(u) + c) - c);
    }
  }
  // Stochastic rounding of an exact non-zero normal u no larger than the
  // largest value (see fast::round_sr_common), with the draw at the top of
  // the word: the discarded bits moved to the top by one vpsllvq; with
  // AVX-512, an unsigned compare into a mask and a masked add.
  template <bool kAvx512>
  ACCSIM_INLINE L4::U round_sr(L4::U u, L4::U draw_high) const;
};
// bits += unit where x > y (unsigned). By reference, as the AVX2 helpers
// (see any_lane_avx2).
__attribute__((target("avx2,avx512f,avx512dq,avx512vl"))) inline void add_if_above_avx512(L4::U& bits, const L4::U& x,
                                                                                         const L4::U& y,
                                                                                         const L4::U& unit) {
  const __mmask8 above = _mm256_cmpgt_epu64_mask(reinterpret_cast<__m256i>(x), reinterpret_cast<__m256i>(y));
  bits = reinterpret_cast<L4::U>(_mm256_mask_add_epi64(reinterpret_cast<__m256i>(bits), above,
                                                       reinterpret_cast<__m256i>(bits), reinterpret_cast<__m256i>(unit)));
}
template <Rounding Mode>
template <bool kAvx512>
ACCSIM_INLINE L4::U HotRounder<Mode>::round_sr(L4::U u, L4::U draw_high) const {
  if constexpr (kAvx512) {
    L4::U bits = u & keep;
    add_if_above_avx512(bits, u << frac_shift, draw_high, unit);
    return bits;
  } else {
    const L4::U up = (L4::U)((u << frac_shift) > draw_high);
    return (u & keep) + (up & unit);
  }
}

// The kernel for nearest-even and toward-zero (products, if rounded, too).
// Each k-step first tests its four sums with one range test per vector,
// OR-ed into a single vptest: when every lane is a non-zero normal no larger
// than the format's largest value, fast::round_normal rounds them, which is
// exactly what round_lanes gives, without overflow or underflow. Otherwise
// (a tiny or too large lane, or merely a zero sum, which the range test
// cannot tell from a tiny one) the step leaves the inner loop: vectors with
// a fast::special_lanes lane are redone through round_lanes, exactly as the
// general kernel does, and the others (zeros only) take round_common. The
// common path has no overflow or underflow to count, so those tallies live
// in memory (job.tallies) and only the exact and swamp counts take
// registers. Results and counts are the general kernel's; tests compare both
// with the general path.
//
// Padding columns start from 2^emin (job.init) rather than +0, so that
// their sums (2^emin plus zero products) never send a step out of the inner
// loop; they stay exact and raise no event, and the caller clears them
// before merging (see LaneTally). Rounded products (kHasProduct) take the
// exact test, zeros included, since zero products are common.
//
// Everything else stays outside the inner loop too, so that its registers
// belong to its own chains: with the fallback inside it, GCC kept the four
// accumulators on the stack, and a store and a reload joined every step's
// dependency chain.
template <Rounding AccMode, fast::Ftz AccFtz, Rounding ProdMode, fast::Ftz ProdFtz, bool kHasProduct, bool kAvx2>
ACCSIM_INLINE void panel_kernel_common(const PanelJob& job) {
  const fast::Rounder acc_r = job.rounders->accumulate;
  const fast::Rounder prod_r = kHasProduct ? *job.rounders->product : fast::Rounder{};
  constexpr std::uint64_t kMagnitude = ~(std::uint64_t{1} << 63);
  LaneTally& product_tally = job.tallies[0];
  LaneTally& acc_tally = job.tallies[1];
  product_tally = LaneTally{};
  acc_tally = LaneTally{};
  L4::I product_exact{}, acc_exact{};
  // Swamped or exact lanes, counted together ((bits == acc) | (bits == u)
  // in the common path): swamp is this count less the exact one, since a
  // swamped lane is inexact. One operation fewer than bits == acc & ~exact,
  // which GCC turns into three.
  L4::I acc_swamp_or_exact{};
  HotRounder<AccMode> hot(acc_r);
  // One vector of one step through round_lanes (the fallback).
  const auto slow_step = [&](L4::D& acc, const L4::D p) __attribute__((always_inline)) {
    L4::D pv = p;
    if constexpr (kHasProduct) {
      const fast::Rounded<4> pr = fast::round_lanes<ProdMode, 4, ProdFtz>(prod_r, p);
      pv = pr.value;
      product_tally.overflow -= pr.overflow;
      product_tally.underflow -= pr.underflow;
      product_exact -= pr.exact;
    }
    L4::I swamp;
    const fast::Rounded<4> s = fast::accumulate_lanes<AccMode, 4, AccFtz>(acc_r, acc, pv, &swamp);
    acc_tally.overflow -= s.overflow;
    acc_tally.underflow -= s.underflow;
    acc_exact -= s.exact;
    acc_swamp_or_exact -= swamp | s.exact;
    acc = s.value;
  };
  // slow_step with its overflow and underflow tallies in registers, for the
  // first step of every chunk (slow_step's go to memory, which would put a
  // store and a reload between one vector's tally and the next).
  L4::I first_prod_over{}, first_prod_under{}, first_acc_over{}, first_acc_under{};
  const auto first_step = [&](L4::D& acc, const L4::D p) __attribute__((always_inline)) {
    L4::D pv = p;
    if constexpr (kHasProduct) {
      const fast::Rounded<4> pr = fast::round_lanes<ProdMode, 4, ProdFtz>(prod_r, p);
      pv = pr.value;
      first_prod_over -= pr.overflow;
      first_prod_under -= pr.underflow;
      product_exact -= pr.exact;
    }
    L4::I swamp;
    const fast::Rounded<4> s = fast::accumulate_lanes<AccMode, 4, AccFtz>(acc_r, acc, pv, &swamp);
    first_acc_over -= s.overflow;
    first_acc_under -= s.underflow;
    acc_exact -= s.exact;
    acc_swamp_or_exact -= swamp | s.exact;
    acc = s.value;
  };
  // The common path's product, rounded in place (when products are
  // rounded); sets `exact` and returns whether some lane is special (exact
  // test: zeros are not).
  const auto round_product = [&](L4::D& p, L4::I& exact) __attribute__((always_inline)) {
    if constexpr (kHasProduct) {
      const L4::U pu = (L4::U)(p), pa = pu & kMagnitude;
      const L4::U p_bits = fast::round_common<ProdMode, 4>(prod_r, pu, pa);
      exact = (L4::I)(p_bits == pu);
      p = (L4::D)(p_bits);
      return any_special<kAvx2>(prod_r, pa);
    } else {
      (void)p;
      (void)exact;
      return false;
    }
  };
  // Commits one vector's rounded sum `bits` of acc + addend = u. Swamped:
  // the accumulator kept its bits though the sum differs from them. (The
  // sum is exact, so with a non-zero addend it differs from acc and a kept
  // accumulator is inexact; with a zero addend it is acc itself, or +0
  // from -0 + +0, which does not keep -0: either way no swamp, as
  // accumulate_lanes has it.)
  const auto commit = [&](L4::D& acc, const L4::I addend_exact, const L4::U u, const L4::U bits)
                          __attribute__((always_inline)) {
    if constexpr (kHasProduct) product_exact -= addend_exact;
    const L4::I exact = (L4::I)(bits == u);
    acc_exact -= exact;
    acc_swamp_or_exact -= (L4::I)(bits == (L4::U)(acc)) | exact;
    acc = (L4::D)(bits);
  };
  const L4::D init0 = load(job.init), init1 = load(job.init + 4), init2 = load(job.init + 8),
              init3 = load(job.init + 12);
  double* const sums = job.chunk_sums;
  std::size_t chunks = 0;
  for (std::size_t c0 = 0; c0 < job.k; c0 += job.chunk, ++chunks) {
    const std::size_t c1 = std::min(job.k, c0 + job.chunk);
    L4::D acc0 = init0, acc1 = init1, acc2 = init2, acc3 = init3;  // named: see panel_kernel
    // The first step takes round_lanes, branch-free: its sum is a lone
    // product, tiny often enough (an underflow in about half the first
    // steps of the benchmark's chunks) that the range test would mispredict.
    {
      const double av = job.a_row[c0];
      const L4::D a = {av, av, av, av};
      const double* brow = job.panel + c0 * kPanel;
      first_step(acc0, a * load(brow));
      first_step(acc1, a * load(brow + 4));
      first_step(acc2, a * load(brow + 8));
      first_step(acc3, a * load(brow + 12));
    }
    std::size_t kk = c0 + 1;
    for (;;) {
      for (; kk < c1; ++kk) {
        // Broadcast by initializer: adding to a zero vector would turn -0 into +0
        // (and a -0 operand's products into +0).
        const double av = job.a_row[kk];
        const L4::D a = {av, av, av, av};
        const double* brow = job.panel + kk * kPanel;
        // Products are exact: the plan checked their span.
        L4::D p0 = a * load(brow), p1 = a * load(brow + 4), p2 = a * load(brow + 8), p3 = a * load(brow + 12);
        L4::I e0{}, e1{}, e2{}, e3{};
        bool special = false;
        if constexpr (kHasProduct) {
          // All four rounded (no short circuit), then one branch.
          const bool s0 = round_product(p0, e0), s1 = round_product(p1, e1), s2 = round_product(p2, e2),
                     s3 = round_product(p3, e3);
          special = s0 | s1 | s2 | s3;
        }
        // Exact, and for these modes the FPU's +0 for an exact zero sum is the
        // format's too (as in accumulate_lanes).
        const L4::U u0 = (L4::U)(acc0 + p0), u1 = (L4::U)(acc1 + p1), u2 = (L4::U)(acc2 + p2),
                    u3 = (L4::U)(acc3 + p3);
        // Constants from memory: with 16 vector registers, GCC would
        // otherwise keep them and spill the accumulators or tallies.
        asm volatile("" : "+m"(hot));
        const L4::I outside = hot.outside(u0) | hot.outside(u1) | hot.outside(u2) | hot.outside(u3);
        if (special || any_lane<kAvx2>(outside)) [[unlikely]] break;
        commit(acc0, e0, u0, hot.round(u0));
        commit(acc1, e1, u1, hot.round(u1));
        commit(acc2, e2, u2, hot.round(u2));
        commit(acc3, e3, u3, hot.round(u3));
      }
      if (kk == c1) break;
      // Step kk has a lane outside the normal range: each vector with a
      // special lane the general way, the others (zero sums) by round_common.
      const double av = job.a_row[kk];
      const L4::D a = {av, av, av, av};
      const double* brow = job.panel + kk * kPanel;
      const auto vector_step = [&](L4::D& acc, const L4::D p) __attribute__((always_inline)) {
        L4::D addend = p;
        L4::I exact{};
        const bool special = round_product(addend, exact);
        const L4::U u = (L4::U)(acc + addend), ua = u & kMagnitude;
        if (special || any_special<kAvx2>(acc_r, ua)) {
          slow_step(acc, p);
        } else {
          commit(acc, exact, u, fast::round_common<AccMode, 4>(acc_r, u, ua));
        }
      };
      vector_step(acc0, a * load(brow));
      vector_step(acc1, a * load(brow + 4));
      vector_step(acc2, a * load(brow + 8));
      vector_step(acc3, a * load(brow + 12));
      ++kk;
    }
    double* out = sums + chunks * kPanel;
    store(out, acc0);
    store(out + 4, acc1);
    store(out + 8, acc2);
    store(out + 12, acc3);
  }
  product_tally.overflow += first_prod_over;
  product_tally.underflow += first_prod_under;
  acc_tally.overflow += first_acc_over;
  acc_tally.underflow += first_acc_under;
  product_tally.exact = product_exact;
  acc_tally.exact = acc_exact;
  acc_tally.swamp = acc_swamp_or_exact - acc_exact;
}


// --- Every other format the lanes round exactly (plan_any_lanes) --------------
//
// Wide sums (fp32, bf16), stochastic rounding, formats whose overflow gives
// an infinity, integer accumulators: one branch-free kernel. Every sum goes
// through sum_to_odd (an exact sum comes back unchanged), products are
// rounded in the product's format, and stochastic rounding draws from the
// general path's keys (sr_key, product_key), so results and counts are the
// general path's. Overflow into an infinity is left to the caller (the
// lanes saturate; see accumulate_products). Padding columns start from +0
// and only ever hold +-0, exact and without events, as in panel_kernel.
//
// Kind: AccMode for a float accumulator, or kInteger; kAccPair for a
// stochastically rounded accumulator that takes TwoSum's pairs
// (fast::Rounder::sr_pair).
template <Rounding AccMode, bool kInteger, bool kHasProduct, Rounding ProdMode, bool kAccPair = false>
ACCSIM_INLINE void panel_kernel_lanes(const PanelJob& job) {
  fast::Rounder acc_r = job.rounders->accumulate;
  fast::Rounder prod_r = kHasProduct ? *job.rounders->product : fast::Rounder{};
  constexpr bool kAccSr = !kInteger && AccMode == Rounding::sr;
  constexpr bool kProdSr = kHasProduct && ProdMode == Rounding::sr;
  constexpr std::uint64_t kProductKey = 0x70726f64ULL;  // as num::product_key
  LaneTally product_tally, acc_tally;
  const auto step = [&](L4::D& acc, L4::D p, const L4::U key) __attribute__((always_inline)) {
    if constexpr (kHasProduct) {
      L4::U draw{};
      fast::Rounded<4> pr;
      if constexpr (kProdSr) {
        draw = fast::sr_draw_lanes<4>(prod_r, fast::mix64_lanes<4>(key ^ kProductKey));
        if (prod_r.sr_pair) {
          pr = fast::round_sr_pair_lanes<4>(prod_r, p, L4::D{}, draw);
        } else {
          pr = fast::round_lanes<ProdMode, 4, fast::Ftz::runtime, true>(prod_r, p, draw);
        }
      } else {
        pr = fast::round_lanes<ProdMode, 4, fast::Ftz::runtime, true>(prod_r, p, draw);
      }
      p = pr.value;
      product_tally.add(pr);
    }
    L4::I swamp;
    fast::Rounded<4> s;
    if constexpr (kInteger) {
      s = fast::accumulate_integer_lanes<4>(acc_r, acc, p, &swamp);
    } else {
      L4::U draw{};
      if constexpr (kAccSr) draw = fast::sr_draw_lanes<4>(acc_r, key);
      if constexpr (kAccPair) {
        s = fast::accumulate_sr_pair_lanes<4>(acc_r, acc, p, &swamp, draw);
      } else {
        s = fast::accumulate_lanes<AccMode, 4, fast::Ftz::runtime, true>(acc_r, acc, p, &swamp, draw);
      }
    }
    acc = s.value;
    acc_tally.add(s);
    acc_tally.swamp -= swamp;
  };
  // Keys of the four vectors' lanes at step 0 (used by stochastic rounding only).
  const std::uint64_t stride = job.sr_steps;
  const auto keys_at = [&](int v) {
    const std::uint64_t c = static_cast<std::uint64_t>(4 * v);
    return L4::U{job.sr_key0 + c * stride, job.sr_key0 + (c + 1) * stride, job.sr_key0 + (c + 2) * stride,
                 job.sr_key0 + (c + 3) * stride};
  };
  const L4::U key0 = keys_at(0), key1 = keys_at(1), key2 = keys_at(2), key3 = keys_at(3);
  double* const sums = job.chunk_sums;
  std::size_t chunks = 0;
  for (std::size_t c0 = 0; c0 < job.k; c0 += job.chunk, ++chunks) {
    const std::size_t c1 = std::min(job.k, c0 + job.chunk);
    L4::D acc0{}, acc1{}, acc2{}, acc3{};  // named: see panel_kernel
    for (std::size_t kk = c0; kk < c1; ++kk) {
      asm volatile("" : "+m"(acc_r), "+m"(prod_r));  // as in panel_kernel
      const double av = job.a_row[kk];
      const L4::D a = {av, av, av, av};
      const double* brow = job.panel + kk * kPanel;
      step(acc0, a * load(brow), key0 + kk);
      step(acc1, a * load(brow + 4), key1 + kk);
      step(acc2, a * load(brow + 8), key2 + kk);
      step(acc3, a * load(brow + 12), key3 + kk);
    }
    double* out = sums + chunks * kPanel;
    store(out, acc0);
    store(out + 4, acc1);
    store(out + 8, acc2);
    store(out + 12, acc3);
  }
  job.tallies[0] = product_tally;
  job.tallies[1] = acc_tally;
}

// Steps whose draws fill_draws_avx512 makes at a time (64 KiB).
constexpr std::size_t kDrawBlock = 512;

// Stochastic rounding's draws for a panel's kPanel columns at steps 0 .. k - 1,
// at the top of the word (fast::sr_draw_high_lanes), step-major: column j's
// key at step 0 is key0 + j * stride (sr_key), and the key grows by one a
// step.
__attribute__((target("avx2,avx512f,avx512dq,avx512vl"))) void fill_draws_avx512(std::uint64_t mixed_seed,
                                                                               std::uint64_t key0,
                                                                               std::uint64_t stride, std::size_t k,
                                                                               std::uint64_t* out) {
  using L8 = fast::Lanes<8>;
  typedef std::uint64_t Unaligned8 __attribute__((vector_size(64), aligned(8), may_alias));
  fast::Rounder r;
  r.sr_mixed_seed = mixed_seed;
  L8::U low{}, high{};
  for (int l = 0; l < 8; ++l) {
    low[l] = key0 + static_cast<std::uint64_t>(l) * stride;
    high[l] = key0 + static_cast<std::uint64_t>(l + 8) * stride;
  }
  for (std::size_t kk = 0; kk < k; ++kk) {
    const L8::U keys[2] = {low + kk, high + kk};
    L8::U draws[2];
    fast::sr_draws_high<8>(r, keys, draws, 2);
    *reinterpret_cast<Unaligned8*>(out + kk * kPanel) = draws[0];
    *reinterpret_cast<Unaligned8*>(out + kk * kPanel + 8) = draws[1];
  }
}

// panel_kernel_lanes for float accumulators in nearest-even, toward zero and
// stochastic rounding with exact products, the configurations of the
// baselines (fp32, bf16, fp16 ...): as panel_kernel_common, each k-step
// tests its four sums with one range test; where every lane is a non-zero
// normal no larger than the format's largest value, and (kWide) every sum
// is exact in double, HotRounder rounds them without overflow or underflow
// (stochastic rounding: HotRounder::round_sr, whose carry moves into the
// exponent and never past the largest value, which is on the grid). Other
// steps take accumulate_lanes (round-to-odd sums, or pairs). Padding
// columns start from 2^emin (job.init), as in panel_kernel_common, and a
// chunk's first step, a lone product, takes the same test as the others.
//
// Wide sums are nearly always exact in practice (an fp32 or bf16 sum and an
// e4m3 product lie within 53 bits of each other unless they are 2^30 apart),
// so the hot loop tests that instead of forming round-to-odd sums:
// s = fl(acc + p) is exact iff s - acc == p and s - p == acc (the
// difference with the larger operand is itself exact, Fast2Sum, and equals
// the other operand iff TwoSum's error is zero).
// kWide: a wide rounder (sums not always exact in double); kPair: its sums
// are rounded as TwoSum's pairs (fast::Rounder::sr_pair).
//
// kAvx512 (stochastic rounding): the panel's draws are made ahead of the
// loop, 8 lanes at a time (fill_draws_avx512), where every AVX-512
// instruction does twice the lanes' work; inside the loop, 4-lane vectors
// keep all three vector ports (512-bit instructions in flight close one).
template <Rounding AccMode, bool kWide, bool kAvx2, bool kPair = false, bool kAvx512 = false>
ACCSIM_INLINE void panel_kernel_lanes_common(const PanelJob& job) {
  static_assert(AccMode == Rounding::rne || AccMode == Rounding::rtz || AccMode == Rounding::sr);
  static_assert(!kPair || (kWide && AccMode == Rounding::sr));
  const fast::Rounder acc_r = job.rounders->accumulate;
  constexpr bool kSr = AccMode == Rounding::sr;
  LaneTally& acc_tally = job.tallies[1];
  job.tallies[0] = LaneTally{};
  acc_tally = LaneTally{};
  L4::I acc_exact{}, acc_swamp_or_exact{};
  HotRounder<kSr ? Rounding::rtz : AccMode> hot(acc_r);
  // The draws of step kk for vector v, at the top of the word (kAvx512:
  // made ahead, see above, for steps block_start .. block_end - 1; `key` is
  // then unused).
  std::uint64_t* draws = nullptr;
  std::size_t block_start = 0, block_end = 0;
  if constexpr (kSr && kAvx512) {
    thread_local std::vector<std::uint64_t> buffer(kDrawBlock * kPanel);
    draws = buffer.data();
  }
  const auto refill = [&](std::size_t from) {
    block_start = from;
    block_end = std::min(job.k, from + kDrawBlock);
    fill_draws_avx512(acc_r.sr_mixed_seed, job.sr_key0 + from, job.sr_steps, block_end - from, draws);
  };
  const auto draw_high = [&](int v, std::size_t kk, const L4::U key) __attribute__((always_inline)) {
    if constexpr (kAvx512) {
      (void)key;
      return load(draws + (kk - block_start) * kPanel + 4 * v);
    } else {
      (void)v;
      (void)kk;
      return fast::sr_draw_high_lanes<4>(acc_r, key);
    }
  };
  const auto slow_step = [&](L4::D& acc, const L4::D p, int v, std::size_t kk, const L4::U key)
                             __attribute__((always_inline)) {
    L4::I swamp;
    fast::Rounded<4> s;
    if constexpr (kPair) {
      s = fast::accumulate_sr_pair_lanes<4>(acc_r, acc, p, &swamp, draw_high(v, kk, key) >> 32);
    } else if constexpr (kSr) {
      s = fast::accumulate_lanes<AccMode, 4, fast::Ftz::runtime, kWide>(acc_r, acc, p, &swamp,
                                                                        draw_high(v, kk, key) >> 32);
    } else {
      (void)v;
      (void)kk;
      (void)key;
      s = fast::accumulate_lanes<AccMode, 4, fast::Ftz::runtime, kWide>(acc_r, acc, p, &swamp);
    }
    acc_tally.overflow -= s.overflow;
    acc_tally.underflow -= s.underflow;
    acc_exact -= s.exact;
    acc_swamp_or_exact -= swamp | s.exact;
    acc = s.value;
  };
  const auto commit = [&](L4::D& acc, const L4::U u, int v, std::size_t kk, const L4::U key)
                          __attribute__((always_inline)) {
    L4::U bits;
    if constexpr (kSr) {
      bits = hot.template round_sr<kAvx512>(u, draw_high(v, kk, key));
    } else {
      (void)v;
      (void)kk;
      (void)key;
      bits = hot.round(u);
    }
    const L4::I exact = (L4::I)(bits == u);
    acc_exact -= exact;
    acc_swamp_or_exact -= (L4::I)(bits == (L4::U)(acc)) | exact;
    acc = (L4::D)(bits);
  };
  // Lanes whose sum s = fl(acc + p) is not exact (see above).
  const auto inexact = [](const L4::D acc, const L4::D p, const L4::D s) __attribute__((always_inline)) {
    return (L4::I)((s - acc) != p) | (L4::I)((s - p) != acc);
  };
  const std::uint64_t stride = job.sr_steps;
  const auto keys_at = [&](int v) {
    const std::uint64_t c = static_cast<std::uint64_t>(4 * v);
    return L4::U{job.sr_key0 + c * stride, job.sr_key0 + (c + 1) * stride, job.sr_key0 + (c + 2) * stride,
                 job.sr_key0 + (c + 3) * stride};
  };
  const L4::U key0 = keys_at(0), key1 = keys_at(1), key2 = keys_at(2), key3 = keys_at(3);
  const L4::D init0 = load(job.init), init1 = load(job.init + 4), init2 = load(job.init + 8),
              init3 = load(job.init + 12);
  double* const sums = job.chunk_sums;
  std::size_t chunks = 0;
  for (std::size_t c0 = 0; c0 < job.k; c0 += job.chunk, ++chunks) {
    const std::size_t c1 = std::min(job.k, c0 + job.chunk);
    L4::D acc0 = init0, acc1 = init1, acc2 = init2, acc3 = init3;
    std::size_t kk = c0;
    for (;;) {
      std::size_t stop = c1;
      if constexpr (kSr && kAvx512) {
        if (kk >= block_end) refill(kk);
        stop = std::min(c1, block_end);
      } else {
        (void)refill;
      }
      for (; kk < stop; ++kk) {
        const double av = job.a_row[kk];
        const L4::D a = {av, av, av, av};
        const double* brow = job.panel + kk * kPanel;
        const L4::D p0 = a * load(brow), p1 = a * load(brow + 4), p2 = a * load(brow + 8), p3 = a * load(brow + 12);
        const L4::D s0 = acc0 + p0, s1 = acc1 + p1, s2 = acc2 + p2, s3 = acc3 + p3;
        const L4::U u0 = (L4::U)(s0), u1 = (L4::U)(s1), u2 = (L4::U)(s2), u3 = (L4::U)(s3);
        asm volatile("" : "+m"(hot));
        L4::I bad = hot.outside(u0) | hot.outside(u1) | hot.outside(u2) | hot.outside(u3);
        if constexpr (kWide) {
          bad |= inexact(acc0, p0, s0) | inexact(acc1, p1, s1) | inexact(acc2, p2, s2) | inexact(acc3, p3, s3);
        }
        if (any_lane<kAvx2>(bad)) [[unlikely]] break;
        commit(acc0, u0, 0, kk, key0 + kk);
        commit(acc1, u1, 1, kk, key1 + kk);
        commit(acc2, u2, 2, kk, key2 + kk);
        commit(acc3, u3, 3, kk, key3 + kk);
      }
      if (kk == c1) break;
      if (kk == stop) continue;  // the end of a block of draws
      const double av = job.a_row[kk];
      const L4::D a = {av, av, av, av};
      const double* brow = job.panel + kk * kPanel;
      slow_step(acc0, a * load(brow), 0, kk, key0 + kk);
      slow_step(acc1, a * load(brow + 4), 1, kk, key1 + kk);
      slow_step(acc2, a * load(brow + 8), 2, kk, key2 + kk);
      slow_step(acc3, a * load(brow + 12), 3, kk, key3 + kk);
      ++kk;
    }
    double* out = sums + chunks * kPanel;
    store(out, acc0);
    store(out + 4, acc1);
    store(out + 8, acc2);
    store(out + 12, acc3);
  }
  acc_tally.exact = acc_exact;
  acc_tally.swamp = acc_swamp_or_exact - acc_exact;
}

// Merges chunk sums as merge_chunks does, for plan_any_lanes' merge rounders;
// chunk c's merge draws with step K + c's key (`first_key`: the panel's
// first column at step K). Nearest-even, toward zero and stochastic
// rounding take the common case where a vector's sums are exact in double
// and neither tiny nor too large (zeros are fine: fast::special_lanes), as
// merge_chunks_common; other vectors go through accumulate_lanes. kAvx512
// (stochastic rounding): the draws made ahead, as in
// panel_kernel_lanes_common.
template <Rounding Mode, bool kInteger, bool kAvx2 = false, bool kAvx512 = false>
ACCSIM_INLINE void merge_chunks_lanes(const fast::Rounder& r, const double* sums, std::size_t chunks, double* out,
                                      LaneTally& tally, std::uint64_t first_key, std::uint64_t stride) {
  constexpr bool kCommon = !kInteger && (Mode == Rounding::rne || Mode == Rounding::rtz || Mode == Rounding::sr);
  constexpr std::uint64_t kMagnitude = ~(std::uint64_t{1} << 63);
  std::uint64_t* draws = nullptr;
  if constexpr (Mode == Rounding::sr && kAvx512) {
    thread_local std::vector<std::uint64_t> buffer(kDrawBlock * kPanel);
    draws = buffer.data();
  }
  L4::D running[kVectors] = {};
  for (std::size_t c = 0; c < chunks; ++c) {
    if constexpr (Mode == Rounding::sr && kAvx512) {
      if (c % kDrawBlock == 0) {
        fill_draws_avx512(r.sr_mixed_seed, first_key + c, stride, std::min(kDrawBlock, chunks - c), draws);
      }
    } else {
      (void)draws;
    }
    for (int v = 0; v < kVectors; ++v) {
      const L4::D addend = load(sums + c * kPanel + 4 * v);
      L4::U draw_high{};
      (void)draw_high;
      if constexpr (Mode == Rounding::sr) {
        if constexpr (kAvx512) {
          draw_high = load(draws + (c % kDrawBlock) * kPanel + 4 * v);
        } else {
          const std::uint64_t col = static_cast<std::uint64_t>(4 * v);
          const std::uint64_t key = first_key + c;
          draw_high = fast::sr_draw_high_lanes<4>(
              r, L4::U{key + col * stride, key + (col + 1) * stride, key + (col + 2) * stride, key + (col + 3) * stride});
        }
      }
      L4::I swamp;
      if constexpr (kCommon) {
        const L4::D acc = running[v];
        const L4::D s = acc + addend;
        const L4::U u = (L4::U)(s), ua = u & kMagnitude;
        const L4::I bad = fast::special_lanes<4>(r, ua) | (L4::I)((s - acc) != addend) | (L4::I)((s - addend) != acc);
        if (!any_lane<kAvx2>(bad)) {
          L4::U bits;
          if constexpr (Mode == Rounding::sr) {
            bits = fast::round_sr_common<4>(r, u, draw_high);
          } else {
            bits = fast::round_common<Mode, 4>(r, u, ua);
          }
          tally.exact -= (L4::I)(bits == u);
          tally.swamp -= (L4::I)(addend != 0.0) & (L4::I)(bits == (L4::U)(acc));
          running[v] = (L4::D)(bits);
          continue;
        }
      }
      fast::Rounded<4> m;
      if constexpr (kInteger) {
        m = fast::accumulate_integer_lanes<4>(r, running[v], addend, &swamp);
      } else {
        L4::U draw{};
        if constexpr (Mode == Rounding::sr) draw = draw_high >> 32;
        if (Mode == Rounding::sr && r.sr_pair) {
          m = fast::accumulate_sr_pair_lanes<4>(r, running[v], addend, &swamp, draw);
        } else {
          m = fast::accumulate_lanes<Mode, 4, fast::Ftz::runtime, true>(r, running[v], addend, &swamp, draw);
        }
      }
      running[v] = m.value;
      tally.add(m);
      tally.swamp -= swamp;
    }
  }
  for (int v = 0; v < kVectors; ++v) store(out + 4 * v, running[v]);
}

using PanelFn = void (*)(const PanelJob&);

template <Rounding M>
constexpr bool kCommonMode = M == Rounding::rne || M == Rounding::rtz;

template <Rounding AccMode, fast::Ftz AccFtz, Rounding ProdMode, fast::Ftz ProdFtz, bool kHasProduct, bool kAvx2>
ACCSIM_INLINE void panel_any(const PanelJob& job) {
  if constexpr (kCommonMode<AccMode> && (!kHasProduct || kCommonMode<ProdMode>)) {
    panel_kernel_common<AccMode, AccFtz, ProdMode, ProdFtz, kHasProduct, kAvx2>(job);
  } else {
    panel_kernel<AccMode, AccFtz, ProdMode, ProdFtz, kHasProduct, kAvx2>(job);
  }
}
template <Rounding AccMode, fast::Ftz AccFtz, Rounding ProdMode, fast::Ftz ProdFtz, bool kHasProduct>
__attribute__((target("avx2"))) void panel_avx2(const PanelJob& job) {
  panel_any<AccMode, AccFtz, ProdMode, ProdFtz, kHasProduct, true>(job);
}
template <Rounding AccMode, fast::Ftz AccFtz, Rounding ProdMode, fast::Ftz ProdFtz, bool kHasProduct>
void panel_baseline(const PanelJob& job) {
  panel_any<AccMode, AccFtz, ProdMode, ProdFtz, kHasProduct, false>(job);
}

using MergeFn = void (*)(const fast::Rounder&, const double*, std::size_t, double*, LaneTally&);
template <Rounding Mode, fast::Ftz F, bool kAvx2>
ACCSIM_INLINE void merge_any(const fast::Rounder& r, const double* sums, std::size_t chunks, double* out,
                             LaneTally& tally) {
  if constexpr (kCommonMode<Mode>) {
    merge_chunks_common<Mode, F, kAvx2>(r, sums, chunks, out, tally);
  } else {
    merge_chunks<Mode, F>(r, sums, chunks, out, tally);
  }
}
template <Rounding Mode, fast::Ftz F>
__attribute__((target("avx2"))) void merge_avx2(const fast::Rounder& r, const double* sums, std::size_t chunks,
                                               double* out, LaneTally& tally) {
  merge_any<Mode, F, true>(r, sums, chunks, out, tally);
}
template <Rounding Mode, fast::Ftz F>
void merge_baseline(const fast::Rounder& r, const double* sums, std::size_t chunks, double* out, LaneTally& tally) {
  merge_any<Mode, F, false>(r, sums, chunks, out, tally);
}
MergeFn select_merge(const fast::Rounder& r) {
  const bool avx2 = lane_isa() >= LaneIsa::avx2;
  return fast::dispatch_mode(r.mode, [&]<Rounding M>() -> MergeFn {
    return fast::dispatch_ftz(r.ftz, [&]<fast::Ftz F>() -> MergeFn {
      return avx2 ? &merge_avx2<M, F> : &merge_baseline<M, F>;
    });
  });
}

// The kernel for these modes, compiled for lane_isa() (the best ISA this
// CPU has, unless ACCSIM_ISA or set_lane_isa lowers it for every lane kernel
// alike; the default build targets any x86-64). Flush-to-zero is a compile-time
// constant, except in the general kernel when product and accumulator differ
// in mode or flush-to-zero (no configuration in use does).
PanelFn select_kernel(const FastPlan& r) {
  const bool avx2 = lane_isa() >= LaneIsa::avx2;
  using fast::Ftz;
  return fast::dispatch_mode(r.accumulate.mode, [&]<Rounding A>() -> PanelFn {
    return fast::dispatch_ftz(r.accumulate.ftz, [&]<Ftz AF>() -> PanelFn {
      if (!r.product) return avx2 ? &panel_avx2<A, AF, A, Ftz::runtime, false> : &panel_baseline<A, AF, A, Ftz::runtime, false>;
      return fast::dispatch_mode(r.product->mode, [&]<Rounding P>() -> PanelFn {
        if constexpr (kCommonMode<A> && kCommonMode<P>) {
          return fast::dispatch_ftz(r.product->ftz, [&]<Ftz PF>() -> PanelFn {
            return avx2 ? &panel_avx2<A, AF, P, PF, true> : &panel_baseline<A, AF, P, PF, true>;
          });
        } else {
          constexpr Ftz R = Ftz::runtime;
          if constexpr (P == A) {
            if (r.product->ftz == r.accumulate.ftz) {
              return avx2 ? &panel_avx2<A, AF, P, AF, true> : &panel_baseline<A, AF, P, AF, true>;
            }
          }
          return avx2 ? &panel_avx2<A, R, P, R, true> : &panel_baseline<A, R, P, R, true>;
        }
      });
    });
  });
}


// panel_kernel_lanes' entry points and their choice. Products rounded in a
// mode other than the accumulator's are taken in nearest-even and toward
// zero (the configurations in use); other pairs return nullptr, which sends
// the GEMM to the general path.
template <Rounding AccMode, bool kInteger, bool kHasProduct, Rounding ProdMode, bool kAccPair = false>
__attribute__((target("avx2"))) void lanes_avx2(const PanelJob& job) {
  panel_kernel_lanes<AccMode, kInteger, kHasProduct, ProdMode, kAccPair>(job);
}
template <Rounding AccMode, bool kInteger, bool kHasProduct, Rounding ProdMode, bool kAccPair = false>
void lanes_baseline(const PanelJob& job) {
  panel_kernel_lanes<AccMode, kInteger, kHasProduct, ProdMode, kAccPair>(job);
}
// The common-case kernel; with AVX-512 (DQ and VL) for stochastic rounding,
// whose draws multiply 64-bit lanes (one vpmullq, where AVX2 takes five
// instructions).
template <Rounding AccMode, bool kWide, bool kPair>
__attribute__((target("avx2"))) void lanes_common_avx2(const PanelJob& job) {
  panel_kernel_lanes_common<AccMode, kWide, true, kPair>(job);
}
template <Rounding AccMode, bool kWide, bool kPair>
__attribute__((target("avx2,avx512f,avx512dq,avx512vl"))) void lanes_common_avx512(const PanelJob& job) {
  panel_kernel_lanes_common<AccMode, kWide, true, kPair, true>(job);
}
template <Rounding AccMode, bool kWide, bool kPair>
void lanes_common_baseline(const PanelJob& job) {
  panel_kernel_lanes_common<AccMode, kWide, false, kPair>(job);
}
template <Rounding AccMode, bool kWide, bool kPair = false>
PanelFn select_lanes_common(bool avx2) {
  if constexpr (AccMode == Rounding::sr) {
    if (lane_isa() == LaneIsa::avx512) {
      return &lanes_common_avx512<AccMode, kWide, kPair>;
    }
  }
  return avx2 ? &lanes_common_avx2<AccMode, kWide, kPair> : &lanes_common_baseline<AccMode, kWide, kPair>;
}
template <Rounding AccMode, bool kInteger>
PanelFn select_lanes_for(const FastPlan& plan, bool avx2) {
  if constexpr (!kInteger && (AccMode == Rounding::rne || AccMode == Rounding::rtz || AccMode == Rounding::sr)) {
    if (!plan.product) {
      if constexpr (AccMode == Rounding::sr) {
        if (plan.accumulate.sr_pair) return select_lanes_common<AccMode, true, true>(avx2);
      }
      return plan.accumulate.wide ? select_lanes_common<AccMode, true>(avx2) : select_lanes_common<AccMode, false>(avx2);
    }
  }
  if constexpr (!kInteger && AccMode == Rounding::sr) {
    if (plan.accumulate.sr_pair) {
      // With rounded products: in the accumulator's mode, nearest-even or
      // toward zero, as below.
      if (plan.product->integer()) return nullptr;
      switch (plan.product->mode) {
        case Rounding::sr:
          return avx2 ? &lanes_avx2<AccMode, false, true, Rounding::sr, true>
                      : &lanes_baseline<AccMode, false, true, Rounding::sr, true>;
        case Rounding::rne:
          return avx2 ? &lanes_avx2<AccMode, false, true, Rounding::rne, true>
                      : &lanes_baseline<AccMode, false, true, Rounding::rne, true>;
        case Rounding::rtz:
          return avx2 ? &lanes_avx2<AccMode, false, true, Rounding::rtz, true>
                      : &lanes_baseline<AccMode, false, true, Rounding::rtz, true>;
        default: return nullptr;
      }
    }
  }
  if (!plan.product) {
    return avx2 ? &lanes_avx2<AccMode, kInteger, false, AccMode> : &lanes_baseline<AccMode, kInteger, false, AccMode>;
  }
  if (plan.product->integer()) return nullptr;
  const Rounding p = plan.product->mode;
  if (!kInteger && p == AccMode) {
    return avx2 ? &lanes_avx2<AccMode, kInteger, true, AccMode> : &lanes_baseline<AccMode, kInteger, true, AccMode>;
  }
  if (p == Rounding::rne) {
    return avx2 ? &lanes_avx2<AccMode, kInteger, true, Rounding::rne> : &lanes_baseline<AccMode, kInteger, true, Rounding::rne>;
  }
  if (p == Rounding::rtz) {
    return avx2 ? &lanes_avx2<AccMode, kInteger, true, Rounding::rtz> : &lanes_baseline<AccMode, kInteger, true, Rounding::rtz>;
  }
  return nullptr;
}
PanelFn select_kernel_lanes(const FastPlan& plan) {
  const bool avx2 = lane_isa() >= LaneIsa::avx2;
  if (plan.accumulate.integer()) return select_lanes_for<Rounding::rne, true>(plan, avx2);
  return fast::dispatch_any_mode(plan.accumulate.mode, [&]<Rounding A>() -> PanelFn {
    return select_lanes_for<A, false>(plan, avx2);
  });
}

using MergeLanesFn = void (*)(const fast::Rounder&, const double*, std::size_t, double*, LaneTally&, std::uint64_t,
                              std::uint64_t);
template <Rounding Mode, bool kInteger>
__attribute__((target("avx2"))) void merge_lanes_avx2(const fast::Rounder& r, const double* sums, std::size_t chunks,
                                                     double* out, LaneTally& tally, std::uint64_t first_key,
                                                     std::uint64_t stride) {
  merge_chunks_lanes<Mode, kInteger, true>(r, sums, chunks, out, tally, first_key, stride);
}
template <Rounding Mode>
__attribute__((target("avx2,avx512f,avx512dq,avx512vl"))) void merge_lanes_avx512(
    const fast::Rounder& r, const double* sums, std::size_t chunks, double* out, LaneTally& tally,
    std::uint64_t first_key, std::uint64_t stride) {
  merge_chunks_lanes<Mode, false, true, true>(r, sums, chunks, out, tally, first_key, stride);
}
template <Rounding Mode, bool kInteger>
void merge_lanes_baseline(const fast::Rounder& r, const double* sums, std::size_t chunks, double* out,
                          LaneTally& tally, std::uint64_t first_key, std::uint64_t stride) {
  merge_chunks_lanes<Mode, kInteger>(r, sums, chunks, out, tally, first_key, stride);
}
MergeLanesFn select_merge_lanes(const fast::Rounder& r) {
  const bool avx2 = lane_isa() >= LaneIsa::avx2;
  if (r.integer()) return avx2 ? &merge_lanes_avx2<Rounding::rne, true> : &merge_lanes_baseline<Rounding::rne, true>;
  if (r.mode == Rounding::sr && lane_isa() == LaneIsa::avx512) {
    return &merge_lanes_avx512<Rounding::sr>;
  }
  return fast::dispatch_any_mode(r.mode, [&]<Rounding M>() -> MergeLanesFn {
    return avx2 ? &merge_lanes_avx2<M, false> : &merge_lanes_baseline<M, false>;
  });
}
}  // namespace

std::size_t lane_passes(const GemmConfig& config, std::size_t n) {
  // Only the operands' finiteness is read by the plans: empty ones stand for finite ones.
  const QuantizedOperand finite;
  const num::Format c_format = config.order.merge(config.accumulator);
  const std::size_t panels = (n + kPanel - 1) / kPanel;
  if (const std::optional<FastPlan> rounders = plan_fast(config, c_format, finite, finite)) {
    if (config.allow_f32_lanes) {
      if (const std::optional<F32Plan> f32 = plan_f32(config, c_format, finite, finite); f32 && use_f32_lanes(*f32)) {
        return f32_panels(*f32, n);
      }
    }
    return panels;
  }
  const std::optional<FastPlan> lanes = plan_any_lanes(config, c_format, finite, finite);
  return lanes && select_kernel_lanes(*lanes) != nullptr ? panels : n;
}

bool transpose_takes_fewer_passes(const GemmConfig& config, std::size_t m, std::size_t n) {
  return n * lane_passes(config, m) < m * lane_passes(config, n);
}

GemmResult accumulate_products(const QuantizedOperand& a, const QuantizedOperand& b, const GemmConfig& config) {
  GemmResult result;
  accumulate_products(a, b, config, result, /*encodings=*/true);
  return result;
}

void accumulate_products(const QuantizedOperand& a, const QuantizedOperand& b, const GemmConfig& config,
                         GemmResult& result, bool encodings) {
  if (a.cols != b.rows) {
    throw std::invalid_argument("gemm: A is " + std::to_string(a.rows) + "x" + std::to_string(a.cols) + " but B is " +
                                std::to_string(b.rows) + "x" + std::to_string(b.cols) + ": inner dimensions differ");
  }
  const std::size_t m = a.rows, k = a.cols, n = b.cols;
  result.stats = {};
  result.c_format = config.order.merge(config.accumulator);
  const std::size_t chunk = config.order.sequential() ? std::max<std::size_t>(k, 1)
                                                      : static_cast<std::size_t>(config.order.chunk);
  const std::size_t chunks = k == 0 ? 0 : (k + chunk - 1) / chunk;
  // Every path below writes every element of c (and of c_bits).
  result.c.rows = m;
  result.c.cols = n;
  result.c.data.resize(m * n);
  result.c_bits.resize(encodings ? m * n : 0);

  // The specialized kernels where plan_fast allows (the cycle-accurate
  // engine's lanes too), else the kernel for everything else the lanes round
  // exactly, else the general path.
  std::optional<FastPlan> rounders = plan_fast(config, result.c_format, a, b);
  // Within plan_fast's route, the float lanes where they are exact.
  if (rounders && k > 0 && config.allow_f32_lanes) {
    if (const std::optional<F32Plan> f32 = plan_f32(config, result.c_format, a, b); f32 && use_f32_lanes(*f32)) {
      accumulate_f32(*f32, a, b, config, result, encodings);
      result.stats.fast_path = true;
      result.stats.f32_lanes = true;
      return;
    }
  }
  PanelFn kernel = nullptr;
  MergeFn merge = nullptr;
  MergeLanesFn merge_lanes = nullptr;
  const bool specialized = rounders.has_value();
  if (rounders) {
    kernel = select_kernel(*rounders);
    if (rounders->merge) merge = select_merge(*rounders->merge);
  } else if ((rounders = plan_any_lanes(config, result.c_format, a, b))) {
    kernel = select_kernel_lanes(*rounders);
    if (rounders->merge) merge_lanes = select_merge_lanes(*rounders->merge);
    if (kernel == nullptr) rounders.reset();
  }
  const Plan plan{a, b, config, m, k, n, chunk, chunks, result.c_format};
  result.stats.fast_path = specialized;
  result.stats.any_lanes = rounders.has_value() && !specialized;
  if (rounders && k > 0) {
    // Pack B into panels of kPanel columns (zero-padded) so each k-step loads
    // kVectors contiguous vectors.
    // The buffer stays with the calling thread from call to call (a network
    // runs thousands of small GEMMs); the kernels below, on any thread, read
    // it through this reference (the name of a thread_local would mean each
    // worker's own).
    const std::size_t panels = (n + kPanel - 1) / kPanel;
    thread_local std::vector<double> packed_buffer;
    std::vector<double>& packed = packed_buffer;
    if (packed.size() < panels * k * kPanel) packed.resize(panels * k * kPanel);  // grown only: read by pointer
    for (std::size_t p = 0; p < panels; ++p) {
      const std::size_t cols = std::min(kPanel, n - p * kPanel);
      for (std::size_t kk = 0; kk < k; ++kk) {
        double* row = &packed[(p * k + kk) * kPanel];
        std::memcpy(row, &b.values[kk * n + p * kPanel], cols * sizeof(double));
        std::fill(row + cols, row + kPanel, 0.0);
      }
    }
    // Encodings of the results, which lie on the final format's grid.
    const auto* c_float = std::get_if<num::FloatFormat>(&result.c_format);
    const fast::Encoder float_encoder = c_float != nullptr ? fast::Encoder(*c_float) : fast::Encoder();
    const std::uint64_t int_mask = c_float != nullptr ? 0 : num::encoding_mask(num::width(result.c_format));
    const auto encode = [&](double v) {
      return c_float != nullptr ? float_encoder(v) : static_cast<std::uint64_t>(static_cast<std::int64_t>(v)) & int_mask;
    };
    // Whether a rounding that overflowed in this rounder should have given
    // an infinity, which the lanes do not carry.
    const auto lost = [](const std::optional<fast::Rounder>& r, const LaneTally& t) {
      if (!r || !r->to_inf) return false;
      for (int l = 0; l < 4; ++l) {
        if (t.overflow[l] != 0) return true;
      }
      return false;
    };
    // Event counts per task, summed in task order below (integer sums: any
    // grouping gives the same totals). On one thread, one set for all tasks
    // (a network's GEMMs have hundreds of tiny tasks each).
    const bool one_thread = resolve_threads(config.threads) == 1;
    std::vector<ElementCounts> task_counts(one_thread ? 1 : m * panels);
    // Starting sums of panel_kernel_common: +0, and 2^emin in the padding
    // columns of the last panel (panel_kernel_lanes starts from +0).
    double zeros[kPanel] = {}, padded_init[kPanel] = {};
    for (std::size_t j = n % kPanel; n % kPanel != 0 && j < kPanel; ++j) {
      padded_init[j] = std::bit_cast<double>(rounders->accumulate.min_normal_bits);
    }
    const std::uint64_t steps = k + chunks;
    parallel_for(m * panels, config.threads, [&](std::size_t task) {
      const std::size_t i = task / panels, p = task % panels;
      const std::size_t cols = std::min(kPanel, n - p * kPanel);
      LaneTally tallies[3];
      thread_local std::vector<double> chunk_sums;
      if (chunk_sums.size() < chunks * kPanel) chunk_sums.resize(chunks * kPanel);
      const std::uint64_t first_key = sr_key(i, p * kPanel, 0, n, steps);
      PanelJob job{&a.values[i * k], &packed[p * k * kPanel], k, chunk, &*rounders, chunk_sums.data(), tallies,
                   cols == kPanel ? zeros : padded_init};
      job.sr_key0 = first_key;
      job.sr_steps = steps;
      kernel(job);
      // Padding columns: +0 for the merge, whatever the kernel left there.
      for (std::size_t c = 0; cols < kPanel && c < chunks; ++c) {
        std::fill(chunk_sums.data() + c * kPanel + cols, chunk_sums.data() + (c + 1) * kPanel, 0.0);
      }
      double merged[kPanel];
      if (merge) merge(*rounders->merge, chunk_sums.data(), chunks, merged, tallies[2]);
      if (merge_lanes) merge_lanes(*rounders->merge, chunk_sums.data(), chunks, merged, tallies[2], first_key + k, steps);
      const bool merged_any = merge != nullptr || merge_lanes != nullptr;
      const double* out = merged_any ? merged : chunk_sums.data();
      ElementCounts& counts = task_counts[one_thread ? 0 : task];
      if (lost(rounders->product, tallies[0]) || lost(rounders->accumulate, tallies[1]) ||
          lost(rounders->merge, tallies[2])) {
        // Some result in this panel is infinite: the general path redoes it.
        for (std::size_t j = p * kPanel; j < p * kPanel + cols; ++j) {
          const std::uint64_t bits = dot_general(plan, i, j, counts);
          if (encodings) result.c_bits[i * n + j] = bits;
          result.c(i, j) = num::to_double(bits, result.c_format);
        }
        return;
      }
      if (config.product) tallies[0].drain(counts.product, cols, k);
      tallies[1].drain(counts.accumulate, cols, k);
      if (!config.order.sequential()) tallies[2].drain(counts.merge, cols, chunks);
      for (std::size_t j = 0; j < cols; ++j) {
        const std::size_t col = p * kPanel + j;
        result.c(i, col) = out[j];
        if (encodings) result.c_bits[i * n + col] = encode(out[j]);  // out[j] is on the grid
      }
    });
    for (const ElementCounts& c : task_counts) {
      result.stats.product += c.product;
      result.stats.accumulate += c.accumulate;
      result.stats.merge += c.merge;
    }
  } else {
    std::vector<ElementCounts> row_counts(m);
    parallel_for(m, config.threads, [&](std::size_t i) {
      for (std::size_t j = 0; j < n; ++j) {
        const std::uint64_t bits = dot_general(plan, i, j, row_counts[i]);
        if (encodings) result.c_bits[i * n + j] = bits;
        result.c(i, j) = num::to_double(bits, result.c_format);
      }
    });
    for (const ElementCounts& c : row_counts) {
      result.stats.product += c.product;
      result.stats.accumulate += c.accumulate;
      result.stats.merge += c.merge;
    }
  }
}

GemmResult gemm(const Matrix& a, const Matrix& b, const GemmConfig& config) {
  return gemm(a, b, config, [](const QuantizedOperand& qa, const QuantizedOperand& qb, const GemmConfig& c) {
    return accumulate_products(qa, qb, c);
  });
}

GemmResult gemm(const Matrix& a, const Matrix& b, const GemmConfig& config, const AccumulateFn& accumulate) {
  if (a.cols != b.rows) {
    throw std::invalid_argument("gemm: A is " + std::to_string(a.rows) + "x" + std::to_string(a.cols) + " but B is " +
                                std::to_string(b.rows) + "x" + std::to_string(b.cols) + ": inner dimensions differ");
  }
  for (const Matrix* m : {&a, &b}) {
    for (double x : m->data) {
      if (!std::isfinite(x)) throw std::invalid_argument("gemm: operands must be finite");
    }
  }
  const QuantizedOperand qa = quantize_operand(a, config.multiplier, config.scaling, ScaleAxis::rows, 1);
  const QuantizedOperand qb = quantize_operand(b, config.multiplier, config.scaling, ScaleAxis::cols, 2);
  GemmResult result = accumulate(qa, qb, config);
  result.stats.quantize_a = qa.events;
  result.stats.quantize_b = qb.events;
  for (std::size_t i = 0; i < result.c.rows; ++i) {
    for (std::size_t j = 0; j < result.c.cols; ++j) result.c(i, j) /= qa.scale_at(i, 0) * qb.scale_at(0, j);
  }
  if (config.error_stats) {
    // The rounded operands with their scales undone; with no scale (1) they
    // are the values themselves, read in place (x / 1 = x).
    auto unit = [](const QuantizedOperand& q) {
      return std::all_of(q.scale.begin(), q.scale.end(), [](double s) { return s == 1.0; });
    };
    Matrix a_dequantized, b_dequantized;
    if (!unit(qa)) {
      a_dequantized = Matrix(a.rows, a.cols);
      for (std::size_t i = 0; i < a.rows; ++i)
        for (std::size_t kk = 0; kk < a.cols; ++kk) a_dequantized(i, kk) = qa.values[i * a.cols + kk] / qa.scale_at(i, kk);
    }
    if (!unit(qb)) {
      b_dequantized = Matrix(b.rows, b.cols);
      for (std::size_t kk = 0; kk < b.rows; ++kk)
        for (std::size_t j = 0; j < b.cols; ++j) b_dequantized(kk, j) = qb.values[kk * b.cols + j] / qb.scale_at(kk, j);
    }
    const double* a_want = unit(qa) ? qa.values.data() : a_dequantized.data.data();
    const double* b_want = unit(qb) ? qb.values.data() : b_dequantized.data.data();
    result.stats.vs_quantized =
        compare(result.c, reference_gemm(a_want, b_want, a.rows, a.cols, b.cols, config.threads));
    result.stats.vs_original = compare(result.c, reference_gemm(a, b, config.threads));
  }
  return result;
}

}  // namespace accsim::ref
