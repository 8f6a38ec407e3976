// What `accsim check` compares: a report (of `accsim run` or `accsim gemm`)
// or a sweep's result folder, read into named metrics. Loading validates
// everything the comparison needs and throws InputError (exit 2) on a file
// that is missing, not JSON, of another kind, or lacks a field.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace accsim::sim::check {

// How a metric may move before it is a regression (docs/check.md):
enum class Rule {
  drop_points,   // a fraction (top-1, agreement) may fall by at most the tolerance, in percentage points
  rise_points,   // a fraction (an event rate) may rise by at most the tolerance, in percentage points
  rise_percent,  // a cost (energy, area, cycles) may rise by at most the tolerance, in percent of the baseline
  drop_db,       // an SNR may fall by at most the tolerance, in dB
};

struct Metric {
  std::string scope;  // "network", "gemm", or a layer's name
  std::string name;   // the rules' name: top1, agreement, overflow, energy, ... (see kMetricNames)
  std::string field;  // where the value comes from, for messages: "accuracy.lowbit.top1"
  Rule rule = Rule::drop_points;
  std::string unit;             // how to print it: "%" (a fraction shown in percent), "pJ", "uJ", "um2", "cycles", "dB"
  std::optional<double> value;  // nullopt: not available (null in the report); an SNR may be +-inf
  [[nodiscard]] std::string key() const { return scope + "\n" + field; }
};

// One thing compared as a whole: a report, or one point of a sweep.
struct Unit {
  std::string match_key;  // sweep points: how points are matched (config); reports: ""
  std::string label;      // how it is named in the table and the JUnit suite
  bool ok = true;         // a sweep point whose run failed has no metrics
  std::string error;      // why it failed
  std::vector<std::pair<std::string, std::string>> identity;  // what must be equal to compare at all
  std::vector<Metric> metrics;
  std::vector<std::string> layers;  // layer names, for validating per-layer rules
  nlohmann::json numbers;           // every compared number (--exact): the record without timing fields
};

enum class Kind { run, gemm, sweep };
[[nodiscard]] const char* to_string(Kind kind);

struct Subject {
  Kind kind = Kind::run;
  std::filesystem::path path;
  std::string accsim_version;     // "" for sweeps that do not record it
  std::string numerics_identity;  // "" for sweeps that do not record it
  std::vector<std::string> command_line;
  std::vector<Unit> units;
};

// A run or gemm report (a file), or a sweep folder (a directory holding
// points.jsonl). `role` names it in messages ("report", "baseline").
[[nodiscard]] Subject load_subject(const std::filesystem::path& path);
// The same from a report's text (tests, and --rerun's fresh report).
[[nodiscard]] Subject parse_report(const std::string& text, const std::filesystem::path& path);

// Every name a rule can use, in the order the table lists them.
extern const std::vector<std::string> kMetricNames;

// Keys never compared, at any depth: timing and thread counts change from
// run to run, the command line and paths from machine to machine.
[[nodiscard]] bool is_uncompared_key(const std::string& key);

}  // namespace accsim::sim::check
