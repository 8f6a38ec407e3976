// Tolerances of `accsim check`: built-in defaults, flags, and a YAML rules
// file (--rules) that sets them per metric and per layer (docs/check.md).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "sim/check/subject.hpp"

namespace accsim::sim::check {

// The flag-level tolerances, each in its metric's unit (see Rule).
struct Tolerances {
  double max_top1_drop = 0.5;        // points of top-1 (top1, top1_fp32)
  double max_agreement_drop = 1.0;   // points of agreement with FP32
  double max_energy_rise = 2.0;      // percent
  double max_area_rise = 1.0;        // percent (area_pe, area_array)
  double max_cycles_rise = 1.0;      // percent
  double max_event_rise = 0.01;      // points of an event rate (overflow, underflow, swamp, product_*)
  double max_snr_drop = 0.1;         // dB (gemm reports)
};

struct Rules {
  Tolerances tolerances;
  bool exact = false;  // every compared number identical
  std::map<std::string, double> metrics;                             // metric name -> tolerance
  std::map<std::string, std::map<std::string, double>> layers;       // layer -> metric name -> tolerance
  std::string source;  // the rules file, for messages ("" without --rules)

  // The tolerance that applies to a metric: its layer's rule, else its
  // metric's, else the flag's.
  [[nodiscard]] double tolerance(const Metric& m) const;
};

// The flag a metric's default tolerance comes from ("--max-top1-drop").
[[nodiscard]] std::string_view flag_of(std::string_view metric_name);
// Sets the flag-level tolerance named by a flag or a rules key ("max-top1-drop"
// or "--max-top1-drop"); false when no such tolerance exists.
bool set_tolerance(Tolerances& t, std::string_view key, double value);

// A tolerance as the user wrote it: a finite number >= 0, else InputError(source).
[[nodiscard]] double parse_tolerance(std::string_view text, std::string_view source);

// Reads a rules file over `rules` (its "tolerances" block replaces defaults;
// flags given on the command line are applied after it by the caller).
void read_rules(const std::filesystem::path& path, Rules& rules);
void parse_rules(std::string_view yaml, std::string_view name, Rules& rules);

}  // namespace accsim::sim::check
