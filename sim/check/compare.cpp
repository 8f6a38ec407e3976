#include "sim/check/compare.hpp"

#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

#include "sim/errors.hpp"

namespace accsim::sim::check {
namespace {

using nlohmann::json;

// Differences this small are the rounding of the subtraction itself (0.852 -
// 0.841 is not exactly 0.011), not a move of the metric.
constexpr double kSlack = 1e-9;

bool is_rate(const Metric& m) { return m.rule == Rule::rise_points; }

std::string value_text(const Metric& m, std::optional<double> v) {
  if (!v) return "n/a";
  const double x = *v;
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  if (m.unit == "%") {
    if (is_rate(m)) return x == 0 ? "0%" : fmt::format("{:.4g}%", 100 * x);
    return fmt::format("{:.2f}%", 100 * x);
  }
  if (m.unit == "cycles") return fmt::format("{:.0f}", x);
  if (m.unit == "dB") return fmt::format("{:.2f} dB", x);
  if (m.unit == "pJ") {  // six digits: the gate sees moves the run's own table rounds away
    static constexpr std::pair<double, const char*> kUnits[] = {{1e9, "mJ"}, {1e6, "uJ"}, {1e3, "nJ"}};
    for (const auto& [scale, unit] : kUnits) {
      if (std::abs(x) >= scale) return fmt::format("{:.6g} {}", x / scale, unit);
    }
  }
  return fmt::format("{:.6g} {}", x, m.unit);
}

std::string limit_text(const Metric& m, double tolerance, bool exact) {
  if (exact) return "identical";
  switch (m.rule) {
    case Rule::drop_points:
      return fmt::format("drop <= {:g} pts", tolerance);
    case Rule::rise_points:
      return fmt::format("rise <= {:g} pts", tolerance);
    case Rule::rise_percent:
      return fmt::format("rise <= {:g}%", tolerance);
    case Rule::drop_db:
      return fmt::format("drop <= {:g} dB", tolerance);
  }
  return "?";
}

// Where a tolerance comes from, for a failure's message.
std::string tolerance_source(const Rules& rules, const Metric& m, bool exact) {
  if (exact) return "--exact";
  if (auto l = rules.layers.find(m.scope); l != rules.layers.end() && l->second.contains(m.name)) {
    return fmt::format("{}: layers: '{}': {}", rules.source, m.scope, m.name);
  }
  if (rules.metrics.contains(m.name)) return fmt::format("{}: metrics: {}", rules.source, m.name);
  return fmt::format("--{}", flag_of(m.name));
}

Check metric_check(const Metric& b, const Metric* c, const Rules& rules, const std::string& suite) {
  Check k;
  k.suite = suite;
  k.scope = b.scope;
  k.metric = b.name;
  k.field = b.field;
  k.unit = b.unit;
  k.baseline = b.value;
  k.baseline_text = value_text(b, b.value);
  const bool exact = rules.exact;
  const double tolerance = exact ? 0.0 : rules.tolerance(b);
  k.limit = limit_text(b, tolerance, exact);
  const std::string what = b.scope + " " + b.name;
  if (c == nullptr) {
    k.current_text = "missing";
    k.difference = "-";
    k.passed = false;
    k.message = fmt::format("{}: in the baseline ({}) but missing from the report (field {})", what, k.baseline_text,
                            b.field);
    return k;
  }
  k.current = c->value;
  k.current_text = value_text(b, c->value);
  auto fail = [&](const std::string& why) {
    k.passed = false;
    k.message = fmt::format("{}: baseline {}, current {}: {}; tolerance: {} ({})", what, k.baseline_text,
                            k.current_text, why, k.limit, tolerance_source(rules, b, exact));
  };
  if (!b.value || !c->value) {
    k.difference = b.value == c->value ? "-" : (b.value ? "now n/a" : "now available");
    if (b.value) fail("no longer available");
    else if (exact && c->value) fail("newly available, not identical");
    return k;
  }
  const double base = *b.value, cur = *c->value;
  if (base == cur) {
    k.difference = "identical";
    return k;
  }
  // The move in the tolerance's unit; positive is worse.
  double worse = 0;
  switch (b.rule) {
    case Rule::drop_points:
      worse = 100 * (base - cur);
      k.difference = fmt::format("{:+.2f} pts", 100 * (cur - base));
      break;
    case Rule::rise_points:
      worse = 100 * (cur - base);
      k.difference = fmt::format("{:+.3g} pts", 100 * (cur - base));
      break;
    case Rule::rise_percent:
      worse = base == 0 ? HUGE_VAL : 100 * (cur - base) / base;
      k.difference = base == 0 ? std::string("from 0") : fmt::format("{:+.3g}%", 100 * (cur - base) / base);
      break;
    case Rule::drop_db:
      worse = base - cur;  // inf - finite = inf: a lost exact result
      k.difference = std::isinf(worse) ? (worse > 0 ? "-inf dB" : "+inf dB") : fmt::format("{:+.2f} dB", cur - base);
      break;
  }
  if (exact) {
    fail("differs (the gate demands identical numbers)");
  } else if (worse > tolerance + kSlack) {
    fail(fmt::format("{} beyond the tolerance", k.difference));
  }
  return k;
}

// --exact: every number, boolean and null of the baseline's record, with
// the same value at the same place in the current one.
bool has_compared_leaf(const json& v) {
  if (v.is_object() || v.is_array()) {
    for (const json& e : v) {
      if (has_compared_leaf(e)) return true;
    }
    return false;
  }
  return !v.is_string() || v == "inf" || v == "-inf" || v == "nan";
}

void compare_leaves(const json& b, const json& c, const std::string& path, std::vector<std::string>& diffs,
                    std::size_t& compared) {
  auto at = [&](const std::string& key) { return path.empty() ? key : path + "." + key; };
  if (b.is_object()) {
    for (const auto& [key, value] : b.items()) {
      if (!c.is_object() || !c.contains(key)) {
        if (has_compared_leaf(value)) diffs.push_back(at(key) + ": missing");
        continue;
      }
      compare_leaves(value, c[key], at(key), diffs, compared);
    }
    return;
  }
  if (b.is_array()) {
    if (!c.is_array() || c.size() != b.size()) {
      if (has_compared_leaf(b)) {
        diffs.push_back(fmt::format("{}: {} elements, now {}", path, b.size(), c.is_array() ? c.size() : 0));
      }
      return;
    }
    for (std::size_t i = 0; i < b.size(); ++i) compare_leaves(b[i], c[i], fmt::format("{}[{}]", path, i), diffs, compared);
    return;
  }
  if (!has_compared_leaf(b)) return;  // descriptive text: names, paths, formats
  ++compared;
  if (b != c) diffs.push_back(fmt::format("{}: {} -> {}", path, b.dump(), c.dump()));
}

Check every_number_check(const Unit& b, const Unit& c, const std::string& suite) {
  Check k;
  k.suite = suite;
  k.scope = "all";
  k.metric = "every number";
  k.field = "*";
  k.limit = "identical";
  std::vector<std::string> diffs;
  std::size_t compared = 0;
  compare_leaves(b.numbers, c.numbers, "", diffs, compared);
  k.baseline_text = fmt::format("{} numbers", compared);
  k.current_text = diffs.empty() ? "same" : fmt::format("{} differ", diffs.size());
  k.difference = diffs.empty() ? "identical" : fmt::format("{} differ", diffs.size());
  if (!diffs.empty()) {
    k.passed = false;
    std::string list;
    constexpr std::size_t kShown = 8;
    for (std::size_t i = 0; i < std::min(diffs.size(), kShown); ++i) list += (i ? "; " : "") + one_line(diffs[i]);
    if (diffs.size() > kShown) list += fmt::format("; and {} more", diffs.size() - kShown);
    k.message = fmt::format("{} of {} numbers differ from the baseline (--exact): {}", diffs.size(), compared, list);
  }
  return k;
}

void compare_units(const Unit& b, const Unit& c, const Rules& rules, const std::string& suite,
                   std::vector<Check>& out) {
  std::map<std::string, const Metric*> current;
  for (const Metric& m : c.metrics) current.emplace(m.key(), &m);
  for (const Metric& m : b.metrics) {
    const auto it = current.find(m.key());
    out.push_back(metric_check(m, it == current.end() ? nullptr : it->second, rules, suite));
  }
  if (rules.exact) out.push_back(every_number_check(b, c, suite));
}

Check point_check(const std::string& suite, bool passed, std::string metric, std::string message,
                  std::string baseline_text, std::string current_text) {
  Check k;
  k.suite = suite;
  k.scope = "point";
  k.metric = std::move(metric);
  k.field = "status";
  k.baseline_text = std::move(baseline_text);
  k.current_text = std::move(current_text);
  k.difference = "-";
  k.limit = "ok";
  k.passed = passed;
  k.message = std::move(message);
  return k;
}

void check_identity(const Unit& b, const Unit& c, const Subject& baseline, const Subject& current) {
  for (const auto& [name, value] : b.identity) {
    for (const auto& [cname, cvalue] : c.identity) {
      if (cname != name || cvalue == value) continue;
      const std::string where = baseline.kind == Kind::sweep ? fmt::format(" (point {})", c.label) : "";
      throw InputError(current.path.string(),
                       fmt::format("{}{} differs from the baseline's: report {}, baseline {} ({}): not comparable",
                                   name, where, cvalue, value, baseline.path.string()));
    }
  }
}

}  // namespace

void check_compatible(const Subject& baseline, const Subject& current) {
  if (baseline.kind != current.kind) {
    throw InputError(current.path.string(), fmt::format("is a {} but the baseline {} is a {}", to_string(current.kind),
                                                         baseline.path.string(), to_string(baseline.kind)));
  }
  if (baseline.numerics_identity != current.numerics_identity) {
    auto shown = [](const std::string& s) { return s.empty() ? std::string("(not recorded)") : s; };
    throw InputError(current.path.string(),
                     fmt::format("numerics identity {} differs from the baseline's {}: formats mean different "
                                 "arithmetic in the two builds, so the numbers are not comparable; make the baseline "
                                 "again (docs/check.md)",
                                 shown(current.numerics_identity), shown(baseline.numerics_identity)));
  }
  if (baseline.kind != Kind::sweep) check_identity(baseline.units.at(0), current.units.at(0), baseline, current);
}

std::vector<Check> compare(const Subject& baseline, const Subject& current, const Rules& rules,
                           std::string_view suite_prefix) {
  check_compatible(baseline, current);
  std::vector<Check> out;
  const std::string prefix(suite_prefix);
  if (baseline.kind != Kind::sweep) {
    compare_units(baseline.units.at(0), current.units.at(0), rules, prefix + baseline.units[0].label, out);
    return out;
  }
  std::map<std::string, const Unit*> now;
  for (const Unit& u : current.units) now.emplace(u.match_key, &u);
  std::set<std::string> matched;
  for (const Unit& b : baseline.units) {
    const std::string suite = prefix + b.label;
    const auto it = now.find(b.match_key);
    if (it == now.end()) {
      out.push_back(point_check(suite, false, "present",
                                fmt::format("point {} is in the baseline but missing from the report (config {})",
                                            b.label, b.match_key),
                                "present", "missing"));
      continue;
    }
    matched.insert(b.match_key);
    const Unit& c = *it->second;
    check_identity(b, c, baseline, current);
    if (!c.ok) {
      out.push_back(point_check(suite, !b.ok, "status",
                                b.ok ? fmt::format("point {} ran in the baseline but failed now: {}", b.label, c.error)
                                     : std::string(),
                                b.ok ? "ok" : "failed", "failed"));
      continue;
    }
    if (!b.ok) {
      out.push_back(point_check(suite, true, "status", "", "failed", "ok"));
      continue;
    }
    compare_units(b, c, rules, suite, out);
  }
  for (const Unit& c : current.units) {
    if (matched.contains(c.match_key)) continue;
    out.push_back(point_check(prefix + c.label, false, "present",
                              fmt::format("point {} is in the report but not in the baseline (config {}): add it to "
                                          "the baseline on purpose",
                                          c.label, c.match_key),
                              "missing", "present"));
  }
  return out;
}

void check_rule_layers(const Rules& rules, const Subject& baseline, const Subject& current) {
  std::set<std::string> known;
  for (const Subject* s : {&baseline, &current}) {
    for (const Unit& u : s->units) known.insert(u.layers.begin(), u.layers.end());
  }
  for (const auto& [layer, metrics] : rules.layers) {
    if (!known.contains(layer)) {
      throw InputError(rules.source, fmt::format("layers: '{}' is not a layer of the report or the baseline", layer));
    }
  }
}

}  // namespace accsim::sim::check
