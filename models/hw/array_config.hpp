// Configuration of the cycle-accurate MAC array: one validated struct that a
// CLI or a sweep fills in, and the parsers for its command-line spellings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "models/numerics/format.hpp"
#include "models/reference/dataflow.hpp"
#include "models/reference/gemm.hpp"

namespace accsim::hw {

using ref::Dataflow;
using ref::WsPartialSums;

// A configuration a user can get wrong. what() is one line naming the field
// and the fix, e.g. "rows: must be 1..1024 (got 0)"; field() is the field's
// name ("rows", "output_buffer.capacity_bytes", ...) for a CLI to map to its
// own option.
class ConfigError : public std::invalid_argument {
 public:
  ConfigError(std::string field, const std::string& problem);
  [[nodiscard]] const std::string& field() const { return field_; }

 private:
  std::string field_;
};

inline constexpr std::size_t kMaxArrayDim = 1024;
inline constexpr unsigned kMaxMulLatency = 32;
inline constexpr unsigned kMaxAddLatency = 32;

// An on-chip SRAM. Its word width comes from the format it holds (multiplier
// format for the input and weight buffers, the output format for the output
// buffer), so a narrower accumulator means narrower words, narrower buses and
// more words in the same bytes.
struct BufferConfig {
  std::uint64_t capacity_bytes = std::uint64_t{1} << 20;
  // 1: reads and writes share one port; 2: one read port and one write port.
  unsigned ports = 2;
  // Words per cycle per port; 0: as many as the array asks for (never stalls).
  unsigned bandwidth_words = 0;
  friend bool operator==(const BufferConfig&, const BufferConfig&) = default;
};

// Which part of the array and of time a VCD holds: half-open ranges of rows,
// columns and clock cycles, clipped to the array and to the run.
struct VcdWindow {
  static constexpr std::uint64_t kAll = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t row_begin = 0, row_end = kAll;
  std::uint64_t col_begin = 0, col_end = kAll;
  std::uint64_t cycle_begin = 0, cycle_end = kAll;
  friend bool operator==(const VcdWindow&, const VcdWindow&) = default;
};

struct ArrayConfig {
  std::size_t rows = 16;  // R: array rows (k per weight tile in WS, outputs rows in OS)
  std::size_t cols = 16;  // C: array columns (output columns)
  Dataflow dataflow = Dataflow::weight_stationary;
  WsPartialSums ws_partial_sums = WsPartialSums::merge;
  // WS merge: the format the output buffer keeps running sums in (the merge
  // format of chunked:R:FMT). Unset: the accumulator format.
  std::optional<num::Format> merge_format;
  unsigned mul_latency = 1;  // multiplier pipeline registers, 0..32 (0: combinational)
  unsigned add_latency = 1;  // adder pipeline registers, 1..32 (the last one is the sum register)
  BufferConfig input_buffer;   // activations (A)
  BufferConfig weight_buffer;  // weights (B)
  BufferConfig output_buffer;  // partial sums and results (C)
  double dram_bytes_per_cycle = 0;  // shared by every buffer's refills and write-backs; 0: unlimited
  std::string vcd_path;             // empty: no waveform
  VcdWindow vcd_window;

  // Structural checks: sizes, latencies, ports, DRAM bandwidth, VCD window.
  void validate() const;
  // validate() plus what depends on the formats: every buffer holds at least
  // one tile row (R words of the multiplier format for the input buffer, C
  // for the weight buffer, C words of the output format for the output
  // buffer), and the merge format is a valid format.
  void validate(const ref::GemmConfig& gemm) const;

  // The accumulation order this array produces (see ref::dataflow_order).
  [[nodiscard]] ref::AccumulationOrder order() const;
  // The format of the output buffer's words: the merge format in WS merge
  // mode, the accumulator format otherwise.
  [[nodiscard]] num::Format output_format(const num::Format& accumulator) const;
};

// --- parsers for command-line spellings; each throws ConfigError --------------
struct ArrayShape {
  std::size_t rows = 0, cols = 0;
};
[[nodiscard]] ArrayShape parse_array(std::string_view text);                // "16x16", "8X32"
[[nodiscard]] Dataflow parse_dataflow(std::string_view text);              // "ws", "os"
[[nodiscard]] WsPartialSums parse_ws_partial_sums(std::string_view text);  // "merge", "feedback"
// "4096", "64KiB", "1MiB", "2M", "512B": bytes, binary multiples.
[[nodiscard]] std::uint64_t parse_bytes(std::string_view text, std::string_view field);
// "rows=0:8,cols=0:8,cycles=100:200"; any part may be left out.
[[nodiscard]] VcdWindow parse_vcd_window(std::string_view text);

}  // namespace accsim::hw
