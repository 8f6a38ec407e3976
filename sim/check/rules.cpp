#include "sim/check/rules.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iterator>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "sim/errors.hpp"

namespace accsim::sim::check {
namespace {

struct FlagTolerance {
  std::string_view key;  // without the dashes
  double Tolerances::*member;
  std::vector<std::string_view> metrics;
};

const std::vector<FlagTolerance>& flag_table() {
  static const std::vector<FlagTolerance> table = {
      {"max-top1-drop", &Tolerances::max_top1_drop, {"top1", "top1_fp32"}},
      {"max-agreement-drop", &Tolerances::max_agreement_drop, {"agreement"}},
      {"max-energy-rise", &Tolerances::max_energy_rise, {"energy"}},
      {"max-area-rise", &Tolerances::max_area_rise, {"area_pe", "area_array"}},
      {"max-cycles-rise", &Tolerances::max_cycles_rise, {"cycles"}},
      {"max-event-rise",
       &Tolerances::max_event_rise,
       {"overflow", "underflow", "swamp", "product_underflow", "product_overflow"}},
      {"max-snr-drop", &Tolerances::max_snr_drop, {"snr"}},
  };
  return table;
}

const FlagTolerance* flag_for_metric(std::string_view metric) {
  for (const FlagTolerance& f : flag_table()) {
    if (std::find(f.metrics.begin(), f.metrics.end(), metric) != f.metrics.end()) return &f;
  }
  return nullptr;
}

std::string metric_names() {
  std::string s;
  for (const std::string& m : kMetricNames) s += (s.empty() ? "" : ", ") + m;
  return s;
}

double yaml_tolerance(const YAML::Node& node, const std::string& source, const std::string& where) {
  if (!node.IsScalar()) throw InputError(source, fmt::format("{}: expected a number", where));
  return parse_tolerance(node.Scalar(), fmt::format("{}: {}", source, where));
}

void check_metric_name(const std::string& name, const std::string& source, const std::string& where) {
  if (std::find(kMetricNames.begin(), kMetricNames.end(), name) == kMetricNames.end()) {
    throw InputError(source, fmt::format("{}: '{}' is not a metric (one of: {})", where, name, metric_names()));
  }
}

}  // namespace

double Rules::tolerance(const Metric& m) const {
  if (auto layer = layers.find(m.scope); layer != layers.end()) {
    if (auto t = layer->second.find(m.name); t != layer->second.end()) return t->second;
  }
  if (auto t = metrics.find(m.name); t != metrics.end()) return t->second;
  const FlagTolerance* f = flag_for_metric(m.name);
  return f ? tolerances.*(f->member) : 0.0;
}

std::string_view flag_of(std::string_view metric_name) {
  const FlagTolerance* f = flag_for_metric(metric_name);
  return f ? f->key : std::string_view("exact");
}

bool set_tolerance(Tolerances& t, std::string_view key, double value) {
  if (key.starts_with("--")) key.remove_prefix(2);
  for (const FlagTolerance& f : flag_table()) {
    if (f.key == key) {
      t.*(f.member) = value;
      return true;
    }
  }
  return false;
}

double parse_tolerance(std::string_view text, std::string_view source) {
  double x = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, x);
  if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(x)) {
    throw InputError(source, fmt::format("'{}' is not a number", one_line(text)));
  }
  if (x < 0) throw InputError(source, fmt::format("{} is negative; a tolerance is 0 or more", one_line(text)));
  return x;
}

void parse_rules(std::string_view yaml, std::string_view name, Rules& rules) {
  const std::string source(name);
  rules.source = source;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    throw InputError(source, fmt::format("not valid YAML: {}", one_line(e.what())));
  }
  if (root.IsNull()) return;  // an empty file: the defaults
  if (!root.IsMap()) throw InputError(source, "expected a map with keys tolerances, metrics, layers, exact");
  for (const auto& top : root) {
    const std::string key = top.first.IsScalar() ? top.first.Scalar() : "";
    const YAML::Node& value = top.second;
    if (key == "exact") {
      if (!value.IsScalar() || (value.Scalar() != "true" && value.Scalar() != "false")) {
        throw InputError(source, "exact: expected true or false");
      }
      rules.exact = value.Scalar() == "true";
    } else if (key == "tolerances") {
      if (!value.IsMap()) throw InputError(source, "tolerances: expected a map of max-...: number");
      for (const auto& kv : value) {
        const std::string flag = kv.first.IsScalar() ? one_line(kv.first.Scalar()) : "?";
        const double t = yaml_tolerance(kv.second, source, "tolerances: " + flag);
        if (!set_tolerance(rules.tolerances, flag, t)) {
          throw InputError(source, fmt::format("tolerances: '{}' is not a tolerance (max-top1-drop, "
                                               "max-agreement-drop, max-energy-rise, max-area-rise, "
                                               "max-cycles-rise, max-event-rise, max-snr-drop)",
                                               flag));
        }
      }
    } else if (key == "metrics") {
      if (!value.IsMap()) throw InputError(source, "metrics: expected a map of metric: tolerance");
      for (const auto& kv : value) {
        const std::string metric = kv.first.IsScalar() ? one_line(kv.first.Scalar()) : "?";
        check_metric_name(metric, source, "metrics");
        rules.metrics[metric] = yaml_tolerance(kv.second, source, "metrics: " + metric);
      }
    } else if (key == "layers") {
      if (!value.IsMap()) throw InputError(source, "layers: expected a map of layer name: {metric: tolerance}");
      for (const auto& layer : value) {
        const std::string lname = layer.first.IsScalar() ? one_line(layer.first.Scalar()) : "?";
        if (!layer.second.IsMap()) {
          throw InputError(source, fmt::format("layers: '{}': expected a map of metric: tolerance", lname));
        }
        for (const auto& kv : layer.second) {
          const std::string metric = kv.first.IsScalar() ? one_line(kv.first.Scalar()) : "?";
          const std::string where = fmt::format("layers: '{}'", lname);
          check_metric_name(metric, source, where);
          rules.layers[lname][metric] = yaml_tolerance(kv.second, source, where + ": " + metric);
        }
      }
    } else {
      throw InputError(source, fmt::format("unknown key '{}' (tolerances, metrics, layers, exact)", one_line(key)));
    }
  }
}

void read_rules(const std::filesystem::path& path, Rules& rules) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string(), "cannot be read");
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  parse_rules(text, path.string(), rules);
}

}  // namespace accsim::sim::check
