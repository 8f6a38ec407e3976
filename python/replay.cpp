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
  steps_.resize(k_);
  merges_.resize(chunks_);
}

Replayer::Output Replayer::replay(std::size_t i, std::size_t j, MaskKind kind, std::uint8_t* drop, Tallies& t) {
  Output o = plan_ ? replay_fast(i, j, t) : replay_general(i, j, t);
  if (kind == MaskKind::fine || kind == MaskKind::recursive) fill_drop(kind, drop);
  return o;
}

bool Replayer::matches(const Output& o, const ref::GemmResult& r, std::size_t index) const {
  return plan_ ? o.value == r.c.data[index] : o.bits == r.c_bits[index];
}

// The chain rule over the recorded steps, from the output backwards: `alive`
// is the derivative of the output with respect to the running value at the
// point reached (0 or 1).
void Replayer::fill_drop(MaskKind kind, std::uint8_t* drop) const {
  const bool recursive = kind == MaskKind::recursive;
  bool alive = true;  // d output / d merged running sum
  for (std::size_t c = chunks_; c-- > 0;) {
    bool chunk_alive = true;  // d output / d this chunk's sum
    if (!config_.order.sequential()) {
      const Step& s = merges_[c];
      chunk_alive = (recursive ? alive : true) && s.d_addend;
      alive = alive && s.d_running;
    }
    bool running = chunk_alive;  // d output / d the chunk's running sum at step kk
    const std::size_t begin = c * chunk_, end = std::min(k_, begin + chunk_);
    for (std::size_t kk = end; kk-- > begin;) {
      const Step& s = steps_[kk];
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
