#include "models/hw/modules.hpp"

namespace accsim::hw {

Controller::Controller(const sc_core::sc_module_name& name) : sc_core::sc_module(name) {
  // A clocked method rather than an SC_CTHREAD: the controller's state lives
  // in ControllerModel, so no coroutine stack is needed, which saves a
  // context switch per cycle and keeps the engine usable under
  // AddressSanitizer (SystemC's QuickThreads stack switching confuses it).
  SC_METHOD(on_clock);
  sensitive << clk.pos();
  dont_initialize();
}

void Controller::on_clock() {
  if (model_ == nullptr) return;
  // An exception must not leave the process: SystemC would report it and
  // the kernel could not run again. It is handed back to the caller.
  try {
    if (!model_->done()) model_->cycle();
    if (!model_->done()) return;
  } catch (...) {
    error_ = std::current_exception();
  }
  model_ = nullptr;
  sc_core::sc_pause();
}

Accelerator::Accelerator(const sc_core::sc_module_name& name)
    : sc_core::sc_module(name),
      clk("clk", 1, sc_core::SC_NS),
      controller("controller"),
      array("array"),
      input_buffer("input_buffer"),
      weight_buffer("weight_buffer"),
      output_buffer("output_buffer") {
  controller.clk(clk);
  controller.array(array);
  controller.input_buffer(input_buffer);
  controller.weight_buffer(weight_buffer);
  controller.output_buffer(output_buffer);
}

}  // namespace accsim::hw
