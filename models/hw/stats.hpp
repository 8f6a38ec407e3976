// What a cycle-accurate run reports besides the numbers: cycles by phase,
// stalls by cause, buffer and DRAM traffic, and register bit toggles.
#pragma once

#include <cstdint>
#include <string>

#include "models/numerics/format.hpp"
#include "models/reference/gemm.hpp"

namespace accsim::hw {

// Every clock cycle of a run falls in exactly one phase.
struct PhaseCycles {
  std::uint64_t weight_load = 0;  // WS: weight rows shifting into the array
  std::uint64_t fill = 0;         // from a tile's first issue until its last PE starts
  std::uint64_t steady = 0;       // one input vector (WS) or k step (OS) per issue slot
  std::uint64_t drain = 0;        // from the last PE's last operand until the tile's last result is stored
  std::uint64_t stall = 0;        // the array frozen, waiting on a buffer port or on DRAM
  [[nodiscard]] std::uint64_t total() const { return weight_load + fill + steady + drain + stall; }
  friend bool operator==(const PhaseCycles&, const PhaseCycles&) = default;
};

// Stall cycles by the first cause found, in the order listed.
struct StallCycles {
  std::uint64_t dram = 0;         // data not yet fetched, no room for a write, or write-backs still running
  std::uint64_t input_port = 0;   // input buffer bandwidth
  std::uint64_t weight_port = 0;  // weight buffer bandwidth
  std::uint64_t output_port = 0;  // output buffer bandwidth
  [[nodiscard]] std::uint64_t total() const { return dram + input_port + weight_port + output_port; }
};

// One SRAM's traffic. "array" is the side facing the PE array, "dram" the DMA
// side; SRAM reads = array_reads + dram_writes, SRAM writes = array_writes +
// dram_reads.
struct BufferStats {
  int word_bits = 0;
  std::uint64_t capacity_words = 0;
  std::uint64_t working_set_words = 0;  // what must fit to fetch each word from DRAM once
  bool resident = false;                // the working set fits: no refetches (input, weight) or spills (output)
  std::uint64_t array_reads = 0, array_writes = 0;  // words
  std::uint64_t dram_reads = 0, dram_writes = 0;    // words fetched from / written back to DRAM
  std::uint64_t peak_occupancy_words = 0;

  [[nodiscard]] double bytes(std::uint64_t words) const { return static_cast<double>(words) * word_bits / 8.0; }
  [[nodiscard]] std::uint64_t sram_reads() const { return array_reads + dram_writes; }
  [[nodiscard]] std::uint64_t sram_writes() const { return array_writes + dram_reads; }
};

// Bit flips of the PE registers, summed over every PE and every pipeline
// stage; a register only loads when it carries valid data (clock gating), so
// idle PEs do not toggle.
struct ToggleCounts {
  std::uint64_t activation = 0;  // the activation forwarding register
  std::uint64_t weight = 0;      // stationary weight (WS, incl. loading) or weight forwarding register (OS)
  std::uint64_t product = 0;     // the multiplier's mul_latency pipeline registers
  std::uint64_t sum = 0;         // the adder's add_latency pipeline registers (the last is the sum register)
  [[nodiscard]] std::uint64_t total() const { return activation + weight + product + sum; }
  friend bool operator==(const ToggleCounts&, const ToggleCounts&) = default;
};

// Widths of those registers. A fused (exact) product register holds sign,
// exponent sum and the full significand product: 1 + (E+1) + 2(M+1) bits for
// a float multiplier format, 2 x width for an integer one.
struct RegisterWidths {
  int activation = 0, weight = 0, product = 0, sum = 0;
};

struct CycleStats {
  std::size_t rows = 0, cols = 0;
  std::uint64_t cycles = 0;
  std::uint64_t formula_cycles = 0;  // the closed form without stalls (docs/array.md)
  PhaseCycles phases;
  StallCycles stalls;
  std::uint64_t tiles = 0;
  std::uint64_t useful_macs = 0;  // M * N * K
  [[nodiscard]] std::uint64_t pe_cycles() const { return cycles * rows * cols; }
  [[nodiscard]] double utilization() const {
    return cycles == 0 ? 0.0 : static_cast<double>(useful_macs) / static_cast<double>(pe_cycles());
  }
  BufferStats input, weight, output;
  [[nodiscard]] double dram_read_bytes() const {
    return input.bytes(input.dram_reads) + weight.bytes(weight.dram_reads) + output.bytes(output.dram_reads);
  }
  [[nodiscard]] double dram_write_bytes() const { return output.bytes(output.dram_writes); }
  ToggleCounts toggles;
  RegisterWidths register_bits;
};

struct CycleResult {
  // The numbers, as ref::accumulate_products returns them: c_bits in the
  // order's final format, c the accumulator values (scales not undone), and
  // the product / accumulate / merge event counts.
  ref::GemmResult gemm;
  CycleStats stats;
};

}  // namespace accsim::hw
