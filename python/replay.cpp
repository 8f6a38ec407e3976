#include "python/replay.hpp"

#include <algorithm>
#include <stdexcept>
#include <variant>

#include "models/numerics/arith.hpp"
#include "models/numerics/fast.hpp"

namespace accsim::binding {
namespace {

bool stochastic(const num::Format& f) {
  const auto* ff = std::get_if<num::FloatFormat>(&f);
  return ff != nullptr && ff->rounding == num::Rounding::sr;
}

}  // namespace

Replayer::Replayer(const ref::GemmConfig& config, const ref::QuantizedOperand& a, const ref::QuantizedOperand& b)
    : config_(config),
      a_(a),
      b_(b),
      m_(a.rows),
      k_(a.cols),
      n_(b.cols),
      chunk_(config.order.sequential() ? a.cols : static_cast<std::size_t>(config.order.chunk)),
      chunks_(config.order.sequential() ? 1 : (a.cols + chunk_ - 1) / chunk_),
      merge_format_(config.order.merge(config.accumulator)) {
  if (stochastic(config.accumulator) || (config.product && stochastic(*config.product)) ||
      (!config.order.sequential() && stochastic(merge_format_))) {
    throw std::invalid_argument("masks: not available with stochastic rounding (round=sr)");
  }
  plan_ = ref::plan_fast(config, merge_format_, a, b);
  // Column j of B contiguous: the replay walks one output's k at a time.
  b_cols_.resize(k_ * n_);
  for (std::size_t kk = 0; kk < k_; ++kk) {
    for (std::size_t j = 0; j < n_; ++j) b_cols_[j * k_ + kk] = plan_ ? b.values[kk * n_ + j] : 0.0;
  }
  n_padded_ = (n_ + kLanes - 1) / kLanes * kLanes;
  if (plan_) {
    b_rows_.assign(k_ * n_padded_, 0.0);
    for (std::size_t kk = 0; kk < k_; ++kk) {
      std::copy_n(b.values.begin() + static_cast<std::ptrdiff_t>(kk * n_), n_,
                  b_rows_.begin() + static_cast<std::ptrdiff_t>(kk * n_padded_));
    }
  }
  steps_.resize(k_);
  merges_.resize(chunks_);
  lane_steps_.resize(k_ * kLanes);
  lane_merges_.resize(chunks_ * kLanes);
}

Replayer::Output Replayer::replay(std::size_t i, std::size_t j, MaskKind kind, std::uint8_t* drop, Tallies& t) {
  Output o = plan_ ? replay_fast(i, j, t) : replay_general(i, j, t);
  if (kind == MaskKind::fine || kind == MaskKind::recursive) fill_drop(kind, drop, steps_.data(), merges_.data(), 1);
  return o;
}

bool Replayer::matches(const Output& o, const ref::GemmResult& r, std::size_t index) const {
  return plan_ ? o.value == r.c.data[index] : o.bits == r.c_bits[index];
}

// The chain rule over the recorded steps, from the output backwards: `alive`
// is the derivative of the output with respect to the running value at the
// point reached (0 or 1).
void Replayer::fill_drop(MaskKind kind, std::uint8_t* drop, const Step* steps, const Step* merges,
                         std::size_t stride) const {
  const bool recursive = kind == MaskKind::recursive;
  bool alive = true;  // d output / d merged running sum
  for (std::size_t c = chunks_; c-- > 0;) {
    bool chunk_alive = true;  // d output / d this chunk's sum
    if (!config_.order.sequential()) {
      const Step& s = merges[c * stride];
      chunk_alive = (recursive ? alive : true) && s.d_addend;
      alive = alive && s.d_running;
    }
    bool running = chunk_alive;  // d output / d the chunk's running sum at step kk
    const std::size_t begin = c * chunk_, end = std::min(k_, begin + chunk_);
    for (std::size_t kk = end; kk-- > begin;) {
      const Step& s = steps[kk * stride];
      const bool keep = (recursive ? running : chunk_alive) && s.d_addend && s.d_product;
      if (!keep) drop[kk / 8] |= static_cast<std::uint8_t>(1u << (kk % 8));
      running = running && s.d_running;
    }
  }
}

namespace {

// Events of one rounding, as num::fast's scalar entry points report them.
ACCSIM_INLINE num::Events events_of(const num::fast::Rounded<1>& x, bool swamp) {
  return static_cast<num::Events>((x.overflow[0] ? num::kOverflow : 0) | (x.underflow[0] ? num::kUnderflow : 0) |
                                  (x.exact[0] ? 0 : num::kInexact) | (swamp ? num::kSwamp : 0));
}

// One rounding with the rounder's mode known at compile time (Mode), or
// through num::fast's scalar entry points (Mode unset) when the product,
// accumulator and merge formats round differently.
template <class Mode>
struct Round {
  static num::fast::ScalarResult round(const num::fast::Rounder& r, double x) {
    if constexpr (Mode::known) {
      const auto out = num::fast::round_lanes<Mode::value, 1>(r, num::fast::Lanes<1>::D{x});
      return {out.value[0], events_of(out, false)};
    } else {
      return num::fast::round(r, x);
    }
  }
  static num::fast::ScalarResult accumulate(const num::fast::Rounder& r, double acc, double addend) {
    if constexpr (Mode::known) {
      num::fast::Lanes<1>::I swamp;
      const auto out = num::fast::accumulate_lanes<Mode::value, 1>(r, num::fast::Lanes<1>::D{acc},
                                                                   num::fast::Lanes<1>::D{addend}, &swamp);
      return {out.value[0], events_of(out, swamp[0] != 0)};
    } else {
      return num::fast::accumulate(r, acc, addend);
    }
  }
};
template <num::Rounding M>
struct KnownMode {
  static constexpr bool known = true;
  static constexpr num::Rounding value = M;
};
struct AnyMode {
  static constexpr bool known = false;
};

}  // namespace

Replayer::Output Replayer::replay_fast(std::size_t i, std::size_t j, Tallies& t) {
  const ref::FastPlan& p = *plan_;
  const num::Rounding mode = p.accumulate.mode;
  const bool same = (!p.product || p.product->mode == mode) && (!p.merge || p.merge->mode == mode);
  if (same) {
    return num::fast::dispatch_mode(mode, [&]<num::Rounding M>() { return replay_fast_t<KnownMode<M>>(i, j, t); });
  }
  return replay_fast_t<AnyMode>(i, j, t);
}

template <class Mode>
Replayer::Output Replayer::replay_fast_t(std::size_t i, std::size_t j, Tallies& t) {
  namespace fast = num::fast;
  using R = Round<Mode>;
  const ref::FastPlan& p = *plan_;
  std::uint8_t events = 0;
  double merged = 0;
  const double* a_row = a_.values.data() + i * k_;
  const double* b_col = b_cols_.data() + j * k_;
  for (std::size_t c = 0; c < chunks_; ++c) {
    double sum = 0;
    const std::size_t begin = c * chunk_, end = std::min(k_, begin + chunk_);
    for (std::size_t kk = begin; kk < end; ++kk) {
      const double exact = a_row[kk] * b_col[kk];
      Step& s = steps_[kk];
      if (exact == 0) {
        // A zero product (a ReLU zero, padding): rounding it and adding it
        // are exact and raise no event (a zero addend never swamps), so
        // every derivative is 1; only the operations are counted.
        s = {true, true, true};
        if (p.product) ++t.product.ops;
        ++t.accumulate.ops;
        sum += exact;  // what the addition gives, -0 + +0 included
        continue;
      }
      double addend = exact;
      s.d_product = true;
      if (p.product) {
        const fast::ScalarResult pr = R::round(*p.product, exact);
        t.product.record(pr.events);
        const bool flushed = pr.value == 0 && exact != 0;
        const bool saturated = (pr.events & num::kOverflow) != 0;
        s.d_product = !flushed && !saturated;
        events |= (flushed ? kProductFlushed : 0) | (saturated ? kSaturated : 0);
        addend = pr.value;
      }
      const fast::ScalarResult r = R::accumulate(p.accumulate, sum, addend);
      t.accumulate.record(r.events);
      const bool saturated = (r.events & num::kOverflow) != 0;
      const bool flushed = r.value == 0 && sum + addend != 0;  // the sum is exact in double (plan_fast)
      const bool swamped = (r.events & num::kSwamp) != 0;
      s.d_addend = !swamped && !saturated && !flushed;
      s.d_running = !saturated && !flushed;
      events |= (swamped ? kSwamped : 0) | (saturated ? kSaturated : 0) | (flushed ? kSumFlushed : 0);
      sum = r.value;
    }
    if (config_.order.sequential()) return {sum, 0, events};
    const fast::ScalarResult r = R::accumulate(*p.merge, merged, sum);
    t.merge.record(r.events);
    Step& s = merges_[c];
    const bool saturated = (r.events & num::kOverflow) != 0;
    const bool flushed = r.value == 0 && merged + sum != 0;
    const bool swamped = (r.events & num::kSwamp) != 0;
    s.d_product = true;
    s.d_addend = !swamped && !saturated && !flushed;
    s.d_running = !saturated && !flushed;
    events |= (swamped ? kSwamped : 0) | (saturated ? kSaturated : 0) | (flushed ? kSumFlushed : 0);
    merged = r.value;
  }
  return {merged, 0, events};
}

bool Replayer::replay_lanes(std::size_t i, std::size_t j0, std::size_t count, MaskKind kind,
                            std::uint8_t* const* drops, Output* out, Tallies& t) {
  if (!plan_) return false;
  const ref::FastPlan& p = *plan_;
  const num::Rounding mode = p.accumulate.mode;
  if ((p.product && p.product->mode != mode) || (p.merge && p.merge->mode != mode) || mode == num::Rounding::sr) {
    return false;
  }
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (!avx2) return false;  // four lanes in SSE2 halves are slower than the scalar replay
  num::fast::dispatch_mode(mode, [&]<num::Rounding M>() {
    if constexpr (M != num::Rounding::sr) replay_lanes_t<M>(i, j0, count, out, t);
  });
  if (kind == MaskKind::fine || kind == MaskKind::recursive) {
    for (std::size_t l = 0; l < count; ++l) {
      fill_drop(kind, drops[l], lane_steps_.data() + l, lane_merges_.data() + l, kLanes);
    }
  }
  return true;
}

namespace {

using L4 = num::fast::Lanes<4>;

// Lane counts of one kind of rounding, kept as vectors of -1 per event.
struct LaneCounts {
  L4::I overflow{}, underflow{}, swamp{}, inexact{};
  std::uint64_t ops = 0;
  void add(const num::fast::Rounded<4>& r, L4::I live) {
    overflow -= r.overflow & live;
    underflow -= r.underflow & live;
    inexact -= ~r.exact & live;
  }
  void flush(num::EventCounts& c) const {
    c.ops += ops;
    for (int l = 0; l < 4; ++l) {
      c.overflow += static_cast<std::uint64_t>(overflow[l]);
      c.underflow += static_cast<std::uint64_t>(underflow[l]);
      c.swamp += static_cast<std::uint64_t>(swamp[l]);
      c.inexact += static_cast<std::uint64_t>(inexact[l]);
    }
  }
};

ACCSIM_INLINE void store_steps(Replayer::Step* s, L4::I d_product, L4::I d_addend, L4::I d_running) {
  for (int l = 0; l < 4; ++l) s[l] = {d_product[l] != 0, d_addend[l] != 0, d_running[l] != 0};
}

}  // namespace

// replay_fast_t on four outputs of row i at once: every step's roundings,
// events and derivatives are computed lane by lane with num::fast's lane
// functions (the reference GEMM's own), so each lane is exactly what
// replay_fast_t computes for its output. Lanes past `count` hold zero
// products: they raise no event and are not counted.
// Built for AVX2 (called only where the CPU has it), as the reference GEMM's
// kernels: the lane helpers inline into it.
template <num::Rounding M>
__attribute__((target("avx2"))) void Replayer::replay_lanes_t(std::size_t i, std::size_t j0, std::size_t count, Output* out, Tallies& t) {
  namespace fast = num::fast;
  const ref::FastPlan& p = *plan_;
  L4::I live;
  for (int l = 0; l < 4; ++l) live[l] = static_cast<std::size_t>(l) < count ? -1 : 0;
  LaneCounts prod, acc, merge;
  L4::I ev_pflush{}, ev_swamp{}, ev_sat{}, ev_sflush{};
  L4::D merged{};
  const double* a_row = a_.values.data() + i * k_;
  const L4::I all = live | ~live;
  for (std::size_t c = 0; c < chunks_; ++c) {
    L4::D sum{};
    const std::size_t begin = c * chunk_, end = std::min(k_, begin + chunk_);
    for (std::size_t kk = begin; kk < end; ++kk) {
      const double av = a_row[kk];
      const L4::D a = {av, av, av, av};
      L4::D b;
      __builtin_memcpy(&b, b_rows_.data() + kk * n_padded_ + j0, sizeof b);
      const L4::D exact = a * b;
      Step* s = lane_steps_.data() + kk * kLanes;
      if (p.product) prod.ops += count;
      acc.ops += count;
      const L4::I nonzero = exact != 0.0;
      if (!(nonzero[0] | nonzero[1] | nonzero[2] | nonzero[3])) {
        // Zero products only: as in replay_fast_t.
        store_steps(s, all, all, all);
        sum += exact;
        continue;
      }
      L4::D addend = exact;
      L4::I d_product = all;
      if (p.product) {
        const fast::Rounded<4> pr = fast::round_lanes<M, 4>(*p.product, exact);
        prod.add(pr, live);
        const L4::I flushed = (pr.value == 0.0) & nonzero;
        const L4::I saturated = pr.overflow;
        d_product = ~(flushed | saturated);
        ev_pflush |= flushed;
        ev_sat |= saturated;
        addend = pr.value;
      }
      L4::I swamped;
      const fast::Rounded<4> r = fast::accumulate_lanes<M, 4>(p.accumulate, sum, addend, &swamped);
      acc.add(r, live);
      acc.swamp -= swamped & live;
      const L4::I saturated = r.overflow;
      const L4::I flushed = (r.value == 0.0) & ((sum + addend) != 0.0);  // the sum is exact in double
      store_steps(s, d_product, ~(swamped | saturated | flushed), ~(saturated | flushed));
      ev_swamp |= swamped;
      ev_sat |= saturated;
      ev_sflush |= flushed;
      sum = r.value;
    }
    if (config_.order.sequential()) {
      merged = sum;
      break;
    }
    L4::I swamped;
    const fast::Rounded<4> r = fast::accumulate_lanes<M, 4>(*p.merge, merged, sum, &swamped);
    merge.ops += count;
    merge.add(r, live);
    merge.swamp -= swamped & live;
    const L4::I saturated = r.overflow;
    const L4::I flushed = (r.value == 0.0) & ((merged + sum) != 0.0);
    store_steps(lane_merges_.data() + c * kLanes, all, ~(swamped | saturated | flushed), ~(saturated | flushed));
    ev_swamp |= swamped;
    ev_sat |= saturated;
    ev_sflush |= flushed;
    merged = r.value;
  }
  prod.flush(t.product);
  acc.flush(t.accumulate);
  merge.flush(t.merge);
  for (std::size_t l = 0; l < count; ++l) {
    out[l].value = merged[l];
    out[l].bits = 0;
    out[l].events = static_cast<std::uint8_t>((ev_pflush[l] ? kProductFlushed : 0) | (ev_swamp[l] ? kSwamped : 0) |
                                              (ev_sat[l] ? kSaturated : 0) | (ev_sflush[l] ? kSumFlushed : 0));
  }
}

Replayer::Output Replayer::replay_general(std::size_t i, std::size_t j, Tallies& t) {
  const num::Format& acc = config_.accumulator;
  const num::Format& mul = config_.multiplier;
  auto is_zero = [](std::uint64_t bits, const num::Format& f) { return num::decode(bits, f).is_zero(); };
  std::uint8_t events = 0;
  std::uint64_t merged = 0;  // +0 in every format
  for (std::size_t c = 0; c < chunks_; ++c) {
    std::uint64_t sum = 0;
    const std::size_t begin = c * chunk_, end = std::min(k_, begin + chunk_);
    for (std::size_t kk = begin; kk < end; ++kk) {
      const std::uint64_t ab = a_.bits[i * k_ + kk], bb = b_.bits[kk * n_ + j];
      const num::MacResult r = num::mac(sum, acc, ab, bb, mul, config_.product);
      Step& s = steps_[kk];
      s.d_product = true;
      if (config_.product) {
        t.product.record(r.product_events);
        const num::Result pr = num::multiply(ab, bb, mul, *config_.product);
        const bool exact_zero = is_zero(ab, mul) || is_zero(bb, mul);
        const bool flushed = is_zero(pr.bits, *config_.product) && !exact_zero;
        const bool saturated = (r.product_events & num::kOverflow) != 0;
        s.d_product = !flushed && !saturated;
        events |= (flushed ? kProductFlushed : 0) | (saturated ? kSaturated : 0);
      }
      t.accumulate.record(r.sum_events);
      const bool saturated = (r.sum_events & num::kOverflow) != 0;
      // A non-zero exact sum is flushed when it rounds to zero; a zero exact
      // sum (+0 + 0, or x - x) raises no underflow.
      const bool flushed = is_zero(r.bits, acc) && (r.sum_events & num::kUnderflow) != 0;
      const bool swamped = (r.sum_events & num::kSwamp) != 0;
      s.d_addend = !swamped && !saturated && !flushed;
      s.d_running = !saturated && !flushed;
      events |= (swamped ? kSwamped : 0) | (saturated ? kSaturated : 0) | (flushed ? kSumFlushed : 0);
      sum = r.bits;
    }
    if (config_.order.sequential()) return {0, sum, events};
    const num::Result r = num::add(merged, merge_format_, sum, acc);
    t.merge.record(r.events);
    Step& s = merges_[c];
    const bool saturated = (r.events & num::kOverflow) != 0;
    const bool flushed = is_zero(r.bits, merge_format_) && (r.events & num::kUnderflow) != 0;
    const bool swamped = (r.events & num::kSwamp) != 0;
    s.d_product = true;
    s.d_addend = !swamped && !saturated && !flushed;
    s.d_running = !saturated && !flushed;
    events |= (swamped ? kSwamped : 0) | (saturated ? kSaturated : 0) | (flushed ? kSumFlushed : 0);
    merged = r.bits;
  }
  return {0, merged, events};
}

}  // namespace accsim::binding
