// The interfaces the controller drives, as plain C++: the SystemC modules
// (modules.hpp) implement them by forwarding to the models, so the controller
// reaches the array and the buffers only through its SystemC ports.
#pragma once

#include <cstdint>

#include "models/hw/schedule.hpp"

namespace accsim::hw {

class ArrayPort {
 public:
  // `now` is the array time: the number of array steps taken since the run
  // began (stalled cycles are not steps: the array is frozen).
  virtual void begin_tile(const Tile& tile) = 0;
  virtual void load_step(std::uint64_t j, std::uint64_t now) = 0;    // WS weight row j of the tile
  virtual void stream_step(std::uint64_t s, std::uint64_t now) = 0;  // stream step s of the tile

 protected:
  ~ArrayPort() = default;
};

// What one array step asks of one buffer.
struct Access {
  std::uint32_t read = 0;       // words the array reads
  std::uint32_t write = 0;      // words the array writes
  std::uint32_t fill = 0;       // of the read words, those that come from DRAM (first use, or a refetch)
  std::uint32_t release = 0;    // words whose space this read frees (their last use)
  std::uint32_t alloc = 0;      // words of new space the write takes (not written in place)
  std::uint32_t writeback = 0;  // words of the write that go to DRAM; they free their space once written
  bool spill = false;           // that write-back is a partial sum coming back later, not a result
  [[nodiscard]] bool empty() const { return read == 0 && write == 0; }
};

enum class Wait : std::uint8_t {
  none,  // served
  dram,  // data not fetched yet, or no room for the write
  port,  // the port needs more cycles for this many words
};

class BufferPort {
 public:
  // Array side. poll() is called once per cycle for the pending access and
  // advances the port's progress while the data is there; commit() performs
  // the access once every buffer has answered Wait::none.
  virtual Wait poll(const Access& access) = 0;
  virtual void commit(const Access& access) = 0;
  // DMA side.
  [[nodiscard]] virtual std::uint64_t fill_room() const = 0;  // words the DMA may fetch now
  [[nodiscard]] virtual std::uint64_t fill_missing(const Access& access) const = 0;
  virtual void fill(std::uint64_t words) = 0;
  [[nodiscard]] virtual std::uint64_t fetched() const = 0;
  virtual void set_fill_limit(std::uint64_t cumulative_words) = 0;
  [[nodiscard]] virtual std::uint64_t writeback_pending() const = 0;
  virtual void write_back(std::uint64_t words) = 0;
  [[nodiscard]] virtual std::uint64_t spills_written_back() const = 0;  // spilled write-backs completed
  [[nodiscard]] virtual int word_bits() const = 0;

 protected:
  ~BufferPort() = default;
};

}  // namespace accsim::hw
