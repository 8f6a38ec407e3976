#include "rtl_ref/cosim/rtl_pe_array.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>
#include <variant>

#include "models/hw/array_config.hpp"
#include "models/numerics/arith.hpp"

namespace accsim::cosim {

namespace {

std::string at(std::size_t r, std::size_t c, const hw::Tile& tile) {
  return "PE(" + std::to_string(r) + "," + std::to_string(c) + ") tile " + std::to_string(tile.index);
}

bool stochastic(const num::Format& f) {
  const auto* ff = std::get_if<num::FloatFormat>(&f);
  return ff != nullptr && ff->rounding == num::Rounding::sr;
}

}  // namespace

void Deviations::add(std::string what) {
  if (first.size() < kKept) first.push_back(std::move(what));
  ++count;
}

RtlPeArray::RtlPeArray(const sc_core::sc_module_name& name, std::size_t rows, std::size_t cols,
                       const ref::GemmConfig& formats, const PeFactory& make_pe)
    : sc_core::sc_module(name),
      clk("clk"),
      rows_(rows),
      cols_(cols),
      accumulator_(formats.accumulator),
      product_rounded_(formats.product.has_value()),
      pe_clk_("pe_clk", false),
      rst_n_("rst_n", false),
      no_draw_("no_draw", 0),
      a_("a", rows * (cols + 1)),
      b_("b", (rows + 1) * cols),
      in_valid_("in_valid", rows * cols),
      in_clear_("in_clear", rows * cols),
      out_valid_("out_valid", rows * cols),
      acc_("acc", rows * cols),
      acc_events_("acc_events", rows * cols),
      prod_events_("prod_events", rows * cols) {
  if (stochastic(formats.accumulator) || (formats.product && stochastic(*formats.product))) {
    throw std::invalid_argument("RtlPeArray: stochastic rounding needs the model's draws on sr_prod/sr_acc");
  }
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < cols; ++c) {
      const std::size_t i = pe(r, c);
      PePins pins;
      pins.clk = &pe_clk_;
      pins.rst_n = &rst_n_;
      pins.in_valid = &in_valid_[i];
      pins.in_clear = &in_clear_[i];
      pins.a = &a_[r * (cols + 1) + c];
      pins.a_out = &a_[r * (cols + 1) + c + 1];
      pins.b = &b_[r * cols + c];
      pins.b_out = &b_[(r + 1) * cols + c];
      pins.sr_prod = &no_draw_;
      pins.sr_acc = &no_draw_;
      pins.out_valid = &out_valid_[i];
      pins.acc = &acc_[i];
      pins.acc_events = &acc_events_[i];
      pins.prod_events = &prod_events_[i];
      const std::string pe_name = "pe_" + std::to_string(r) + "_" + std::to_string(c);
      pes_.push_back(make_pe(pe_name.c_str(), pins));
    }
  }
  SC_METHOD(clock_pes);
  sensitive << clk;
  dont_initialize();
}

// The PEs' clock: a rising edge at each falling edge of clk that follows an
// issued step (or the reset), low again at the next rising edge.
void RtlPeArray::clock_pes() {
  if (clk.read()) {
    pe_clk_.write(false);
    return;
  }
  pe_clk_.write(edge_due_);
  edge_due_ = false;
}

void RtlPeArray::start(const hw::Schedule& schedule, const ref::QuantizedOperand& a, const ref::QuantizedOperand& b) {
  if (schedule.weight_stationary()) {
    throw hw::ConfigError("dataflow", "the RTL PE accumulates in place: run it output-stationary (os)");
  }
  if (schedule.rows() != rows_ || schedule.cols() != cols_) {
    throw hw::ConfigError("rows", "the RTL array is " + std::to_string(rows_) + "x" + std::to_string(cols_) + ", not " +
                                      std::to_string(schedule.rows()) + "x" + std::to_string(schedule.cols()));
  }
  schedule_ = &schedule;
  a_operand_ = &a;
  b_operand_ = &b;
  lm_ = schedule.mul_latency();
  la_ = schedule.add_latency();
  k_ = schedule.shape().k;
  drain_start_ = schedule.os_drain_start();
  c_bits_.assign(schedule.shape().m * schedule.shape().n, 0);
  sums_.assign(rows_ * cols_, 0);
  product_events_ = {};
  accumulate_events_ = {};
  deviations_ = {};
  // The run's first edge resets the PEs. Every run resumes the kernel at a
  // rising edge (where the previous run paused, or the clock's first, taken
  // during elaboration), so a falling edge comes before the first step;
  // stream_step checks that it has.
  rst_n_.write(false);
  edge_due_ = true;
}

void RtlPeArray::begin_tile(const hw::Tile& tile) {
  tile_ = tile;
  std::fill(sums_.begin(), sums_.end(), 0);
}

void RtlPeArray::load_step(std::uint64_t /*j*/, std::uint64_t /*now*/) {
  throw std::logic_error("RtlPeArray: a weight load in an output-stationary run");
}

void RtlPeArray::stream_step(std::uint64_t s, std::uint64_t /*now*/) {
  if (edge_due_) throw std::logic_error("RtlPeArray: a step issued before the PEs took the previous edge");
  rst_n_.write(true);
  observe_outputs(s);
  if (s >= drain_start_) drain(s - drain_start_);
  drive_inputs(s);
  edge_due_ = true;
}

// Term k of the tile meets a PE `offset` steps after it enters the array
// (offset r + c for the operands, r + c + Lm + La for the sum): s = k*La +
// offset, for rows and columns the tile uses (the caller checks those).
bool RtlPeArray::term_at(std::uint64_t s, std::uint64_t offset, std::uint64_t& k) const {
  if (s < offset || (s - offset) % la_ != 0) return false;
  k = (s - offset) / la_;
  return k < k_;
}

// What the PEs produced on the previous step's edge, against when the
// model's PE has each sum.
void RtlPeArray::observe_outputs(std::uint64_t s) {
  for (std::size_t r = 0; r < rows_; ++r) {
    for (std::size_t c = 0; c < cols_; ++c) {
      const std::size_t i = pe(r, c);
      const bool used = r < tile_.mr && c < tile_.nc;
      std::uint64_t k = 0;
      const bool due = used && term_at(s, r + c + lm_ + la_, k);
      const bool valid = out_valid_[i].read();
      if (valid) {
        if (!due) {
          deviations_.add(at(r, c, tile_) + ": a sum at step " + std::to_string(s) + ", where the model has none");
        } else if (sums_[i] != k) {
          deviations_.add(at(r, c, tile_) + ": sum " + std::to_string(sums_[i]) + " at step " + std::to_string(s) +
                          ", where the model has sum " + std::to_string(k));
        }
        ++sums_[i];
        accumulate_events_.record(static_cast<num::Events>(acc_events_[i].read()));
        if (product_rounded_) product_events_.record(static_cast<num::Events>(prod_events_[i].read()));
      } else if (due) {
        deviations_.add(at(r, c, tile_) + ": no sum at step " + std::to_string(s) + ", where the model has sum " +
                        std::to_string(k));
      }
    }
  }
}

// Drain step d: the model shifts output row R-1-d into the output buffer, so
// that row's accumulators are the results, complete or not.
void RtlPeArray::drain(std::uint64_t d) {
  if (d >= rows_) return;
  const std::size_t r = rows_ - 1 - d;
  if (r >= tile_.mr) return;
  const std::size_t n = schedule_->shape().n;
  for (std::size_t c = 0; c < tile_.nc; ++c) {
    const std::size_t i = pe(r, c);
    if (sums_[i] != k_) {
      deviations_.add(at(r, c, tile_) + ": drained after " + std::to_string(sums_[i]) + " of " + std::to_string(k_) +
                      " sums");
    }
    c_bits_[(tile_.m0 + r) * n + tile_.n0 + c] = acc_[i].read();
  }
}

// The edge of the array for step s: row r's operand of term k enters at
// k*La + r and column c's at k*La + c (the skew); PE(r,c) gets in_valid
// when both have travelled to it, at k*La + r + c, and in_clear with term 0
// (its accumulator restarts from +0, where the model's drain shifted +0 in).
void RtlPeArray::drive_inputs(std::uint64_t s) {
  const std::size_t K = k_, N = schedule_->shape().n;
  std::uint64_t k = 0;
  for (std::size_t r = 0; r < tile_.mr; ++r) {
    if (term_at(s, r, k)) {
      a_[r * (cols_ + 1)].write(static_cast<std::uint32_t>(a_operand_->bits[(tile_.m0 + r) * K + k]));
    }
  }
  for (std::size_t c = 0; c < tile_.nc; ++c) {
    if (term_at(s, c, k)) b_[c].write(static_cast<std::uint32_t>(b_operand_->bits[k * N + tile_.n0 + c]));
  }
  for (std::size_t r = 0; r < rows_; ++r) {
    for (std::size_t c = 0; c < cols_; ++c) {
      const bool valid = r < tile_.mr && c < tile_.nc && term_at(s, r + c, k);
      in_valid_[pe(r, c)].write(valid);
      in_clear_[pe(r, c)].write(valid && k == 0);
    }
  }
}

void RtlPeArray::finish(ref::GemmResult& out) {
  const std::size_t m = schedule_->shape().m, n = schedule_->shape().n;
  out.c_format = accumulator_;
  out.c = ref::Matrix(m, n);
  for (std::size_t i = 0; i < c_bits_.size(); ++i) out.c.data[i] = num::to_double(c_bits_[i], accumulator_);
  out.c_bits = std::move(c_bits_);
  out.stats.product = product_events_;
  out.stats.accumulate = accumulate_events_;
  out.stats.merge = {};
  out.stats.fast_path = false;
  // When the kernel paused at the rising edge of the last step, that step's
  // edge is still due; it is a drain step (no operand enters), so it is
  // dropped rather than taken in the next run, which starts with a reset.
  edge_due_ = false;
  schedule_ = nullptr;
  a_operand_ = b_operand_ = nullptr;
}

}  // namespace accsim::cosim
