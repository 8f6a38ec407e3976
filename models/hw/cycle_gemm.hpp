// The cycle-accurate engine: C = A·B run cycle by cycle on the SystemC model
// of the MAC array, bit-identical to ref::accumulate_products with the order
// the dataflow produces (ArrayConfig::order()).
//
// The SystemC kernel can elaborate only once per process, so the module
// hierarchy is built on the first call and kept; each call installs its
// models, runs the clock until the controller is done (sc_pause), and takes
// them out again. Calls are serialized by a mutex; any number of runs may
// happen in one process. Nothing here prints.
#pragma once

#include <cstddef>

#include "models/hw/array_config.hpp"
#include "models/hw/ports.hpp"
#include "models/hw/schedule.hpp"
#include "models/hw/stats.hpp"
#include "models/reference/gemm.hpp"

namespace accsim::hw {

class Accelerator;  // modules.hpp

// Throws ConfigError for a bad array configuration or an order that is not
// the one the dataflow produces (field "order"), and std::invalid_argument
// when the operands' inner dimensions differ. gemm.order must equal
// array.order() (an unset merge format reads as the accumulator format).
[[nodiscard]] CycleResult run_cycle_gemm(const ref::QuantizedOperand& a, const ref::QuantizedOperand& b,
                                         const ref::GemmConfig& gemm, const ArrayConfig& array);

// The closed-form cycles of an M x K x N GEMM on this array when nothing
// stalls, phase by phase (docs/array.md).
[[nodiscard]] PhaseCycles formula_cycles(const ArrayConfig& array, std::size_t m, std::size_t k, std::size_t n);

// --- co-simulation ---------------------------------------------------------------
//
// An array implemented outside this library, run in place of ArrayModel by the
// same controller and buffers through the same ArrayPort calls: for example
// the reference RTL's PEs Verilated as SystemC modules (rtl_ref/cosim), whose
// outputs and cycle count must then equal the model's.
class ExternalArray : public ArrayPort {
 public:
  // Before the run's first cycle (and before begin_tile of its first tile);
  // the schedule and the operands stay alive until finish().
  virtual void start(const Schedule& schedule, const ref::QuantizedOperand& a, const ref::QuantizedOperand& b) = 0;
  // After its last cycle: c_bits, c, c_format and the product and accumulate
  // event counts, as ArrayModel::collect fills them.
  virtual void finish(ref::GemmResult& out) = 0;

 protected:
  ~ExternalArray() = default;
};

// The process's accelerator (modules.hpp), built on first use. Modules of
// an ExternalArray join the SystemC hierarchy and bind to its clk before the
// first run: that run completes elaboration, after which the hierarchy is
// fixed.
[[nodiscard]] Accelerator& accelerator();

// run_cycle_gemm with `external` in place of the array model. Cycles, phases,
// stalls and buffer statistics come from the controller as always; the GEMM
// result from external.finish(). No register toggles are counted, and
// array.vcd_path must be empty (ConfigError otherwise).
[[nodiscard]] CycleResult run_cycle_gemm(const ref::QuantizedOperand& a, const ref::QuantizedOperand& b,
                                         const ref::GemmConfig& gemm, const ArrayConfig& array,
                                         ExternalArray& external);

}  // namespace accsim::hw
