// Hand-written inputs for the accsim check tests: a small run report and
// sweep points in the schema of DIR/points.jsonl. Their values are inputs,
// chosen to sit on either side of a tolerance, not outputs of accsim.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace accsim::sim::check::testing {

using nlohmann::json;

inline json run_report() {
  return json::parse(R"({
    "accsim_version": "0.1.0", "command": "run", "command_line": ["accsim", "run", "--trace", "t"],
    "numerics_identity": "accsim-numerics-1",
    "trace": {"path": "t", "name": "tiny", "hash": "sha256:aa", "samples": 100},
    "accuracy": {"fp32": {"top1": 0.9}, "lowbit": {"top1": 0.9, "agreement_with_fp32": 0.95, "correct": 90}},
    "layers": [
      {"name": "conv1", "rates": {"overflow": 0.001, "underflow": 0.0, "swamp": 0.01, "product_underflow": 0.0,
                                  "product_overflow": 0.0},
       "error": {"layer": {"snr_db": 30.5, "max_abs": "inf"}}},
      {"name": "fc", "rates": {"overflow": null, "underflow": null, "swamp": null, "product_underflow": null,
                               "product_overflow": null}}],
    "energy": {"per_inference": {"total_pj": 1000.0},
               "layers": [{"name": "conv1", "cycles_per_inference": 500, "per_inference": {"total_pj": 600.0}},
                          {"name": "fc", "array": null}]},
    "timing": {"threads": 2, "wall_seconds": 1.5}
  })");
}

// One sweep point: `acc` and `trace` vary the configuration.
inline json sweep_point(const std::string& key, const std::string& acc, double top1,
                        const std::string& trace = "traces/tiny", const std::string& hash = "sha256:aa") {
  json p = json::parse(R"({
    "status": "ok", "error": null, "samples": 100,
    "top1_fp32": 0.9, "agreement": 0.95,
    "layers": [{"name": "conv1", "overflow": 0.0, "underflow": 0.001, "swamp": 0.01, "product_underflow": 0.0}],
    "cycles_per_inference": 5000, "area_um2": {"pe": 1000.0, "array": 256000.0},
    "energy_uj_per_inference": 0.5, "pareto": {"area": true, "energy": false}
  })");
  p["key"] = key;
  p["trace"] = {{"path", trace}, {"hash", hash}};
  p["config"] = {{"trace", trace}, {"mul", "e4m3"}, {"prod", "exact"}, {"acc", acc}, {"order", "chunked:16"},
                 {"scale", "pow2"}, {"array", "16x16"}, {"dataflow", "ws"}, {"node", 45}};
  p["top1"] = top1;
  return p;
}

}  // namespace accsim::sim::check::testing
