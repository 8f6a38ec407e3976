// The systolic array's state and its per-cycle behaviour: R x C PEs held as
// plain arrays of registers and stepped by one call per clock cycle (the
// SystolicArray module calls it; there is no process or signal per PE).
//
// Each step visits exactly the PEs whose adder takes an operand in that
// cycle: in WS, vector m reaches PE(r, c)'s adder at stream step
// m + r*La + c + Lm; in OS, step k at k*La + r + c + Lm. The pipeline
// registers between PEs are kept as delay lines indexed by time (a shift
// register with a moving head), so nothing is copied to move data along.
// The arithmetic is the Multiplier / Accumulator of units.hpp, or the same
// operations in num::fast's lanes when they are exact.
#pragma once

#include <memory>

#include "models/hw/array_config.hpp"
#include "models/hw/ports.hpp"
#include "models/hw/schedule.hpp"
#include "models/hw/stats.hpp"
#include "models/reference/gemm.hpp"

namespace accsim::hw {

class VcdRecorder;

class ArrayModel final : public ArrayPort {
 public:
  ArrayModel(const ArrayConfig& array, const Schedule& schedule, const ref::QuantizedOperand& a,
             const ref::QuantizedOperand& b, const ref::GemmConfig& gemm);
  ~ArrayModel();
  ArrayModel(const ArrayModel&) = delete;
  ArrayModel& operator=(const ArrayModel&) = delete;

  void begin_tile(const Tile& tile) override;
  void load_step(std::uint64_t j, std::uint64_t now) override;
  void stream_step(std::uint64_t s, std::uint64_t now) override;

  void attach(VcdRecorder* vcd);
  [[nodiscard]] bool fast_path() const;
  [[nodiscard]] RegisterWidths register_widths() const;
  [[nodiscard]] ToggleCounts toggles() const;
  // After the run: c_bits, c, c_format and the product / accumulate / merge
  // event counts, as ref::accumulate_products fills them.
  void collect(ref::GemmResult& out) const;

  class Kernel;

 private:
  std::unique_ptr<Kernel> kernel_;
};

}  // namespace accsim::hw
