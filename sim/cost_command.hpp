// `accsim cost`: area and energy of a PE and of an array of them, and the
// energy blocks `accsim gemm --engine cycle` and `accsim run` add to their
// reports (models/cost; docs/cost.md).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "models/cost/cost.hpp"
#include "models/hw/stats.hpp"
#include "models/reference/gemm.hpp"

namespace CLI {
class App;
}

namespace accsim::sim {

struct CostOptions {
  std::string multiplier;
  std::string accumulator;
  std::string product;  // empty: exact (fused) products
  std::string array = "16x16";
  int node = 45;
  std::string input_buffer = "1MiB", weight_buffer = "1MiB", output_buffer = "1MiB";
  bool no_synth = false;  // refuse units missing from the table instead of synthesizing them
  std::string report_path;
};

CLI::App* setup_cost(CLI::App& parent, CostOptions& options);
// Exit code 0, or 2 with one line naming the input on a bad flag or a cost
// the model cannot give.
int run_cost(const CostOptions& options, std::ostream& out, std::ostream& err);
int run_cost(const CostOptions& options);

// The PE formats of a GEMM configuration.
[[nodiscard]] cost::PeFormats pe_formats(const ref::GemmConfig& config);

// Energy of cycle-accurate runs, as the gemm and run reports give it: the
// breakdown at a node, or why there is none (a unit neither in the table nor
// synthesizable). Never throws for a cost the model cannot give.
struct EnergyReport {
  int node_nm = 45;
  double vdd = 0;
  std::optional<cost::EnergyBreakdown> energy;
  std::uint64_t macs = 0;
  std::string source;       // where the PE energy comes from
  std::string unavailable;  // why `energy` is empty
  void add(const cost::EnergyBreakdown& e, std::uint64_t run_macs);
  // Adds another run's energy; unavailable if either is.
  void add(const EnergyReport& other);
  // This report over `n` runs, per run.
  [[nodiscard]] EnergyReport per(std::size_t n) const;
};
// Turns cycle-accurate runs into EnergyReports at one node, loading the cost
// model once. A cost the model cannot give (missing data, a unit neither in
// the table nor synthesizable) makes a report `unavailable`, never an error.
class EnergyMeter {
 public:
  explicit EnergyMeter(int node_nm);
  [[nodiscard]] EnergyReport measure(const ref::GemmConfig& config, const hw::CycleStats& stats) const;
  [[nodiscard]] int node_nm() const { return node_nm_; }

 private:
  int node_nm_;
  std::optional<cost::CostModel> model_;
  std::string unavailable_;  // why model_ is empty
};
// Throws InputError for a node the model does not have (a flag error).
void check_node(int node_nm);
[[nodiscard]] nlohmann::ordered_json energy_json(const EnergyReport& e);
// Two lines for a summary: total and per MAC, then the breakdown.
[[nodiscard]] std::string energy_summary(const EnergyReport& e, const std::string& per);

}  // namespace accsim::sim
