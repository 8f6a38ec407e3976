// An output-stationary R x C array whose PEs are the reference RTL's `pe`
// (rtl_ref/rtl/pe.sv), each Verilated as a SystemC module (verilator --sc),
// wired systolically and run by accsim's own controller and buffers in place
// of the array model (hw::ExternalArray).
//
//            B column c (skewed by c)
//                 │ b
//   A row r ──a──► PE(r,0) ──a_out──► PE(r,1) ──a_out──► ...
//   (skewed by r)   │ b_out
//                   ▼
//                 PE(r+1,0) ...
//
// What is RTL: the operand registers that forward a and b to the neighbours,
// the multiplier, the product register, the adder and the accumulator.
// What is this module: the array's edge, which the model also keeps outside
// its PEs: the input skew (row r's operands enter r steps after row 0's,
// column c's c steps after column 0's), the valid and first-term bits (pe.sv
// has no valid output to forward, so the edge hands PE(r,c) its in_valid and
// in_clear at the step its operands arrive through a_out and b_out; an RTL
// that forwarded later would multiply the wrong pairs), and the output path
// (at drain step d the accumulators of row R-1-d are read, where the model
// shifts them out).
//
// Clocking: the PEs' clk is the accelerator clock's falling edge, gated by
// the controller. The controller issues an array step at a rising edge
// (stream_step writes the PE inputs); the PEs take it half a cycle later, and
// their outputs are stable at the next rising edge, where the next
// stream_step reads them. A stalled cycle issues no step and the PEs see no
// edge, which is the model's global clock gating. Each run starts with one
// reset edge (rst_n low) before its first step.
//
// The model's timing is checked, not assumed: its PE(r,c) takes term k of a
// tile at step k*La + r + c and holds the sum from step
// k*La + r + c + Lm + La on (docs/array.md). Every out_valid must come at
// exactly such a step and no such step may pass without one, and every
// accumulator drained must have taken all K terms. Anything else is a
// Deviation: a wrong RTL latency shows up here even when the bits happen to
// agree, and a wrong result shows up in the bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <systemc>
#include <vector>

#include "models/hw/cycle_gemm.hpp"
#include "models/hw/schedule.hpp"
#include "models/numerics/events.hpp"
#include "models/reference/gemm.hpp"

namespace accsim::cosim {

// The signals one PE's ports connect to. Verilator's SystemC ports are bool
// for one bit and uint32_t up to 32 bits, which covers every operand and
// accumulator of up to 32 bits; a wider configuration would not compile
// against these (make_verilated_pe binds them).
struct PePins {
  sc_core::sc_signal<bool>* clk = nullptr;
  sc_core::sc_signal<bool>* rst_n = nullptr;
  sc_core::sc_signal<bool>* in_valid = nullptr;
  sc_core::sc_signal<bool>* in_clear = nullptr;
  sc_core::sc_signal<std::uint32_t>* a = nullptr;
  sc_core::sc_signal<std::uint32_t>* b = nullptr;
  sc_core::sc_signal<std::uint32_t>* sr_prod = nullptr;
  sc_core::sc_signal<std::uint32_t>* sr_acc = nullptr;
  sc_core::sc_signal<std::uint32_t>* a_out = nullptr;
  sc_core::sc_signal<std::uint32_t>* b_out = nullptr;
  sc_core::sc_signal<bool>* out_valid = nullptr;
  sc_core::sc_signal<std::uint32_t>* acc = nullptr;
  sc_core::sc_signal<std::uint32_t>* acc_events = nullptr;
  sc_core::sc_signal<std::uint32_t>* prod_events = nullptr;
};

// Builds one PE module named `name` with its ports bound to `pins`.
using PeFactory = std::function<std::unique_ptr<sc_core::sc_module>(const char* name, const PePins& pins)>;

// The PeFactory of a Verilated `pe` class (Vpe_paper, ...). Verilator fixes
// parameters when it translates, so each configuration is its own class.
template <class Pe>
std::unique_ptr<sc_core::sc_module> make_verilated_pe(const char* name, const PePins& pins) {
  auto pe = std::make_unique<Pe>(name);
  pe->clk(*pins.clk);
  pe->rst_n(*pins.rst_n);
  pe->in_valid(*pins.in_valid);
  pe->in_clear(*pins.in_clear);
  pe->a(*pins.a);
  pe->b(*pins.b);
  pe->sr_prod(*pins.sr_prod);
  pe->sr_acc(*pins.sr_acc);
  pe->a_out(*pins.a_out);
  pe->b_out(*pins.b_out);
  pe->out_valid(*pins.out_valid);
  pe->acc(*pins.acc);
  pe->acc_events(*pins.acc_events);
  pe->prod_events(*pins.prod_events);
  return pe;
}

// Where the RTL departed from the model's PE timing in one run. A correct
// RTL has none.
struct Deviations {
  static constexpr std::size_t kKept = 5;
  std::uint64_t count = 0;
  std::vector<std::string> first;  // the first kKept, described
  void add(std::string what);
};

class RtlPeArray : public sc_core::sc_module, public hw::ExternalArray {
 public:
  sc_core::sc_in<bool> clk;  // bind to hw::accelerator().clk

  // `formats`: what the PE was Verilated for. Its accumulator format is the
  // results' format; a product format means the PE rounds its product (and
  // reports product events), none that it is fused. Stochastic rounding is
  // not supported (the draw ports are tied to 0).
  SC_HAS_PROCESS(RtlPeArray);
  RtlPeArray(const sc_core::sc_module_name& name, std::size_t rows, std::size_t cols, const ref::GemmConfig& formats,
             const PeFactory& make_pe);

  // hw::ExternalArray. start() throws hw::ConfigError for a weight-stationary
  // schedule (the PE accumulates in place) or one for another array size.
  void start(const hw::Schedule& schedule, const ref::QuantizedOperand& a, const ref::QuantizedOperand& b) override;
  void begin_tile(const hw::Tile& tile) override;
  void load_step(std::uint64_t j, std::uint64_t now) override;
  void stream_step(std::uint64_t s, std::uint64_t now) override;
  void finish(ref::GemmResult& out) override;

  // Of the last run.
  [[nodiscard]] const Deviations& deviations() const { return deviations_; }

 private:
  [[nodiscard]] std::size_t pe(std::size_t r, std::size_t c) const { return r * cols_ + c; }
  // The term PE(r,c) of the current tile takes at stream step s, if any.
  [[nodiscard]] bool term_at(std::uint64_t s, std::uint64_t offset, std::uint64_t& k) const;
  void clock_pes();  // on both edges of clk: drives pe_clk_
  void observe_outputs(std::uint64_t s);
  void drain(std::uint64_t d);
  void drive_inputs(std::uint64_t s);

  std::size_t rows_, cols_;
  num::Format accumulator_;
  bool product_rounded_;

  sc_core::sc_signal<bool> pe_clk_, rst_n_;
  sc_core::sc_signal<std::uint32_t> no_draw_;  // sr_prod, sr_acc: deterministic formats only
  // a_[r * (C+1) + c] enters PE(r,c); column C takes the last PE's a_out.
  // b_[r * C + c] enters PE(r,c); row R takes the last PE's b_out.
  sc_core::sc_vector<sc_core::sc_signal<std::uint32_t>> a_, b_;
  sc_core::sc_vector<sc_core::sc_signal<bool>> in_valid_, in_clear_, out_valid_;
  sc_core::sc_vector<sc_core::sc_signal<std::uint32_t>> acc_, acc_events_, prod_events_;
  std::vector<std::unique_ptr<sc_core::sc_module>> pes_;

  // The run.
  const hw::Schedule* schedule_ = nullptr;
  const ref::QuantizedOperand* a_operand_ = nullptr;
  const ref::QuantizedOperand* b_operand_ = nullptr;
  std::uint64_t lm_ = 0, la_ = 0, k_ = 0, drain_start_ = 0;
  hw::Tile tile_;
  bool edge_due_ = false;              // a step (or the reset) waits for the PEs' next edge
  std::vector<std::uint64_t> sums_;    // per PE: sums delivered in the current tile
  std::vector<std::uint64_t> c_bits_;  // the results, M x N
  num::EventCounts product_events_, accumulate_events_;
  Deviations deviations_;
};

}  // namespace accsim::cosim
