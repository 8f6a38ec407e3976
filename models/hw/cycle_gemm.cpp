#include "models/hw/cycle_gemm.hpp"

#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <systemc>

#include "models/hw/array_model.hpp"
#include "models/hw/buffer_model.hpp"
#include "models/hw/controller_model.hpp"
#include "models/hw/modules.hpp"
#include "models/hw/schedule.hpp"
#include "models/hw/vcd.hpp"

namespace accsim::hw {

namespace {

// The process's one SystemC elaboration.
class Simulation {
 public:
  static Simulation& instance() {
    static Simulation simulation;
    return simulation;
  }
  std::mutex mutex;
  Accelerator* top;

  // The first run completes elaboration (binds the ports); until then other
  // modules may still join the hierarchy. Called with the mutex held.
  void elaborate() {
    if (elaborated_) return;
    sc_core::sc_start(sc_core::SC_ZERO_TIME);
    elaborated_ = true;
  }

 private:
  // Never destroyed: SystemC's kernel outlives no module it knows of.
  Simulation() : top(new Accelerator("accelerator")) {}
  bool elaborated_ = false;
};

std::uint64_t capacity_words(const BufferConfig& b, int word_bits) {
  return b.capacity_bytes * 8 / static_cast<std::uint64_t>(word_bits);
}

// What every run checks before it starts.
void validate_run(const ref::QuantizedOperand& a, const ref::QuantizedOperand& b, const ref::GemmConfig& gemm,
                  const ArrayConfig& array) {
  array.validate(gemm);
  if (a.cols != b.rows) {
    throw std::invalid_argument("gemm: A is " + std::to_string(a.rows) + "x" + std::to_string(a.cols) + " but B is " +
                                std::to_string(b.rows) + "x" + std::to_string(b.cols) + ": inner dimensions differ");
  }
  const ref::AccumulationOrder order = array.order();
  if (!ref::same_order(gemm.order, order, gemm.accumulator)) {
    throw ConfigError("order", "the " + std::string(ref::to_string(array.dataflow)) + " dataflow on " +
                                   std::to_string(array.rows) + " rows sums in the order '" + ref::to_string(order) +
                                   "', not '" + ref::to_string(gemm.order) + "'; use that order for both engines");
  }
}

// Runs the schedule on the accelerator with `array_port` as its array: the
// buffers, the controller and the clock. Fills every field of `st` but the
// register toggles and widths, which only the array knows.
void run_schedule(const Schedule& schedule, const ref::GemmConfig& gemm, const ArrayConfig& array,
                  ArrayPort& array_port, VcdRecorder* vcd, CycleStats& st) {
  const int operand_bits = num::width(gemm.multiplier);
  const int output_bits = num::width(array.output_format(gemm.accumulator));
  const Residency residency = plan_residency(schedule, capacity_words(array.input_buffer, operand_bits),
                                             capacity_words(array.weight_buffer, operand_bits),
                                             capacity_words(array.output_buffer, output_bits));
  BufferModel input(array.input_buffer, operand_bits, residency.input_working_set, residency.input,
                    residency.input_fill);
  BufferModel weight(array.weight_buffer, operand_bits, residency.weight_working_set, residency.weight,
                     residency.weight_fill);
  BufferModel output(array.output_buffer, output_bits, residency.output_working_set, residency.output,
                     residency.output_fill);

  Simulation& sim = Simulation::instance();
  std::uint64_t cycles = 0;
  {
    std::lock_guard lock(sim.mutex);
    sim.elaborate();
    Accelerator& top = *sim.top;
    top.array.install(&array_port);
    top.input_buffer.install(&input);
    top.weight_buffer.install(&weight);
    top.output_buffer.install(&output);
    // The controller reaches the array and the buffers through its ports.
    ControllerModel controller(schedule, residency, array.ws_partial_sums == WsPartialSums::feedback,
                               array.dram_bytes_per_cycle, *top.controller.array.operator->(),
                               *top.controller.input_buffer.operator->(), *top.controller.weight_buffer.operator->(),
                               *top.controller.output_buffer.operator->(), vcd);
    top.controller.start(&controller);
    sc_core::sc_start();
    top.array.install(nullptr);
    top.input_buffer.install(nullptr);
    top.weight_buffer.install(nullptr);
    top.output_buffer.install(nullptr);
    if (std::exception_ptr error = top.controller.error()) std::rethrow_exception(error);
    cycles = controller.cycles();
    st.phases = controller.phases();
    st.stalls = controller.stalls();
  }
  if (vcd != nullptr) vcd->finish(cycles);

  const GemmShape& shape = schedule.shape();
  st.rows = array.rows;
  st.cols = array.cols;
  st.cycles = cycles;
  st.formula_cycles = schedule.formula().total();
  st.tiles = schedule.tile_count();
  st.useful_macs = static_cast<std::uint64_t>(shape.m) * shape.k * shape.n;
  st.input = input.stats();
  st.weight = weight.stats();
  st.output = output.stats();
}

}  // namespace

Accelerator& accelerator() { return *Simulation::instance().top; }

PhaseCycles formula_cycles(const ArrayConfig& array, std::size_t m, std::size_t k, std::size_t n) {
  return Schedule(array, GemmShape{m, k, n}).formula();
}

CycleResult run_cycle_gemm(const ref::QuantizedOperand& a, const ref::QuantizedOperand& b,
                           const ref::GemmConfig& gemm, const ArrayConfig& array) {
  validate_run(a, b, gemm, array);
  const Schedule schedule(array, GemmShape{a.rows, a.cols, b.cols});
  ArrayModel model(array, schedule, a, b, gemm);
  std::optional<VcdRecorder> vcd;
  if (!array.vcd_path.empty()) {
    vcd.emplace(array.vcd_path, array.vcd_window, array.rows, array.cols, model.register_widths(), array.mul_latency);
    model.attach(&*vcd);
  }
  CycleResult result;
  run_schedule(schedule, gemm, array, model, vcd ? &*vcd : nullptr, result.stats);
  model.collect(result.gemm);
  result.stats.toggles = model.toggles();
  result.stats.register_bits = model.register_widths();
  return result;
}

CycleResult run_cycle_gemm(const ref::QuantizedOperand& a, const ref::QuantizedOperand& b,
                           const ref::GemmConfig& gemm, const ArrayConfig& array, ExternalArray& external) {
  validate_run(a, b, gemm, array);
  if (!array.vcd_path.empty()) {
    throw ConfigError("vcd_path", "an external array records no waveform here; leave vcd_path empty");
  }
  const Schedule schedule(array, GemmShape{a.rows, a.cols, b.cols});
  external.start(schedule, a, b);
  CycleResult result;
  run_schedule(schedule, gemm, array, external, nullptr, result.stats);
  external.finish(result.gemm);
  return result;
}

}  // namespace accsim::hw
