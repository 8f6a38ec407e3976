#include "models/hw/array_config.hpp"

#include <charconv>
#include <cmath>
#include <string>

namespace accsim::hw {

ConfigError::ConfigError(std::string field, const std::string& problem)
    : std::invalid_argument(field + ": " + problem), field_(std::move(field)) {}

namespace {

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

template <class T>
bool parse_uint(std::string_view text, T& out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

void check_buffer(const BufferConfig& b, const std::string& name) {
  if (b.ports != 1 && b.ports != 2) {
    throw ConfigError(name + ".ports", "must be 1 (shared) or 2 (a read and a write port) (got " +
                                           std::to_string(b.ports) + ")");
  }
  if (b.capacity_bytes == 0) throw ConfigError(name + ".capacity_bytes", "must be at least one tile row (got 0)");
}

void check_capacity(const BufferConfig& b, const std::string& name, std::size_t row_words, const num::Format& word,
                    const char* what) {
  const auto bits = static_cast<std::uint64_t>(num::width(word));
  const std::uint64_t need_bytes = (row_words * bits + 7) / 8;
  if (b.capacity_bytes * 8 < row_words * bits) {
    throw ConfigError(name + ".capacity_bytes",
                      "must hold at least one tile row (" + std::to_string(row_words) + " " + what + " words of " +
                          num::to_string(word) + " = " + std::to_string(need_bytes) + " bytes) (got " +
                          std::to_string(b.capacity_bytes) + ")");
  }
}

}  // namespace

void ArrayConfig::validate() const {
  const std::string dims = "must be 1.." + std::to_string(kMaxArrayDim);
  if (rows < 1 || rows > kMaxArrayDim) throw ConfigError("rows", dims + " (got " + std::to_string(rows) + ")");
  if (cols < 1 || cols > kMaxArrayDim) throw ConfigError("cols", dims + " (got " + std::to_string(cols) + ")");
  if (dataflow != Dataflow::weight_stationary && dataflow != Dataflow::output_stationary) {
    throw ConfigError("dataflow", "unknown dataflow (expected ws or os)");
  }
  if (ws_partial_sums != WsPartialSums::merge && ws_partial_sums != WsPartialSums::feedback) {
    throw ConfigError("ws_partial_sums", "unknown mode (expected merge or feedback)");
  }
  if (mul_latency > kMaxMulLatency) {
    throw ConfigError("mul_latency",
                      "must be 0.." + std::to_string(kMaxMulLatency) + " cycles (got " + std::to_string(mul_latency) + ")");
  }
  if (add_latency < 1 || add_latency > kMaxAddLatency) {
    throw ConfigError("add_latency",
                      "must be 1.." + std::to_string(kMaxAddLatency) + " cycles (got " + std::to_string(add_latency) + ")");
  }
  check_buffer(input_buffer, "input_buffer");
  check_buffer(weight_buffer, "weight_buffer");
  check_buffer(output_buffer, "output_buffer");
  if (!std::isfinite(dram_bytes_per_cycle) || dram_bytes_per_cycle < 0) {
    throw ConfigError("dram_bytes_per_cycle", "must be a finite number >= 0 (0: unlimited)");
  }
  const VcdWindow& w = vcd_window;
  if (w.row_begin >= w.row_end || w.row_begin >= rows) {
    throw ConfigError("vcd_window", "rows must be a non-empty range starting inside the array's " +
                                        std::to_string(rows) + " rows");
  }
  if (w.col_begin >= w.col_end || w.col_begin >= cols) {
    throw ConfigError("vcd_window", "cols must be a non-empty range starting inside the array's " +
                                        std::to_string(cols) + " columns");
  }
  if (w.cycle_begin >= w.cycle_end) throw ConfigError("vcd_window", "cycles must be a non-empty range");
}

void ArrayConfig::validate(const ref::GemmConfig& gemm) const {
  validate();
  if (merge_format) {
    try {
      std::visit([](const auto& f) { num::validate(f); }, *merge_format);
    } catch (const num::FormatError& e) {
      throw ConfigError("merge_format", e.what());
    }
  }
  check_capacity(input_buffer, "input_buffer", rows, gemm.multiplier, "activation");
  check_capacity(weight_buffer, "weight_buffer", cols, gemm.multiplier, "weight");
  check_capacity(output_buffer, "output_buffer", cols, output_format(gemm.accumulator), "output");
}

ref::AccumulationOrder ArrayConfig::order() const {
  return ref::dataflow_order(dataflow, rows, ws_partial_sums, merge_format);
}

num::Format ArrayConfig::output_format(const num::Format& accumulator) const {
  return order().merge(accumulator);
}

ArrayShape parse_array(std::string_view text) {
  const auto fail = [&]() -> ArrayShape {
    throw ConfigError("array", quoted(text) + " must be RxC with R and C in 1.." + std::to_string(kMaxArrayDim) +
                                   " (e.g. 16x16)");
  };
  const std::size_t x = text.find_first_of("xX");
  if (x == std::string_view::npos) return fail();
  ArrayShape s;
  if (!parse_uint(text.substr(0, x), s.rows) || !parse_uint(text.substr(x + 1), s.cols)) return fail();
  if (s.rows < 1 || s.cols < 1 || s.rows > kMaxArrayDim || s.cols > kMaxArrayDim) return fail();
  return s;
}

Dataflow parse_dataflow(std::string_view text) {
  if (auto d = ref::dataflow_from_string(text)) return *d;
  throw ConfigError("dataflow", "unknown dataflow " + quoted(text) + " (expected ws or os)");
}

WsPartialSums parse_ws_partial_sums(std::string_view text) {
  if (auto p = ref::ws_partial_sums_from_string(text)) return *p;
  throw ConfigError("ws_partial_sums", "unknown mode " + quoted(text) + " (expected merge or feedback)");
}

std::uint64_t parse_bytes(std::string_view text, std::string_view field) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::uint64_t value = 0;
  const std::string_view unit = text.substr(digits);
  std::uint64_t multiple = 0;
  if (unit.empty() || unit == "B") multiple = 1;
  else if (unit == "K" || unit == "KiB" || unit == "k") multiple = std::uint64_t{1} << 10;
  else if (unit == "M" || unit == "MiB") multiple = std::uint64_t{1} << 20;
  else if (unit == "G" || unit == "GiB") multiple = std::uint64_t{1} << 30;
  if (!parse_uint(text.substr(0, digits), value) || multiple == 0 ||
      value > std::numeric_limits<std::uint64_t>::max() / multiple) {
    throw ConfigError(std::string(field), quoted(text) + " must be a size in bytes such as 4096, 64KiB or 1MiB");
  }
  return value * multiple;
}

VcdWindow parse_vcd_window(std::string_view text) {
  VcdWindow w;
  const auto fail = [&](std::string_view part) -> VcdWindow {
    throw ConfigError("vcd_window", "bad part " + quoted(part) + " in " + quoted(text) +
                                        " (expected rows=A:B,cols=A:B,cycles=A:B, half-open ranges)");
  };
  std::string_view rest = text;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string_view part = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const std::size_t eq = part.find('=');
    const std::size_t colon = part.find(':');
    if (eq == std::string_view::npos || colon == std::string_view::npos || colon < eq) return fail(part);
    std::uint64_t begin = 0, end = 0;
    if (!parse_uint(part.substr(eq + 1, colon - eq - 1), begin) || !parse_uint(part.substr(colon + 1), end) ||
        begin >= end) {
      return fail(part);
    }
    const std::string_view key = part.substr(0, eq);
    if (key == "rows") {
      w.row_begin = begin, w.row_end = end;
    } else if (key == "cols") {
      w.col_begin = begin, w.col_end = end;
    } else if (key == "cycles") {
      w.cycle_begin = begin, w.cycle_end = end;
    } else {
      return fail(part);
    }
  }
  return w;
}

}  // namespace accsim::hw
