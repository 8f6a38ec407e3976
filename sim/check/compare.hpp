// The comparison itself: a report (or sweep folder) against its baseline,
// metric by metric, into checks with a verdict each.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/check/rules.hpp"
#include "sim/check/subject.hpp"

namespace accsim::sim::check {

struct Check {
  std::string suite;   // the unit: a trace's name, "gemm", a sweep point's key; "rerun: ..." for --rerun
  std::string scope;   // "network", "gemm", a layer's name; "point" for a sweep point's own checks
  std::string metric;  // a rules name (kMetricNames), or "status", "present", "every number"
  std::string field;   // where the value is in the report
  std::string unit;
  std::optional<double> baseline, current;
  std::string baseline_text, current_text;  // as the table prints them
  std::string difference;                   // "-1.10 pts", "+3.2%", "identical", ...
  std::string limit;                        // "drop <= 0.50 pts", "identical", ...
  bool passed = true;
  std::string message;  // a failure's explanation: baseline, current, tolerance
};

// Refuses (InputError, exit 2) what cannot be compared: another kind of
// input, another numerics definition, another trace or operands.
void check_compatible(const Subject& baseline, const Subject& current);

// Every check of `current` against `baseline`. `suite_prefix` is prepended
// to each suite name ("rerun: "). With rules.exact every compared number must
// be identical and one "every number" check per unit compares all of them.
[[nodiscard]] std::vector<Check> compare(const Subject& baseline, const Subject& current, const Rules& rules,
                                         std::string_view suite_prefix = "");

// Per-layer rules naming a layer that neither side has: InputError (a typo
// would otherwise silently leave a layer ungated).
void check_rule_layers(const Rules& rules, const Subject& baseline, const Subject& current);

}  // namespace accsim::sim::check
