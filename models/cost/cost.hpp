// Area and energy of a MAC array, grounded in synthesized RTL.
//
// Everything starts at 180 nm: the area of each rtl_ref/ unit comes from its
// Yosys + abc synthesis onto the OSU 0.18 um cells (rtl_ref/area/units.csv),
// and the energy of a PE from a gate-level simulation of its netlist on
// operands from a shipped trace (rtl_ref/area/energy.csv). models/cost
// composes a PE from those units, scales to 45 or 7 nm by Stillmaker and
// Baas's factors (models/cost/data/technology.csv), adds SRAM buffers and
// DRAM from published figures (models/cost/data/memory.csv), and turns a
// cycle-accurate run's register toggles and buffer traffic into energy.
// docs/cost.md has the method and what it leaves out.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "models/hw/stats.hpp"
#include "models/numerics/format.hpp"

namespace accsim::cost {

// A cost the model cannot give, or a data file it cannot read. what() is one
// line, "<input>: <problem>"; input() is the input it is about (a flag, a
// format, a file) so a CLI can name it.
class CostError : public std::runtime_error {
 public:
  CostError(std::string input, const std::string& problem);
  [[nodiscard]] const std::string& input() const { return input_; }

 private:
  std::string input_;
};

// A technology node and the factors from the 180 nm characterization to it.
struct Node {
  int nm = 180;
  double vdd = 1.8;
  double area_scale = 1;    // area here / area at 180 nm
  double energy_scale = 1;  // energy here / energy at 180 nm, 1.8 V
};

// The arithmetic of one PE: operands in `multiplier`, the product exact
// (fused) or rounded into `product`, sums in `accumulator`.
struct PeFormats {
  num::Format multiplier;
  std::optional<num::Format> product;
  num::Format accumulator;
};

// One synthesized unit a PE is built from, as the area table names it.
struct UnitRef {
  std::string unit;  // acc, acc_fused, mul, mul_round, int_mul, int_acc
  std::string operand, product, accumulator;  // canonical format strings, "" where unused
  [[nodiscard]] std::string describe() const;  // "mul_round e4m3 -> M7E4,..." for reports
};

// PE area at a node, um^2. The total is the sum of the parts; `synthesized`
// is the same PE synthesized as one module, when the table has it (abc
// optimizes across the boundaries, so it differs by a few percent).
struct PeArea {
  double multiplier = 0, adder = 0, registers = 0;
  int register_bits = 0;  // operand a, operand b, product and accumulator registers
  UnitRef multiplier_unit, adder_unit;
  bool synthesized_on_demand = false;  // a unit was missing from the table and synthesized now
  std::optional<double> synthesized;
  [[nodiscard]] double total() const { return multiplier + adder + registers; }
};

// Energy constants of a PE at a node, pJ. A register bit flip costs
// `reg_per_toggle` in the flip-flop and drives `comb_per_toggle` in the logic
// it feeds: the gate-level run's datapath and flip-flop energies divided by
// its register bit flips. A loaded (ungated) flip-flop costs
// `clock_per_flop_cycle` per cycle; leakage runs every cycle.
struct PeEnergy {
  double comb_per_toggle = 0, reg_per_toggle = 0, clock_per_flop_cycle = 0, leakage_per_cycle = 0;
  int flops = 0;
  // At the characterization stream's activity (fmnist_cnn conv2, K = 144).
  double reg_toggles_per_mac = 0;
  [[nodiscard]] double datapath_per_mac() const { return comb_per_toggle * reg_toggles_per_mac; }
  [[nodiscard]] double registers_per_mac() const { return reg_per_toggle * reg_toggles_per_mac; }
  [[nodiscard]] double clock_per_mac() const { return clock_per_flop_cycle * flops; }
  [[nodiscard]] double per_mac() const {
    return datapath_per_mac() + registers_per_mac() + clock_per_mac() + leakage_per_cycle;
  }
  bool characterized = false;  // false: estimated from area (see source)
  std::string source;
};

// Energy of a run, pJ, by where it is spent.
struct EnergyBreakdown {
  double datapath = 0, registers = 0, clock = 0, leakage = 0;  // the PEs
  double input_sram = 0, weight_sram = 0, output_sram = 0, dram = 0;
  [[nodiscard]] double pe() const { return datapath + registers + clock + leakage; }
  [[nodiscard]] double total() const { return pe() + input_sram + weight_sram + output_sram + dram; }
  EnergyBreakdown& operator+=(const EnergyBreakdown& o);
  EnergyBreakdown& operator*=(double factor);
};

class CostModel {
 public:
  struct Options {
    // The repository root (rtl_ref/area/ and models/cost/data/ below it).
    std::filesystem::path data_dir = default_data_dir();
    // Units missing from the table: synthesize them when Yosys is present
    // (results cached in `cache_file`), else refuse naming the nearest rows.
    bool synthesize = true;
    std::filesystem::path cache_file = default_cache_file();
  };
  explicit CostModel(const Options& options);
  CostModel() : CostModel(Options{}) {}

  // $ACCSIM_DATA_DIR, else the source tree accsim was built from.
  static std::filesystem::path default_data_dir();
  // $XDG_CACHE_HOME/accsim/units.csv (or ~/.cache/accsim/units.csv).
  static std::filesystem::path default_cache_file();

  // 180, 45 or 7; anything else is a CostError naming the nodes there are.
  [[nodiscard]] Node node(int nm) const;

  [[nodiscard]] PeArea pe_area(const PeFormats& pe, const Node& node) const;
  [[nodiscard]] PeEnergy pe_energy(const PeFormats& pe, const Node& node) const;

  // An SRAM of `bytes`: macro area (um^2) and energy per bit accessed (pJ).
  [[nodiscard]] double sram_area(std::uint64_t bytes, const Node& node) const;
  [[nodiscard]] double sram_pj_per_bit(std::uint64_t bytes, const Node& node) const;
  [[nodiscard]] double dram_pj_per_bit() const { return dram_pj_per_64b_ / 64; }

  // A cycle-accurate run's energy: its register toggles, PE cycles and
  // buffer and DRAM traffic times the constants above.
  [[nodiscard]] EnergyBreakdown energy(const PeFormats& pe, const hw::CycleStats& run, const Node& node) const;

 private:
  struct AreaRow {
    UnitRef key;
    double cells = 0, flops = 0, area = 0, flop_area = 0;
  };
  struct EnergyRow {
    std::string name;
    UnitRef key;  // unit pe / int_pe, product "exact" for fused
    double area = 0, flops = 0, comb_pj = 0, flop_pj = 0, clock_pj_per_flop_cycle = 0, leakage_nw = 0,
           period_ns = 0, reg_toggles = 0;
  };

  [[nodiscard]] const AreaRow& unit_row(const UnitRef& key, bool* synthesized) const;
  [[nodiscard]] std::string nearest_rows(const UnitRef& key) const;

  Options options_;
  std::vector<Node> nodes_;
  mutable std::vector<AreaRow> areas_;  // grows when units are synthesized on demand
  mutable std::vector<std::pair<std::string, std::string>> failed_synthesis_;  // (unit, why): not retried
  std::vector<EnergyRow> energies_;
  double flop_area_per_bit_ = 0;  // um^2 at 180 nm, from the table's PEs
  std::vector<std::pair<double, double>> sram_pj_per_64b_;  // (capacity bytes, pJ at sram_node_)
  int sram_node_nm_ = 45;
  double dram_pj_per_64b_ = 0;
  double sram_cell_um2_ = 0, sram_efficiency_ = 1;
  int sram_cell_node_nm_ = 45;
};

}  // namespace accsim::cost
