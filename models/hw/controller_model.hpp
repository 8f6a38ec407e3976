// The controller: walks the tiles, issues one array step per cycle when every
// buffer can serve it (else the whole array is frozen for the cycle: a stall),
// and runs the DMA that refills the buffers from DRAM and writes results and
// spilled partial sums back. Plain C++: the Controller module's clocked
// process calls cycle() once per clock edge.
#pragma once

#include <cstdint>
#include <optional>

#include "models/hw/array_config.hpp"
#include "models/hw/buffer_model.hpp"
#include "models/hw/ports.hpp"
#include "models/hw/schedule.hpp"
#include "models/hw/stats.hpp"

namespace accsim::hw {

class VcdRecorder;

// Which working sets fit their buffer, and how many words the DMA fetches.
struct Residency {
  bool input = false, weight = false, output = false;
  std::uint64_t input_working_set = 0, weight_working_set = 0, output_working_set = 0;  // words
  std::uint64_t input_fill = 0, weight_fill = 0, output_fill = 0;  // words fetched from DRAM over the run
};

// WS: A (M x K) is reused by every n-tile: fetched once if it fits the input
// buffer, else once per n-tile. Weights are used once. The partial sums of an
// n-tile (M x min(C, N)) stay in the output buffer if they fit, else every
// k-tile but the last spills them and the next refetches them.
// OS: a panel of A (min(R, M) x K) is reused by the n-tiles of its m-tile; B
// (K x N) by every m-tile; results leave as they drain.
[[nodiscard]] Residency plan_residency(const Schedule& schedule, std::uint64_t input_capacity_words,
                                       std::uint64_t weight_capacity_words, std::uint64_t output_capacity_words);

class ControllerModel {
 public:
  // ws_feedback: WS partial sums enter at the top of the columns (else they
  // are merged in the output buffer).
  ControllerModel(const Schedule& schedule, const Residency& residency, bool ws_feedback, double dram_bytes_per_cycle,
                  ArrayPort& array, BufferPort& input, BufferPort& weight, BufferPort& output, VcdRecorder* vcd);

  [[nodiscard]] bool done() const;
  void cycle();  // one clock cycle; throws std::logic_error on a deadlock (an internal error)

  [[nodiscard]] std::uint64_t cycles() const { return cycle_; }
  [[nodiscard]] const PhaseCycles& phases() const { return phases_; }
  [[nodiscard]] const StallCycles& stalls() const { return stalls_; }

 private:
  enum class Phase : std::uint8_t { weight_load, fill, steady, drain };
  void start_tile(std::size_t index);
  void plan_step();  // accesses and phase of the current step
  void update_output_fill_limit();
  std::uint64_t dma_pass(bool for_current_step);

  const Schedule& schedule_;
  Residency residency_;
  bool feedback_;
  DramModel dram_;
  ArrayPort& array_;
  BufferPort* buffers_[3];  // input, weight, output
  VcdRecorder* vcd_;

  std::size_t tile_index_ = 0;
  Tile tile_;
  TileTiming timing_;
  std::uint64_t step_ = 0;        // within the tile, weight-load steps first
  std::uint64_t array_time_ = 0;  // steps taken since the run began
  bool array_done_ = false;
  Access access_[3];
  Phase phase_ = Phase::fill;

  // WS output spills: which refetches the DMA may start (see .cpp).
  std::uint64_t refetch_base_ = 0;   // words refetched before the current tile
  std::uint64_t refetch_units_ = 0;  // units of the current tile allowed so far
  std::uint64_t tile_writes_ = 0;    // output vectors written in the current tile

  std::uint64_t cycle_ = 0;
  std::uint64_t idle_cycles_ = 0;
  std::uint64_t deadlock_bound_;
  PhaseCycles phases_;
  StallCycles stalls_;
};

}  // namespace accsim::hw
