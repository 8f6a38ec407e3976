#include "sim/sweep_spec.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "models/numerics/format.hpp"
#include "models/reference/order.hpp"
#include "sim/cost_command.hpp"
#include "sim/errors.hpp"
#include "sim/network/digest.hpp"
#include "sim/run_command.hpp"

namespace accsim::sim {
namespace {

using nlohmann::ordered_json;

// A setting as the spec gives it, with where it came from for messages.
struct Value {
  std::string key;
  YAML::Node node;
  std::string where;  // "spec.yaml:7: axes.acc"
};

const std::vector<std::string>& point_keys() {
  static const std::vector<std::string> keys = {"trace", "mul",  "prod",     "acc",  "order", "scale", "layers",
                                                "array", "dataflow", "node", "ibuf", "wbuf", "obuf"};
  return keys;
}

bool is_point_key(const std::string& key) {
  const auto& k = point_keys();
  return std::find(k.begin(), k.end(), key) != k.end();
}

class SpecReader {
 public:
  explicit SpecReader(std::filesystem::path path) : path_(std::move(path)), name_(path_.string()) {}

  std::string where(const YAML::Node& node, const std::string& key) const {
    const YAML::Mark m = node.Mark();
    return m.is_null() ? fmt::format("{}: {}", name_, key) : fmt::format("{}:{}: {}", name_, m.line + 1, key);
  }
  [[noreturn]] void fail(const YAML::Node& node, const std::string& key, const std::string& problem) const {
    throw InputError(where(node, key), problem);
  }
  [[noreturn]] void fail(const Value& v, const std::string& problem) const { throw InputError(v.where, problem); }

  std::string scalar(const Value& v) const {
    if (!v.node.IsScalar()) fail(v, "must be a single value (a string or a number)");
    return v.node.Scalar();
  }

  // The canonical form of a setting, as it appears in a record's config.
  ordered_json canonical(const Value& v) const {
    const std::string& k = v.key;
    if (k == "trace") return scalar(v);
    if (k == "mul" || k == "prod" || k == "acc" || k == "order" || k == "scale") {
      net::LayerArithmetic a;
      net::apply_setting(a, k, scalar(v), v.where);
      const ref::GemmConfig& c = a.config;
      if (k == "mul") return num::to_string(c.multiplier);
      if (k == "prod") return c.product ? num::to_string(*c.product) : std::string("exact");
      if (k == "acc") return num::to_string(c.accumulator);
      if (k == "order") return ref::to_string(c.order);
      return std::string(ref::to_string(c.scaling));
    }
    if (k == "layers") return overrides_json(v);
    try {
      if (k == "array") {
        const hw::ArrayShape s = hw::parse_array(scalar(v));
        return fmt::format("{}x{}", s.rows, s.cols);
      }
      if (k == "dataflow") {
        return hw::parse_dataflow(scalar(v)) == hw::Dataflow::weight_stationary ? "ws" : "os";
      }
      if (k == "ibuf" || k == "wbuf" || k == "obuf") return hw::parse_bytes(scalar(v), k);
    } catch (const hw::ConfigError& e) {
      const std::string what = e.what();
      fail(v, what.substr(std::min(what.size(), e.field().size() + 2)));
    }
    if (k == "node") {
      const std::string s = scalar(v);
      int nm = 0;
      if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 4) {
        fail(v, "'" + s + "' is not a node in nm (180, 45 or 7)");
      }
      nm = std::stoi(s);
      try {
        check_node(nm);
      } catch (const InputError& e) {
        const std::string what = e.what();
        fail(v, what.substr(what.find(": ") + 2));
      }
      return nm;
    }
    fail(v, "unknown setting");
  }

  // `layers: {SELECTOR: {key: value}}`, as in a --layer-config file: the
  // overrides in document order, values in canonical spelling.
  ordered_json overrides_json(const Value& v) const {
    ordered_json list = ordered_json::array();
    if (v.node.IsNull()) return list;
    if (!v.node.IsMap()) fail(v, "must map layer selectors to {key: value} maps (as --layer-config's layers:)");
    const std::string path = v.where.substr(v.where.rfind(": ") + 2);  // "fixed.layers"
    for (const auto& entry : v.node) {
      const std::string selector = entry.first.as<std::string>();
      const YAML::Node& settings = entry.second;
      if (!settings.IsMap()) fail(settings, path + "." + selector, "must be a map of key: value");
      for (const auto& kv : settings) {
        const std::string key = kv.first.as<std::string>();
        const Value one{key, kv.second, where(kv.second, path + "." + selector + "." + key)};
        std::string value = scalar(one);
        if (key == "engine") {
          net::LayerArithmetic a;
          net::apply_setting(a, key, value, one.where);
        } else if (key == "mul" || key == "prod" || key == "acc" || key == "order" || key == "scale") {
          value = canonical(one).get<std::string>();
        } else {
          fail(one, "unknown per-layer key (engine, mul, prod, acc, order, scale)");
        }
        list.push_back({{"layer", selector}, {"key", key}, {"value", value}});
      }
    }
    return list;
  }

  std::filesystem::path resolve_trace(const std::string& text) const {
    const std::filesystem::path p(text);
    if (p.is_absolute()) return p;
    std::error_code ec;
    const std::filesystem::path beside = path_.parent_path() / p;
    if (std::filesystem::is_directory(beside, ec)) return beside;
    std::filesystem::path root = net::default_trace_dir().parent_path().parent_path();
    if (root.empty()) root = ".";
    if (std::filesystem::is_directory(root / p, ec)) return root / p;
    return beside;
  }

  std::filesystem::path path_;
  std::string name_;
};

using Combo = std::vector<Value>;

std::vector<Value> map_values(const SpecReader& r, const YAML::Node& map, const std::string& section) {
  std::vector<Value> out;
  if (!map) return out;
  if (!map.IsMap()) r.fail(map, section, "must be a map of setting: value");
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>();
    if (!is_point_key(key)) {
      r.fail(kv.first, section + "." + key,
             "unknown setting (trace, mul, prod, acc, order, scale, layers, array, dataflow, node, ibuf, wbuf, obuf)");
    }
    out.push_back({key, kv.second, r.where(kv.second, section + "." + key)});
  }
  return out;
}

// An axis: a key and its values (a YAML list; a scalar is a one-value axis).
struct Axis {
  std::string key;
  std::vector<Value> values;
};

Axis read_axis(const SpecReader& r, const YAML::Node& key_node, const YAML::Node& list, const std::string& section) {
  Axis a;
  a.key = key_node.as<std::string>();
  const std::string name = section.empty() ? a.key : section + "." + a.key;
  if (!is_point_key(a.key)) {
    r.fail(key_node, name,
           "unknown setting (trace, mul, prod, acc, order, scale, layers, array, dataflow, node, ibuf, wbuf, obuf)");
  }
  if (!list.IsSequence()) r.fail(list, name, "must be a list of values");
  if (list.size() == 0) r.fail(list, name, "is an empty list: the product of the axes would be empty");
  for (std::size_t i = 0; i < list.size(); ++i) {
    a.values.push_back({a.key, list[i], r.where(list[i], fmt::format("{}[{}]", name, i))});
  }
  return a;
}

std::string hash16(const ordered_json& j) { return net::sha256_hex(j.dump()).substr(0, 16); }

SweepPlan parse_spec(const std::string& yaml, const std::filesystem::path& spec_path);

}  // namespace

SweepPlan parse_sweep_spec(const std::string& yaml, const std::filesystem::path& spec_path) {
  try {
    return parse_spec(yaml, spec_path);
  } catch (const YAML::Exception& e) {
    // A key that is not a string ({[1]: 2}) and the like: yaml-cpp's own
    // conversion errors, with the line they are on.
    throw InputError(e.mark.is_null() ? spec_path.string() : fmt::format("{}:{}", spec_path.string(), e.mark.line + 1),
                     "unexpected YAML here: " + e.msg + " (keys and settings are plain strings; docs/sweep.md)");
  }
}

namespace {

SweepPlan parse_spec(const std::string& yaml, const std::filesystem::path& spec_path) {
  const SpecReader r(spec_path);
  const std::string name = spec_path.string();
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw InputError(fmt::format("{}:{}", name, e.mark.line + 1), "not valid YAML: " + e.msg);
  }
  if (!root.IsMap()) throw InputError(name, "a sweep spec is a YAML map (trace:, fixed:, axes:, ...; docs/sweep.md)");

  SweepPlan plan;
  plan.spec_path = spec_path;
  std::vector<Value> base;  // trace and fixed settings
  std::vector<Axis> axes;
  std::vector<std::vector<Axis>> zips;
  std::vector<std::vector<Value>> explicit_points;
  std::vector<std::vector<Value>> excludes;

  static const std::set<std::string> top_keys = {"trace", "traces", "samples", "energy_samples", "fixed",
                                                  "axes",  "zip",    "points",  "exclude"};
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (!top_keys.contains(key)) {
      r.fail(kv.first, key,
             "unknown key (trace, traces, samples, energy_samples, fixed, axes, zip, points, exclude; docs/sweep.md)");
    }
    auto count = [&](const char* what) -> std::size_t {
      if (!v.IsScalar()) r.fail(v, key, std::string("must be ") + what);
      const std::string s = v.Scalar();
      if (s.empty() || s.size() > 12 || s.find_first_not_of("0123456789") != std::string::npos) {
        r.fail(v, key, "'" + s + "' is not " + what);
      }
      return static_cast<std::size_t>(std::stoull(s));
    };
    if (key == "trace") {
      if (v.IsSequence()) {
        axes.push_back(read_axis(r, kv.first, v, ""));
        axes.back().key = "trace";
      } else {
        base.push_back({"trace", v, r.where(v, "trace")});
      }
    } else if (key == "traces") {
      axes.push_back(read_axis(r, YAML::Node("trace"), v, "traces"));
    } else if (key == "samples") {
      plan.samples = count("a sample count (0: all)");
    } else if (key == "energy_samples") {
      plan.energy_samples = count("a sample count (at least 1)");
      if (plan.energy_samples == 0) r.fail(v, key, "must be at least 1 (cycles and energy need a sample)");
    } else if (key == "fixed") {
      for (Value& f : map_values(r, v, "fixed")) base.push_back(std::move(f));
    } else if (key == "axes") {
      if (!v.IsMap()) r.fail(v, key, "must map settings to lists of values");
      for (const auto& axis : v) axes.push_back(read_axis(r, axis.first, axis.second, "axes"));
    } else if (key == "zip") {
      if (!v.IsSequence()) r.fail(v, key, "must be a list of groups, each a map of settings to equal-length lists");
      for (std::size_t g = 0; g < v.size(); ++g) {
        const std::string section = fmt::format("zip[{}]", g);
        if (!v[g].IsMap() || v[g].size() == 0) r.fail(v[g], section, "must map settings to equal-length lists");
        std::vector<Axis> group;
        for (const auto& axis : v[g]) {
          group.push_back(read_axis(r, axis.first, axis.second, section));
          if (group.back().values.size() != group.front().values.size()) {
            r.fail(axis.second, section + "." + group.back().key,
                   fmt::format("has {} values but {} has {}: zipped lists vary together and must be equally long",
                               group.back().values.size(), group.front().key, group.front().values.size()));
          }
        }
        zips.push_back(std::move(group));
      }
    } else if (key == "points") {
      if (!v.IsSequence()) r.fail(v, key, "must be a list of maps, one a point");
      if (v.size() == 0) r.fail(v, key, "is an empty list: there would be no points");
      for (std::size_t i = 0; i < v.size(); ++i) explicit_points.push_back(map_values(r, v[i], fmt::format("points[{}]", i)));
    } else if (key == "exclude") {
      if (!v.IsSequence()) r.fail(v, key, "must be a list of maps; a point matching every setting of one is dropped");
      for (std::size_t i = 0; i < v.size(); ++i) excludes.push_back(map_values(r, v[i], fmt::format("exclude[{}]", i)));
    }
  }

  // Each setting comes from one place: fixed, an axis, a zip group, or the explicit points.
  std::map<std::string, std::string> origin;
  auto claim = [&](const std::string& key, const std::string& place, const Value& v) {
    auto [it, fresh] = origin.emplace(key, place);
    if (fresh) return;
    if (it->second != place) {
      throw InputError(v.where, "'" + key + "' is already set by " + it->second +
                                    "; a setting comes from one of fixed, axes, zip and points");
    }
    throw InputError(v.where, "'" + key + "' is set twice in " + place);
  };
  for (const Value& v : base) claim(v.key, v.key == "trace" ? "trace" : "fixed", v);
  for (const Axis& a : axes) claim(a.key, "axes", a.values.front());
  for (std::size_t g = 0; g < zips.size(); ++g) {
    for (const Axis& a : zips[g]) claim(a.key, fmt::format("zip[{}]", g), a.values.front());
  }
  for (const auto& p : explicit_points) {
    for (const Value& v : p) {
      auto it = origin.find(v.key);
      if (it != origin.end() && it->second != "points" && it->second != "fixed") {
        throw InputError(v.where,
                         "'" + v.key + "' is already set by " + it->second + "; an explicit point may override fixed only");
      }
      if (it == origin.end()) origin.emplace(v.key, "points");
    }
  }
  if (!origin.contains("trace")) throw InputError(name, "no trace: name one with 'trace: DIR' (or a list of them)");

  // The Cartesian product: explicit points x axes x zip groups, each over the fixed settings.
  std::vector<Combo> combos;
  if (explicit_points.empty()) explicit_points.emplace_back();
  for (const auto& p : explicit_points) {
    std::vector<Combo> partial{base};
    for (const Value& v : p) partial.front().push_back(v);
    for (const Axis& a : axes) {
      std::vector<Combo> next;
      for (const Combo& c : partial) {
        for (const Value& v : a.values) {
          next.push_back(c);
          next.back().push_back(v);
        }
      }
      partial = std::move(next);
    }
    for (const auto& group : zips) {
      std::vector<Combo> next;
      for (const Combo& c : partial) {
        for (std::size_t i = 0; i < group.front().values.size(); ++i) {
          next.push_back(c);
          for (const Axis& a : group) next.back().push_back(a.values[i]);
        }
      }
      partial = std::move(next);
    }
    combos.insert(combos.end(), partial.begin(), partial.end());
  }

  // Every excluded setting's canonical value, checked like any other.
  std::vector<std::vector<std::pair<std::string, ordered_json>>> exclude_values;
  for (const auto& e : excludes) {
    auto& ev = exclude_values.emplace_back();
    for (const Value& v : e) ev.emplace_back(v.key, r.canonical(v));
  }

  std::map<std::string, std::size_t> trace_index;
  std::set<std::string> seen;
  std::size_t excluded = 0;
  for (const Combo& combo : combos) {
    std::map<std::string, const Value*> set;
    for (const Value& v : combo) set[v.key] = &v;  // later wins (points over fixed)
    auto text_or = [&](const char* key, const char* fallback) -> ordered_json {
      auto it = set.find(key);
      if (it == set.end()) {
        const YAML::Node n(fallback);
        return r.canonical(Value{key, n, fmt::format("{}: (default {})", name, key)});
      }
      return r.canonical(*it->second);
    };
    if (!set.contains("trace")) {
      throw InputError(combo.empty() ? name : combo.back().where,
                       "this point names no trace: give 'trace:' at the top or in every point");
    }
    SweepPoint p;
    ordered_json& c = p.config;
    c["trace"] = r.canonical(*set.at("trace"));
    c["mul"] = text_or("mul", kDefaultMultiplier);
    c["prod"] = text_or("prod", kDefaultProduct);
    c["acc"] = text_or("acc", kDefaultAccumulator);
    c["order"] = text_or("order", kDefaultOrder);
    c["scale"] = text_or("scale", kDefaultScale);
    c["overrides"] = set.contains("layers") ? r.canonical(*set.at("layers")) : ordered_json::array();
    c["array"] = text_or("array", "16x16");
    c["dataflow"] = text_or("dataflow", "ws");
    c["node"] = text_or("node", "45");
    c["ibuf"] = text_or("ibuf", "1MiB");
    c["wbuf"] = text_or("wbuf", "1MiB");
    c["obuf"] = text_or("obuf", "1MiB");
    c["energy_samples"] = plan.energy_samples;

    bool drop = false;
    for (const auto& ev : exclude_values) {
      bool all = !ev.empty();
      for (const auto& [key, value] : ev) {
        const ordered_json& have = key == "layers" ? c["overrides"] : c[key];
        all = all && have == value;
      }
      drop = drop || all;
    }
    if (drop) {
      ++excluded;
      continue;
    }

    // The trace, loaded once.
    const std::string trace_text = c["trace"].get<std::string>();
    auto [it, fresh] = trace_index.emplace(trace_text, plan.traces.size());
    if (fresh) {
      SweepTrace t;
      t.path = trace_text;
      t.dir = r.resolve_trace(trace_text);
      try {
        t.trace = std::make_shared<const net::Trace>(net::load_trace(t.dir, plan.samples));
        t.hash = net::trace_content_hash(*t.trace);
      } catch (const InputError& e) {
        throw InputError(set.at("trace")->where, std::string("cannot load the trace: ") + e.what());
      }
      plan.traces.push_back(std::move(t));
    }
    p.trace = it->second;
    const SweepTrace& trace = plan.traces[p.trace];

    // Parsed forms (from the canonical spellings, which parse back to the same values).
    p.base.engine = net::Engine::reference;
    net::apply_setting(p.base, "mul", c["mul"].get<std::string>(), "mul");
    net::apply_setting(p.base, "prod", c["prod"].get<std::string>(), "prod");
    net::apply_setting(p.base, "acc", c["acc"].get<std::string>(), "acc");
    net::apply_setting(p.base, "order", c["order"].get<std::string>(), "order");
    net::apply_setting(p.base, "scale", c["scale"].get<std::string>(), "scale");
    const std::string layers_where = set.contains("layers") ? set.at("layers")->where : name;
    for (const auto& o : c["overrides"]) {
      p.overrides.push_back({o["layer"].get<std::string>(), o["key"].get<std::string>(), o["value"].get<std::string>(),
                             layers_where});
    }
    (void)net::resolve_layers(trace.trace->network, p.base, p.overrides);  // unknown layer names fail here

    const hw::ArrayShape shape = hw::parse_array(c["array"].get<std::string>());
    p.array.rows = shape.rows;
    p.array.cols = shape.cols;
    p.array.dataflow = c["dataflow"] == "ws" ? hw::Dataflow::weight_stationary : hw::Dataflow::output_stationary;
    p.array.ws_partial_sums = hw::WsPartialSums::merge;
    if (!p.base.config.order.sequential()) p.array.merge_format = p.base.config.order.merge_format;
    p.node_nm = c["node"].get<int>();
    p.ibuf = c["ibuf"].get<std::uint64_t>();
    p.wbuf = c["wbuf"].get<std::uint64_t>();
    p.obuf = c["obuf"].get<std::uint64_t>();
    p.array.input_buffer.capacity_bytes = p.ibuf;
    p.array.weight_buffer.capacity_bytes = p.wbuf;
    p.array.output_buffer.capacity_bytes = p.obuf;
    try {
      ref::GemmConfig on_array = p.base.config;
      on_array.order = p.array.order();
      p.array.validate(on_array);
    } catch (const hw::ConfigError& e) {
      const auto at = [&](const char* key) {
        auto f = set.find(key);
        return f == set.end() ? fmt::format("{}: {}", name, key) : f->second->where;
      };
      throw InputError(at(e.field().starts_with("input") ? "ibuf" : e.field().starts_with("weight") ? "wbuf"
                          : e.field().starts_with("output")                                    ? "obuf"
                                                                                              : "array"),
                       e.what());
    }

    ordered_json keyed;
    keyed["trace_hash"] = trace.hash;
    keyed["samples"] = trace.trace->samples;
    keyed["config"] = c;
    keyed["config"].erase("trace");  // the content decides, not where it lies
    p.key = hash16(keyed);
    ordered_json numerics;
    numerics["trace_hash"] = trace.hash;
    numerics["samples"] = trace.trace->samples;
    for (const char* k : {"mul", "prod", "acc", "order", "scale", "overrides"}) numerics[k] = c[k];
    p.numerics_key = hash16(numerics);
    if (seen.insert(p.key).second) plan.points.push_back(std::move(p));
  }
  if (plan.points.empty()) {
    throw InputError(name, excluded > 0 ? fmt::format("every one of the {} points is excluded: nothing to run", excluded)
                                        : std::string("the spec gives no points"));
  }
  std::sort(plan.points.begin(), plan.points.end(),
            [](const SweepPoint& a, const SweepPoint& b) { return a.key < b.key; });
  return plan;
}

}  // namespace

SweepPlan load_sweep_spec(const std::filesystem::path& spec_path) {
  std::error_code ec;
  if (std::filesystem::is_directory(spec_path, ec)) throw InputError(spec_path.string(), "is a directory, not a spec");
  std::ifstream in(spec_path, std::ios::binary);
  if (!in) throw InputError(spec_path.string(), "cannot open the sweep spec");
  std::ostringstream s;
  s << in.rdbuf();
  return parse_sweep_spec(s.str(), spec_path);
}

std::vector<SweepPoint> shard_points(const SweepPlan& plan, std::size_t index, std::size_t count) {
  std::vector<std::string> groups;
  for (const SweepPoint& p : plan.points) groups.push_back(p.numerics_key);
  std::sort(groups.begin(), groups.end());
  groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
  // Units of work: whole numerics groups, or, when there are fewer groups
  // than shards, each group cut into `parts` (its points dealt round-robin in
  // key order), so that no shard idles; a cut group's accuracy run is then
  // done once per part. Unit u goes to shard u % count.
  const std::size_t parts = (count + groups.size() - 1) / std::max<std::size_t>(groups.size(), 1);
  std::vector<std::size_t> seen(groups.size(), 0);
  std::vector<SweepPoint> out;
  for (const SweepPoint& p : plan.points) {
    const auto g = static_cast<std::size_t>(std::lower_bound(groups.begin(), groups.end(), p.numerics_key) - groups.begin());
    const std::size_t unit = g * parts + seen[g]++ % parts;
    if (unit % count == index) out.push_back(p);
  }
  return out;
}

}  // namespace accsim::sim
