// A sweep specification (docs/sweep.md): a YAML file that names traces and
// settings, expanded into design points, every one checked before any runs.
//
// Spec errors (an unknown key, a bad format string, an unreadable trace, an
// empty product) are InputError "<spec>:<line>: <key>: <problem>".
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/hw/array_config.hpp"
#include "sim/network/executor.hpp"
#include "sim/network/layer_config.hpp"
#include "sim/network/trace.hpp"

namespace accsim::sim {

// One design point, fully resolved. `config` holds every setting in
// canonical spelling (the record's "config" object); the rest is what the
// runner needs.
struct SweepPoint {
  std::size_t trace = 0;  // index into SweepPlan::traces
  nlohmann::ordered_json config;
  std::string key;           // hash of config (without the trace's path), samples and the trace's content
  std::string numerics_key;  // hash of what accuracy depends on: trace content, samples, formats, order, scale, overrides
  net::LayerArithmetic base;             // the formats, order and scale of every layer before overrides
  std::vector<net::LayerOverride> overrides;
  hw::ArrayConfig array;  // rows, cols, dataflow and buffer capacities (the order follows from them)
  int node_nm = 45;
  std::uint64_t ibuf = 0, wbuf = 0, obuf = 0;
};

struct SweepTrace {
  std::string path;  // as written in the spec
  std::filesystem::path dir;
  std::string hash;  // net::trace_content_hash
  std::shared_ptr<const net::Trace> trace;
};

struct SweepPlan {
  std::filesystem::path spec_path;
  std::size_t samples = 0;         // per point; 0 in the spec means every sample of the trace
  std::size_t energy_samples = 1;  // samples run on the cycle-accurate array for cycles and energy
  std::vector<SweepTrace> traces;
  std::vector<SweepPoint> points;  // sorted by key, no two alike
};

// Reads and expands a spec; loads every trace it names (their first
// `samples` samples). Throws InputError for any spec error.
[[nodiscard]] SweepPlan load_sweep_spec(const std::filesystem::path& spec_path);
[[nodiscard]] SweepPlan parse_sweep_spec(const std::string& yaml, const std::filesystem::path& spec_path);

// The points of shard `index` of `count` (0-based): whole numerics groups,
// dealt round-robin in numerics-key order, so a shard never redoes another
// shard's accuracy run; with fewer groups than shards, each group is cut into
// parts so that every shard gets points.
[[nodiscard]] std::vector<SweepPoint> shard_points(const SweepPlan& plan, std::size_t index, std::size_t count);

}  // namespace accsim::sim
