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
#include "models/hw/stats.hpp"
#include "models/reference/gemm.hpp"

namespace accsim::hw {

// Throws ConfigError for a bad array configuration or an order that is not
// the one the dataflow produces (field "order"), and std::invalid_argument
// when the operands' inner dimensions differ. gemm.order must equal
// array.order() (an unset merge format reads as the accumulator format).
[[nodiscard]] CycleResult run_cycle_gemm(const ref::QuantizedOperand& a, const ref::QuantizedOperand& b,
                                         const ref::GemmConfig& gemm, const ArrayConfig& array);

// The closed-form cycles of an M x K x N GEMM on this array when nothing
// stalls, phase by phase (docs/array.md).
[[nodiscard]] PhaseCycles formula_cycles(const ArrayConfig& array, std::size_t m, std::size_t k, std::size_t n);

}  // namespace accsim::hw
