// Replays one output's accumulation step by step, in the configured order,
// to see what happened along it: which products were flushed, which
// additions swamped, saturated or were flushed to zero. The reference GEMM
// only counts events (its kernels run many outputs per vector); fine-tuning
// needs to know where they fell.
//
// The replay follows the reference path's dot_general literally (chunks of
// C products from +0, chunk sums merged in order), rounding every step with
// the reference GEMM's own rounders: num::fast's when ref::plan_fast finds
// the double-domain path exact, num::mac and num::add otherwise. Its final
// value is checked against the reference GEMM's result for every output, and
// its event tallies against the reference GEMM's tallies by the tests.
//
// Gradient factors (docs/finetune.md states them as equations). Each
// rounding Q in the chain gets the clipped straight-through derivative:
//   product   p = Q_prod(a b):  dp/d(ab) = 0 when p was flushed to zero or
//                               saturated, else 1;
//   addition  y = Q_acc(x + t): dy/dt = 0 when t was swamped (t != 0, y = x),
//                               or y saturated, or y was flushed to zero;
//                               dy/dx = 0 when y saturated or was flushed,
//                               else 1.
// `fine` keeps a product's gradient when its own product rounding, the
// addition that takes it in, and (chunked) the merge that takes its chunk
// sum in all pass it (dy/dx taken as 1); `recursive` multiplies the whole
// chain: also every later addition's dy/dx, in its chunk and along the
// merges.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "models/numerics/events.hpp"
#include "models/reference/fast_plan.hpp"
#include "models/reference/gemm.hpp"

namespace accsim::binding {

enum class MaskKind { none, events, fine, recursive };

// What happened along one output's accumulation (any step).
enum EventBits : std::uint8_t {
  kProductFlushed = 1,  // a non-zero product rounded to zero
  kSwamped = 2,         // an addition (chunk or merge) left a non-zero addend without effect
  kSaturated = 4,       // a product or an addition overflowed (saturated, or became infinite)
  kSumFlushed = 8,      // an addition's non-zero exact result rounded to zero
};

struct Tallies {
  num::EventCounts product, accumulate, merge;
  Tallies& operator+=(const Tallies& o) {
    product += o.product;
    accumulate += o.accumulate;
    merge += o.merge;
    return *this;
  }
};

class Replayer {
 public:
  // a [m x k], b [k x n] as the reference GEMM received them. Throws
  // std::invalid_argument for stochastic rounding (its draws are keyed per
  // output and step; the replay does not follow them).
  Replayer(const ref::GemmConfig& config, const ref::QuantizedOperand& a, const ref::QuantizedOperand& b);

  struct Output {
    double value = 0;         // accumulator value (scaled domain), fast path
    std::uint64_t bits = 0;   // encoding in the final format, general path
    std::uint8_t events = 0;  // EventBits
  };
  // Output (i, j). With `kind` fine or recursive, sets bit kk of `drop`
  // (ceil(k / 8) bytes, zeroed by the caller) for every product that loses
  // its gradient.
  Output replay(std::size_t i, std::size_t j, MaskKind kind, std::uint8_t* drop, Tallies& tallies);

  // Outputs (i, j0 .. j0 + count - 1), count <= kLanes, side by side in
  // SIMD lanes: the same results, masks and tallies as replay() on each.
  // Returns false, doing nothing, where only replay() serves (no double
  // lanes, or formats that round in different modes).
  static constexpr std::size_t kLanes = 4;
  bool replay_lanes(std::size_t i, std::size_t j0, std::size_t count, MaskKind kind, std::uint8_t* const* drops,
                    Output* out, Tallies& tallies);

  // Whether the replay's result is the reference GEMM's element `index`.
  [[nodiscard]] bool matches(const Output& o, const ref::GemmResult& r, std::size_t index) const;

  struct Step {
    bool d_product, d_addend, d_running;  // the derivatives above, 0 or 1
  };

 private:
  // steps[kk * stride] is product kk's step, merges[c * stride] chunk c's merge.
  void fill_drop(MaskKind kind, std::uint8_t* drop, const Step* steps, const Step* merges, std::size_t stride) const;
  Output replay_fast(std::size_t i, std::size_t j, Tallies& t);
  template <class Mode>
  Output replay_fast_t(std::size_t i, std::size_t j, Tallies& t);
  Output replay_general(std::size_t i, std::size_t j, Tallies& t);
  template <num::Rounding M>
  __attribute__((target("avx2"))) void replay_lanes_t(std::size_t i, std::size_t j0, std::size_t count, Output* out, Tallies& t);

  const ref::GemmConfig& config_;
  const ref::QuantizedOperand& a_;
  const ref::QuantizedOperand& b_;
  std::size_t m_, k_, n_, chunk_, chunks_;
  num::Format merge_format_;
  std::optional<ref::FastPlan> plan_;
  std::vector<double> b_cols_;  // B's values column by column (fast path)
  std::vector<double> b_rows_;  // B's values row by row, rows padded with zeros to a multiple of kLanes
  std::size_t n_padded_ = 0;
  std::vector<Step> steps_;   // per product
  std::vector<Step> merges_;  // per chunk (chunked orders)
  std::vector<Step> lane_steps_, lane_merges_;  // replay_lanes: [kk * kLanes + lane], [c * kLanes + lane]
};

}  // namespace accsim::binding
