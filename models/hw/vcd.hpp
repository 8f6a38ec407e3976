// A VCD waveform of the array: clock, stall, phase and tile at the top, and
// for every PE in the window its activation, weight, product and sum
// registers. Written by hand rather than through sc_trace: the array's
// registers live in plain arrays (one process steps the whole array), and a
// window can be chosen per run while the SystemC kernel lives on.
//
// The array reports a register's new value with the array step from which it
// is visible; the controller reports, cycle by cycle, which step ran (none
// while stalled). The recorder maps steps to clock cycles and writes the
// changes in time order, one clock period = 10 time units of 1 ns.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "models/hw/array_config.hpp"
#include "models/hw/stats.hpp"
#include "models/hw/units.hpp"

namespace accsim::hw {

enum class PeSignal : std::uint8_t { activation, weight, product, sum };

// The VCD's phase signal.
enum class PhaseCode : std::uint8_t { idle = 0, weight_load = 1, fill = 2, steady = 3, drain = 4 };

class VcdRecorder {
 public:
  // Throws ConfigError("vcd_path", ...) when the file cannot be written.
  // `latest_lag` bounds how many steps after a register's change the array
  // may still report it (the multiplier latency).
  VcdRecorder(const std::string& path, const VcdWindow& window, std::size_t rows, std::size_t cols,
              const RegisterWidths& widths, unsigned latest_lag);

  [[nodiscard]] bool row_traced(std::size_t r) const { return r >= row_begin_ && r < row_end_; }
  [[nodiscard]] bool col_traced(std::size_t c) const { return c >= col_begin_ && c < col_end_; }
  [[nodiscard]] bool traced(std::size_t r, std::size_t c) const { return row_traced(r) && col_traced(c); }

  // A PE register holds `bits` from array step `step` on.
  void pe(PeSignal signal, std::size_t r, std::size_t c, std::uint64_t step, u128 bits);
  // Once per clock cycle, from the controller.
  void cycle(std::uint64_t cycle, std::optional<std::uint64_t> step, PhaseCode phase, bool stall, std::uint64_t tile);
  // Writes what is left; `cycles` is the run's length.
  void finish(std::uint64_t cycles);

 private:
  struct Signal {
    std::string id;
    int width = 1;
    u128 value = 0;
    u128 written = 0;
    bool ever_written = false;
  };
  struct Change {
    std::uint32_t signal;
    u128 value;
  };
  std::uint32_t add_signal(int width);
  void write_header(const std::vector<std::string>& scopes);
  void flush_before(std::uint64_t cycle);  // writes every cycle < `cycle`
  void write_value(const Signal& s);

  std::ofstream out_;
  std::string path_;
  VcdWindow window_;
  std::size_t row_begin_, row_end_, col_begin_, col_end_;
  std::size_t traced_cols_;
  unsigned lag_;
  std::vector<Signal> signals_;
  std::uint32_t clk_ = 0, stall_ = 0, phase_ = 0, tile_ = 0, first_pe_ = 0;
  std::map<std::uint64_t, std::vector<Change>> by_step_;   // steps not taken yet
  std::map<std::uint64_t, std::uint64_t> step_cycle_;      // recent steps taken -> their cycle
  std::map<std::uint64_t, std::vector<Change>> by_cycle_;  // known cycle, not written yet
  std::uint64_t next_cycle_ = 0;                            // first cycle not written yet
  bool dumped_ = false;
  std::optional<std::uint64_t> last_step_;
  std::uint64_t last_step_cycle_ = 0;
};

}  // namespace accsim::hw
