// The SystemC structure: thin module shells around the plain models, in the
// MatchLib manner. One clock; the Controller's clocked process is the only
// process, and it reaches the SystolicArray and the three Buffers only
// through its sc_ports, whose interfaces those modules implement by
// forwarding to the model installed for the current run.
//
// accelerator
// ├── clk          sc_clock, 1 ns
// ├── controller   SC_METHOD on clk.pos(): one ControllerModel::cycle() per edge
// ├── array        SystolicArray: ArrayModel (R x C PEs stepped as plain arrays),
// │                or an ExternalArray for co-simulation (cycle_gemm.hpp)
// ├── input_buffer, weight_buffer, output_buffer
// │                Buffer: BufferModel (capacity, ports, bandwidth, traffic)
#pragma once

#include <exception>
#include <systemc>

#include "models/hw/buffer_model.hpp"
#include "models/hw/controller_model.hpp"
#include "models/hw/ports.hpp"

namespace accsim::hw {

struct ArrayIf : virtual sc_core::sc_interface, ArrayPort {};
struct BufferIf : virtual sc_core::sc_interface, BufferPort {};

class SystolicArray : public sc_core::sc_module, public ArrayIf {
 public:
  explicit SystolicArray(const sc_core::sc_module_name& name) : sc_core::sc_module(name) {}
  // Any ArrayPort: the run's ArrayModel, or an external array under test.
  void install(ArrayPort* model) { model_ = model; }

  void begin_tile(const Tile& tile) override { model_->begin_tile(tile); }
  void load_step(std::uint64_t j, std::uint64_t now) override { model_->load_step(j, now); }
  void stream_step(std::uint64_t s, std::uint64_t now) override { model_->stream_step(s, now); }

 private:
  ArrayPort* model_ = nullptr;
};

class Buffer : public sc_core::sc_module, public BufferIf {
 public:
  explicit Buffer(const sc_core::sc_module_name& name) : sc_core::sc_module(name) {}
  void install(BufferModel* model) { model_ = model; }

  Wait poll(const Access& a) override { return model_->poll(a); }
  void commit(const Access& a) override { model_->commit(a); }
  [[nodiscard]] std::uint64_t fill_room() const override { return model_->fill_room(); }
  [[nodiscard]] std::uint64_t fill_missing(const Access& a) const override { return model_->fill_missing(a); }
  void fill(std::uint64_t words) override { model_->fill(words); }
  [[nodiscard]] std::uint64_t fetched() const override { return model_->fetched(); }
  void set_fill_limit(std::uint64_t words) override { model_->set_fill_limit(words); }
  [[nodiscard]] std::uint64_t writeback_pending() const override { return model_->writeback_pending(); }
  void write_back(std::uint64_t words) override { model_->write_back(words); }
  [[nodiscard]] std::uint64_t spills_written_back() const override { return model_->spills_written_back(); }
  [[nodiscard]] int word_bits() const override { return model_->word_bits(); }

 private:
  BufferModel* model_ = nullptr;
};

class Controller : public sc_core::sc_module {
 public:
  sc_core::sc_in<bool> clk;
  sc_core::sc_port<ArrayIf> array;
  sc_core::sc_port<BufferIf> input_buffer, weight_buffer, output_buffer;

  SC_HAS_PROCESS(Controller);
  explicit Controller(const sc_core::sc_module_name& name);

  // The next run: cycle() on every clock edge until done(), then sc_pause().
  void start(ControllerModel* model) { model_ = model, error_ = nullptr; }
  [[nodiscard]] std::exception_ptr error() const { return error_; }

 private:
  void on_clock();
  ControllerModel* model_ = nullptr;
  std::exception_ptr error_;
};

class Accelerator : public sc_core::sc_module {
 public:
  explicit Accelerator(const sc_core::sc_module_name& name);
  sc_core::sc_clock clk;
  Controller controller;
  SystolicArray array;
  Buffer input_buffer, weight_buffer, output_buffer;
};

}  // namespace accsim::hw
