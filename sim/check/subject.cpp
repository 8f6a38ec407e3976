#include "sim/check/subject.hpp"

#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <system_error>

#include <fmt/format.h>

#include "sim/errors.hpp"

namespace accsim::sim::check {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// One report (or one line of a sweep log) and where it came from, so every
// problem names the file and the field.
class Source {
 public:
  Source(const json& root, std::string name) : root_(root), name_(std::move(name)) {}

  [[noreturn]] void fail(const std::string& problem) const { throw InputError(name_, problem); }

  // The value at a dotted path; a missing field is unusable input.
  [[nodiscard]] const json& at(const json& from, std::string_view dotted, std::string_view prefix = "") const {
    const json* node = &from;
    std::size_t start = 0;
    while (start <= dotted.size()) {
      const std::size_t dot = std::min(dotted.find('.', start), dotted.size());
      const std::string part(dotted.substr(start, dot - start));
      if (!node->is_object() || !node->contains(part)) {
        fail(fmt::format("field '{}{}' is missing (not a complete accsim report?)", prefix, dotted));
      }
      node = &(*node)[part];
      start = dot + 1;
    }
    return *node;
  }
  [[nodiscard]] const json& at(std::string_view dotted) const { return at(root_, dotted); }
  [[nodiscard]] bool has(std::string_view dotted) const {
    const json* node = &root_;
    std::size_t start = 0;
    while (start <= dotted.size()) {
      const std::size_t dot = std::min(dotted.find('.', start), dotted.size());
      const std::string part(dotted.substr(start, dot - start));
      if (!node->is_object() || !node->contains(part)) return false;
      node = &(*node)[part];
      start = dot + 1;
    }
    return true;
  }

  [[nodiscard]] std::string text(const json& v, std::string_view field) const {
    if (!v.is_string()) fail(fmt::format("field '{}' is not a string", field));
    return one_line(v.get<std::string>());
  }

  // A metric's value: a finite number; null where `nullable` (not available);
  // +-inf (written "inf") where `infinite` (an SNR). NaN is never usable.
  [[nodiscard]] std::optional<double> number(const json& v, std::string_view field, bool nullable = false,
                                             bool infinite = false) const {
    if (v.is_null()) {
      if (nullable) return std::nullopt;
      fail(fmt::format("field '{}' is null, not a number", field));
    }
    if (v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      if (s == "nan" || s == "-nan") fail(fmt::format("field '{}' is NaN; a metric must be a number", field));
      if (infinite && s == "inf") return HUGE_VAL;
      if (infinite && s == "-inf") return -HUGE_VAL;
    }
    if (!v.is_number()) fail(fmt::format("field '{}' is not a number", field));
    const double x = v.get<double>();
    if (!std::isfinite(x)) fail(fmt::format("field '{}' is not finite", field));
    return x;
  }
  [[nodiscard]] double fraction(const json& v, std::string_view field) const {
    const double x = *number(v, field);
    if (x < 0 || x > 1) fail(fmt::format("field '{}' is {}, not a fraction in [0, 1]", field, x));
    return x;
  }
  [[nodiscard]] std::optional<double> rate(const json& v, std::string_view field) const {
    const std::optional<double> x = number(v, field, true);
    if (x && (*x < 0 || *x > 1)) fail(fmt::format("field '{}' is {}, not a rate in [0, 1]", field, *x));
    return x;
  }
  [[nodiscard]] std::optional<double> cost(const json& v, std::string_view field) const {
    const std::optional<double> x = number(v, field, true);
    if (x && *x < 0) fail(fmt::format("field '{}' is negative ({})", field, *x));
    return x;
  }

  [[nodiscard]] const json& root() const { return root_; }
  [[nodiscard]] const std::string& name() const { return name_; }

 private:
  const json& root_;
  std::string name_;
};

json parse_json(const std::string& text, const std::string& name, std::string_view what) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw InputError(name, fmt::format("not valid JSON{} (at byte {}): is it {}?",
                                       e.byte >= text.size() ? ", it ends early" : "", e.byte, what));
  } catch (const json::exception& e) {  // a number beyond double's range (1e999)
    throw InputError(name, fmt::format("not usable JSON: {}", one_line(e.what())));
  }
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string(), "cannot be read");
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) throw InputError(path.string(), "read failed");
  return text;
}

// The record without the keys never compared, for --exact.
json compared_numbers(const json& v) {
  if (v.is_object()) {
    json out = json::object();
    for (const auto& [key, value] : v.items()) {
      if (!is_uncompared_key(key)) out[key] = compared_numbers(value);
    }
    return out;
  }
  if (v.is_array()) {
    json out = json::array();
    for (const json& e : v) out.push_back(compared_numbers(e));
    return out;
  }
  return v;
}

Metric metric(std::string scope, std::string name, std::string field, Rule rule, std::string unit,
              std::optional<double> value) {
  return {std::move(scope), std::move(name), std::move(field), rule, std::move(unit), value};
}

// Accumulator event rates of a layer or a point, in the rules' names.
const char* const kRateNames[] = {"overflow", "underflow", "swamp", "product_underflow", "product_overflow"};

Unit run_unit(const Source& s) {
  Unit u;
  u.label = s.has("trace.name") ? s.text(s.at("trace.name"), "trace.name") : "run";
  u.identity.emplace_back("trace hash", s.text(s.at("trace.hash"), "trace.hash"));
  const json& samples = s.at("trace.samples");
  if (!samples.is_number_unsigned()) s.fail("field 'trace.samples' is not a sample count");
  u.identity.emplace_back("samples", std::to_string(samples.get<std::uint64_t>()));
  const char* top1 = "accuracy.lowbit.top1";
  const char* agreement = "accuracy.lowbit.agreement_with_fp32";
  const char* fp32 = "accuracy.fp32.top1";
  u.metrics.push_back(metric("network", "top1", top1, Rule::drop_points, "%", s.fraction(s.at(top1), top1)));
  u.metrics.push_back(
      metric("network", "agreement", agreement, Rule::drop_points, "%", s.fraction(s.at(agreement), agreement)));
  u.metrics.push_back(metric("network", "top1_fp32", fp32, Rule::drop_points, "%", s.fraction(s.at(fp32), fp32)));

  const json& layers = s.at("layers");
  if (!layers.is_array() || layers.empty()) s.fail("field 'layers' is not a list of layers");
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const std::string where = fmt::format("layers[{}].", i);
    const std::string name = s.text(s.at(layers[i], "name", where), where + "name");
    u.layers.push_back(name);
    for (const char* rate : kRateNames) {
      const std::string field = where + "rates." + rate;
      // product_overflow came later than the others: optional.
      if (std::string_view(rate) == "product_overflow" && !(layers[i].contains("rates") && layers[i]["rates"].contains(rate))) {
        continue;
      }
      u.metrics.push_back(metric(name, rate, field, Rule::rise_points, "%",
                                 s.rate(s.at(layers[i], std::string("rates.") + rate, where), field)));
    }
  }

  if (s.has("energy")) {  // absent with --energy-samples 0
    const json& energy = s.at("energy");
    const char* total = "energy.per_inference";
    const json& per = s.at(total);
    u.metrics.push_back(metric("network", "energy", "energy.per_inference.total_pj", Rule::rise_percent, "pJ",
                               per.contains("total_pj") ? s.cost(per["total_pj"], "energy.per_inference.total_pj")
                                                        : std::nullopt));
    const json& per_layer = s.at(energy, "layers", "energy.");
    if (!per_layer.is_array()) s.fail("field 'energy.layers' is not a list");
    double cycles = 0;
    bool any_cycles = false;
    for (std::size_t i = 0; i < per_layer.size(); ++i) {
      const std::string where = fmt::format("energy.layers[{}].", i);
      const std::string name = s.text(s.at(per_layer[i], "name", where), where + "name");
      if (!per_layer[i].contains("cycles_per_inference")) continue;  // an fp32-engine layer: not on the array
      const std::optional<double> c = s.cost(per_layer[i]["cycles_per_inference"], where + "cycles_per_inference");
      if (c) {
        cycles += *c;
        any_cycles = true;
      }
      u.metrics.push_back(metric(name, "cycles", where + "cycles_per_inference", Rule::rise_percent, "cycles", c));
      const json& lp = s.at(per_layer[i], "per_inference", where);
      u.metrics.push_back(metric(name, "energy", where + "per_inference.total_pj", Rule::rise_percent, "pJ",
                                 lp.contains("total_pj") ? s.cost(lp["total_pj"], where + "per_inference.total_pj")
                                                         : std::nullopt));
    }
    u.metrics.push_back(metric("network", "cycles", "energy.layers[*].cycles_per_inference (sum)", Rule::rise_percent,
                               "cycles", any_cycles ? std::optional<double>(cycles) : std::nullopt));
  }
  return u;
}

Unit gemm_unit(const Source& s) {
  Unit u;
  u.label = "gemm";
  u.identity.emplace_back("A hash", s.text(s.at("inputs.a.hash"), "inputs.a.hash"));
  u.identity.emplace_back("B hash", s.text(s.at("inputs.b.hash"), "inputs.b.hash"));
  for (const char* against : {"vs_original", "vs_quantized"}) {
    const std::string field = std::string("error.") + against + ".snr_db";
    u.metrics.push_back(metric(against, "snr", field, Rule::drop_db, "dB", s.number(s.at(field), field, false, true)));
  }
  // Rates as `accsim run` counts them: per accumulator addition (chunk sums
  // and merges), and per product.
  auto count = [&](const char* category, const char* what) {
    const std::string field = std::string("events.") + category + "." + what;
    const double x = *s.number(s.at(field), field);
    if (x < 0) s.fail(fmt::format("field '{}' is negative", field));
    return x;
  };
  const double additions = count("accumulate", "ops") + count("merge", "ops");
  const double products = count("product", "ops");
  for (const char* what : {"overflow", "underflow", "swamp"}) {
    const double n = count("accumulate", what) + count("merge", what);
    u.metrics.push_back(metric("gemm", what, fmt::format("events.accumulate+merge.{}", what), Rule::rise_points, "%",
                               additions > 0 ? std::optional<double>(n / additions) : std::nullopt));
  }
  for (const char* what : {"underflow", "overflow"}) {
    u.metrics.push_back(metric("gemm", std::string("product_") + what, fmt::format("events.product.{}", what),
                               Rule::rise_points, "%",
                               products > 0 ? std::optional<double>(count("product", what) / products) : std::nullopt));
  }
  if (s.has("cycle")) {
    u.metrics.push_back(metric("gemm", "cycles", "cycle.cycles", Rule::rise_percent, "cycles",
                               s.cost(s.at("cycle.cycles"), "cycle.cycles")));
  }
  if (s.has("energy")) {
    const json& e = s.at("energy");
    u.metrics.push_back(metric("gemm", "energy", "energy.total_pj", Rule::rise_percent, "pJ",
                               e.contains("total_pj") ? s.cost(e["total_pj"], "energy.total_pj") : std::nullopt));
  }
  return u;
}

Subject report_subject(const json& root, const fs::path& path) {
  const Source s(root, path.string());
  if (!root.is_object()) s.fail("not an accsim report (not a JSON object)");
  if (!root.contains("command") || !root["command"].is_string()) {
    s.fail("not an accsim run or gemm report (no 'command' field)");
  }
  const std::string command = root["command"].get<std::string>();
  Subject subject;
  subject.path = path;
  if (command == "run") {
    subject.kind = Kind::run;
  } else if (command == "gemm") {
    subject.kind = Kind::gemm;
  } else {
    s.fail(fmt::format("a report of 'accsim {}'; accsim check compares run and gemm reports and sweep folders",
                       one_line(command)));
  }
  subject.accsim_version = s.text(s.at("accsim_version"), "accsim_version");
  if (!root.contains("numerics_identity")) {
    s.fail("field 'numerics_identity' is missing: the report is older than the regression gate; make it again");
  }
  subject.numerics_identity = s.text(s.at("numerics_identity"), "numerics_identity");
  const json& argv = s.at("command_line");
  if (!argv.is_array()) s.fail("field 'command_line' is not a list of strings");
  for (const json& a : argv) subject.command_line.push_back(s.text(a, "command_line[]"));

  Unit u = subject.kind == Kind::run ? run_unit(s) : gemm_unit(s);
  u.numbers = compared_numbers(root);
  subject.units.push_back(std::move(u));
  return subject;
}

// A sweep point's configuration, as points are matched: the canonical dump
// of "config" with the trace named by its folder's name (its path may differ
// between machines; its content is checked by hash).
std::string point_match_key(json config) {
  if (config.contains("trace") && config["trace"].is_string()) {
    fs::path trace = fs::path(config["trace"].get<std::string>()).lexically_normal();
    if (trace.filename().empty()) trace = trace.parent_path();  // "traces/x/"
    config["trace"] = trace.filename().string();
  }
  return config.dump();  // nlohmann::json (not ordered_json) sorts keys: canonical
}

Unit point_unit(const Source& s) {
  const json& root = s.root();
  Unit u;
  if (!root.is_object()) s.fail("not a JSON object");
  const json& config = s.at("config");
  if (!config.is_object()) s.fail("field 'config' is not an object");
  u.match_key = point_match_key(config);
  u.label = root.contains("key") && root["key"].is_string() ? one_line(root["key"].get<std::string>()) : config.dump();
  const std::string status = s.text(s.at("status"), "status");
  if (status != "ok" && status != "failed") s.fail(fmt::format("field 'status' is '{}', not ok or failed", status));
  u.ok = status == "ok";
  if (s.has("trace.hash")) u.identity.emplace_back("trace hash", s.text(s.at("trace.hash"), "trace.hash"));
  if (root.contains("samples") && root["samples"].is_number_unsigned()) {
    u.identity.emplace_back("samples", std::to_string(root["samples"].get<std::uint64_t>()));
  }
  if (!u.ok) {
    u.error = root.contains("error") && root["error"].is_string() ? one_line(root["error"].get<std::string>()) : "";
    return u;
  }
  if (!s.has("trace.hash")) s.fail("field 'trace.hash' is missing");
  u.metrics.push_back(metric("network", "top1", "top1", Rule::drop_points, "%", s.fraction(s.at("top1"), "top1")));
  u.metrics.push_back(
      metric("network", "agreement", "agreement", Rule::drop_points, "%", s.fraction(s.at("agreement"), "agreement")));
  if (s.has("top1_fp32")) {
    u.metrics.push_back(
        metric("network", "top1_fp32", "top1_fp32", Rule::drop_points, "%", s.fraction(s.at("top1_fp32"), "top1_fp32")));
  }
  const json& layers = s.at("layers");
  if (!layers.is_array()) s.fail("field 'layers' is not a list");
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const std::string where = fmt::format("layers[{}].", i);
    const std::string name = s.text(s.at(layers[i], "name", where), where + "name");
    u.layers.push_back(name);
    for (const char* rate : kRateNames) {
      if (!layers[i].contains(rate)) {
        if (std::string_view(rate) == "product_overflow") continue;  // not in every sweep's records
        s.fail(fmt::format("field '{}{}' is missing", where, rate));
      }
      u.metrics.push_back(metric(name, rate, where + rate, Rule::rise_points, "%", s.rate(layers[i][rate], where + rate)));
    }
  }
  u.metrics.push_back(metric("network", "cycles", "cycles_per_inference", Rule::rise_percent, "cycles",
                             s.cost(s.at("cycles_per_inference"), "cycles_per_inference")));
  u.metrics.push_back(metric("network", "area_pe", "area_um2.pe", Rule::rise_percent, "um2",
                             s.cost(s.at("area_um2.pe"), "area_um2.pe")));
  u.metrics.push_back(metric("network", "area_array", "area_um2.array", Rule::rise_percent, "um2",
                             s.cost(s.at("area_um2.array"), "area_um2.array")));
  u.metrics.push_back(metric("network", "energy", "energy_uj_per_inference", Rule::rise_percent, "uJ",
                             s.cost(s.at("energy_uj_per_inference"), "energy_uj_per_inference")));
  return u;
}

Subject sweep_subject(const fs::path& dir) {
  const fs::path log = dir / "points.jsonl";
  std::error_code ec;
  if (!fs::is_regular_file(log, ec)) {
    throw InputError(dir.string(), "is a folder but not a sweep's (it has no points.jsonl)");
  }
  Subject subject;
  subject.kind = Kind::sweep;
  subject.path = dir;
  std::istringstream lines(read_text(log));
  std::map<std::string, std::size_t> index;  // match key -> units[i]
  std::string line;
  bool first_identity = true;
  for (std::size_t number = 1; std::getline(lines, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string name = fmt::format("{}:{}", log.string(), number);
    const json point = parse_json(line, name, "one JSON object per line (a sweep point)");
    const Source s(point, name);
    Unit u = point_unit(s);
    u.numbers = compared_numbers(point);
    // The build that made the point, where the sweep records it.
    const std::string version =
        point.contains("accsim_version") && point["accsim_version"].is_string() ? point["accsim_version"].get<std::string>() : "";
    const std::string numerics = point.contains("numerics_identity") && point["numerics_identity"].is_string()
                                     ? point["numerics_identity"].get<std::string>()
                                     : "";
    if (first_identity) {
      subject.accsim_version = one_line(version);
      subject.numerics_identity = one_line(numerics);
      first_identity = false;
    } else if (one_line(numerics) != subject.numerics_identity) {
      s.fail(fmt::format("numerics_identity '{}' differs from the earlier points' '{}': the folder mixes builds",
                         one_line(numerics), subject.numerics_identity));
    }
    // A sweep is a log: a point run again (after a failure) is appended; the last record counts.
    if (auto it = index.find(u.match_key); it != index.end()) {
      subject.units[it->second] = std::move(u);
    } else {
      index.emplace(u.match_key, subject.units.size());
      subject.units.push_back(std::move(u));
    }
  }
  if (subject.units.empty()) throw InputError(log.string(), "holds no points");
  return subject;
}

}  // namespace

const std::vector<std::string> kMetricNames = {"top1",      "agreement",        "top1_fp32",        "snr",
                                               "overflow",  "underflow",        "swamp",            "product_underflow",
                                               "product_overflow", "energy",    "cycles",           "area_pe",
                                               "area_array"};

const char* to_string(Kind kind) {
  switch (kind) {
    case Kind::run:
      return "run report";
    case Kind::gemm:
      return "gemm report";
    case Kind::sweep:
      return "sweep folder";
  }
  return "?";
}

bool is_uncompared_key(const std::string& key) {
  return key == "timing" || key == "command_line" || key == "threads" || key == "seconds" ||
         (key.size() > 8 && key.ends_with("_seconds"));
}

Subject parse_report(const std::string& text, const fs::path& path) {
  return report_subject(parse_json(text, path.string(), "an accsim report"), path);
}

Subject load_subject(const fs::path& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) throw InputError(path.string(), "does not exist");
  if (fs::is_directory(st)) return sweep_subject(path);
  return parse_report(read_text(path), path);
}

}  // namespace accsim::sim::check
