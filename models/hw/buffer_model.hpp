// An on-chip SRAM as the array and the DMA see it: capacity in words of its
// format, a port bandwidth in words per cycle, and counts of every access.
// It tracks space and timing, not values: the array reads operand values at
// the cycle the buffer delivers them.
//
// Space: words fetched from DRAM occupy the buffer until their last use
// (streaming data: the read that consumes them; resident data: the last of
// its reuses); words the array writes occupy it until written back to DRAM.
// The DMA fetches in the order the array consumes, as far ahead as space and
// the controller's fill limit allow.
#pragma once

#include <cstdint>
#include <deque>

#include "models/hw/array_config.hpp"
#include "models/hw/ports.hpp"
#include "models/hw/stats.hpp"

namespace accsim::hw {

class BufferModel final : public BufferPort {
 public:
  // total_fill: words the DMA will fetch over the whole run (the fill limit
  // starts there; the controller may hold it lower).
  BufferModel(const BufferConfig& config, int word_bits, std::uint64_t working_set_words, bool resident,
              std::uint64_t total_fill);

  Wait poll(const Access& access) override;
  void commit(const Access& access) override;
  [[nodiscard]] std::uint64_t fill_room() const override;
  [[nodiscard]] std::uint64_t fill_missing(const Access& access) const override;
  void fill(std::uint64_t words) override;
  [[nodiscard]] std::uint64_t fetched() const override { return fetched_; }
  void set_fill_limit(std::uint64_t cumulative_words) override;
  [[nodiscard]] std::uint64_t writeback_pending() const override { return writeback_pending_; }
  void write_back(std::uint64_t words) override;
  [[nodiscard]] std::uint64_t spills_written_back() const override { return spills_done_; }
  [[nodiscard]] int word_bits() const override { return stats_.word_bits; }

  // Cycles the port needs for an access (at least one).
  [[nodiscard]] std::uint64_t port_cycles(const Access& access) const;
  [[nodiscard]] std::uint64_t occupancy() const { return occupancy_; }
  [[nodiscard]] const BufferStats& stats() const { return stats_; }

 private:
  struct WriteBack {
    std::uint64_t words;
    bool spill;
  };
  BufferConfig config_;
  std::uint64_t capacity_;
  std::uint64_t occupancy_ = 0;
  std::uint64_t fetched_ = 0, consumed_ = 0;  // DRAM words fetched / consumed by reads
  std::uint64_t total_fill_, fill_limit_;
  std::uint64_t port_progress_ = 0;
  std::deque<WriteBack> writebacks_;
  std::uint64_t writeback_pending_ = 0;
  std::uint64_t spills_done_ = 0;
  BufferStats stats_;
};

// DRAM as a bandwidth: every cycle adds bytes_per_cycle of credit, shared by
// all transfers in the order they are asked for; a word moves when the credit
// covers its width. Credit left over carries into the next cycle only up to
// one word, so an idle DRAM does not bank bandwidth.
class DramModel {
 public:
  DramModel(double bytes_per_cycle, int widest_word_bits);
  void new_cycle();
  // Moves up to `words` words of `word_bits` each; returns how many moved.
  std::uint64_t transfer(std::uint64_t words, int word_bits);
  [[nodiscard]] bool unlimited() const { return unlimited_; }
  [[nodiscard]] double bits_per_cycle() const { return bits_per_cycle_; }

 private:
  bool unlimited_;
  double bits_per_cycle_;
  double carry_cap_;
  double credit_ = 0;
};

}  // namespace accsim::hw
