#include "sim/cost_command.hpp"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <new>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "models/hw/array_config.hpp"
#include "sim/errors.hpp"
#include "sim/output_file.hpp"

namespace accsim::sim {
namespace {

using json = nlohmann::ordered_json;

num::Format format_flag(const std::string& flag, const std::string& text) {
  try {
    return num::parse_format(text);
  } catch (const num::FormatError& e) {
    throw InputError(flag, e.what());
  }
}

double percent(double part, double whole) { return whole > 0 ? 100 * part / whole : 0; }

// "1.944 uJ": an energy in pJ in the unit that keeps it readable.
std::string energy_text(double pj) {
  static constexpr std::pair<double, const char*> kUnits[] = {{1e9, "mJ"}, {1e6, "uJ"}, {1e3, "nJ"}};
  for (const auto& [scale, unit] : kUnits) {
    if (std::abs(pj) >= scale) return fmt::format("{:.4g} {}", pj / scale, unit);
  }
  return fmt::format("{:.4g} pJ", pj);
}

json round_to(double x, double quantum) { return std::round(x / quantum) * quantum; }

int cost_or_throw(const CostOptions& o, std::ostream& out) {
  cost::PeFormats f{format_flag("--mul", o.multiplier), std::nullopt, format_flag("--acc", o.accumulator)};
  if (!o.product.empty()) f.product = format_flag("--prod", o.product);
  hw::ArrayShape shape;
  std::uint64_t ibuf = 0, wbuf = 0, obuf = 0;
  try {
    shape = hw::parse_array(o.array);
    ibuf = hw::parse_bytes(o.input_buffer, "--ibuf");
    wbuf = hw::parse_bytes(o.weight_buffer, "--wbuf");
    obuf = hw::parse_bytes(o.output_buffer, "--obuf");
  } catch (const hw::ConfigError& e) {
    // what() is "<field>: <problem>"; name the flag instead of the field.
    const std::string what = e.what();
    const std::string problem = what.substr(std::min(what.size(), e.field().size() + 2));
    throw InputError(e.field() == "array" ? "--array" : e.field(), problem);
  }
  check_node(o.node);
  if (!o.report_path.empty()) check_writable_target(o.report_path);

  cost::CostModel::Options mo;
  mo.synthesize = !o.no_synth;
  const cost::CostModel model(mo);
  const cost::Node node = model.node(o.node);
  const cost::PeArea area = model.pe_area(f, node);
  const cost::PeEnergy energy = model.pe_energy(f, node);
  const double pes = static_cast<double>(shape.rows * shape.cols);
  const double buffers = model.sram_area(ibuf, node) + model.sram_area(wbuf, node) + model.sram_area(obuf, node);
  const double array_area = area.total() * pes + buffers;

  const std::string pe_name = fmt::format("{} x {} -> {} -> {}", num::to_string(f.multiplier),
                                          num::to_string(f.multiplier),
                                          f.product ? num::to_string(*f.product) : std::string("exact"),
                                          num::to_string(f.accumulator));
  std::ostringstream s;
  s << fmt::format("accsim cost: {} PE, {}x{} array, {} nm ({} V)\n", pe_name, shape.rows, shape.cols, node.nm,
                   node.vdd);
  s << fmt::format("  PE area          {:>12.1f} um^2\n", area.total());
  s << fmt::format("    multiplier     {:>12.1f} um^2  {:5.1f}%  ({})\n", area.multiplier,
                   percent(area.multiplier, area.total()), area.multiplier_unit.describe());
  s << fmt::format("    adder          {:>12.1f} um^2  {:5.1f}%  ({})\n", area.adder, percent(area.adder, area.total()),
                   area.adder_unit.describe());
  s << fmt::format("    registers      {:>12.1f} um^2  {:5.1f}%  ({} bits)\n", area.registers,
                   percent(area.registers, area.total()), area.register_bits);
  if (area.synthesized) {
    s << fmt::format("    whole PE synthesized as one: {:.1f} um^2\n", *area.synthesized);
  }
  s << fmt::format("  array area       {:>12.4f} mm^2: PEs {:.4f}, buffers {:.4f} ({} + {} + {})\n",
                   array_area * 1e-6, area.total() * pes * 1e-6, buffers * 1e-6, o.input_buffer, o.weight_buffer,
                   o.output_buffer);
  s << fmt::format("  per PE with its share of the buffers: {:.1f} um^2\n", array_area / pes);
  s << fmt::format("  energy per MAC   {:>12.4f} pJ: datapath {:.4f}, registers {:.4f}, clock {:.4f}, leakage {:.6f}\n",
                   energy.per_mac(), energy.datapath_per_mac(), energy.registers_per_mac(), energy.clock_per_mac(),
                   energy.leakage_per_cycle);
  s << "    " << energy.source << " (PE only, at the characterization stream's activity)\n";

  std::optional<StagedFile> report;
  if (!o.report_path.empty()) {
    json r;
    r["accsim_version"] = ACCSIM_VERSION;
    r["command"] = "cost";
    r["config"] = {{"multiplier", num::to_string(f.multiplier)},
                   {"product", f.product ? json(num::to_string(*f.product)) : json(nullptr)},
                   {"accumulator", num::to_string(f.accumulator)},
                   {"array", {{"rows", shape.rows}, {"cols", shape.cols}}},
                   {"buffers_bytes", {{"input", ibuf}, {"weight", wbuf}, {"output", obuf}}}};
    r["node"] = {{"nm", node.nm}, {"vdd", node.vdd}, {"area_scale", node.area_scale},
                 {"energy_scale", node.energy_scale}};
    json& pe = r["pe_area_um2"];
    pe["total"] = area.total();
    pe["multiplier"] = {{"um2", area.multiplier}, {"unit", area.multiplier_unit.describe()}};
    pe["adder"] = {{"um2", area.adder}, {"unit", area.adder_unit.describe()}};
    pe["registers"] = {{"um2", area.registers}, {"bits", area.register_bits}};
    pe["whole_pe_synthesized"] = area.synthesized ? json(*area.synthesized) : json(nullptr);
    pe["synthesized_on_demand"] = area.synthesized_on_demand;
    r["array_area_um2"] = {{"pes", area.total() * pes},
                           {"buffers", buffers},
                           {"total", array_area},
                           {"per_pe_with_buffers", array_area / pes}};
    r["pe_energy_per_mac_pj"] = {{"total", energy.per_mac()},
                                 {"datapath", energy.datapath_per_mac()},
                                 {"registers", energy.registers_per_mac()},
                                 {"clock", energy.clock_per_mac()},
                                 {"leakage", energy.leakage_per_cycle},
                                 {"characterized", energy.characterized},
                                 {"source", energy.source}};
    report.emplace(o.report_path, r.dump(2) + "\n");
  }
  if (report) report->commit();
  out << s.str();
  if (report) out << "  wrote report " << o.report_path << '\n';
  return kExitOk;
}

}  // namespace

cost::PeFormats pe_formats(const ref::GemmConfig& config) {
  return {config.multiplier, config.product, config.accumulator};
}

void check_node(int node_nm) {
  try {
    (void)cost::CostModel(cost::CostModel::Options{.synthesize = false}).node(node_nm);
  } catch (const cost::CostError& e) {
    throw InputError(e.input(), std::string(e.what()).substr(e.input().size() + 2));
  }
}

void EnergyReport::add(const cost::EnergyBreakdown& e, std::uint64_t run_macs) {
  if (!energy) energy.emplace();
  *energy += e;
  macs += run_macs;
}

void EnergyReport::add(const EnergyReport& other) {
  node_nm = other.node_nm;
  vdd = other.vdd;
  if (source.empty()) source = other.source;
  if (!unavailable.empty()) return;
  if (!other.energy) {
    unavailable = other.unavailable;
    energy.reset();
    return;
  }
  add(*other.energy, other.macs);
}

EnergyReport EnergyReport::per(std::size_t n) const {
  EnergyReport r = *this;
  if (r.energy && n > 0) *r.energy *= 1.0 / static_cast<double>(n);
  if (n > 0) r.macs /= n;
  return r;
}

EnergyMeter::EnergyMeter(int node_nm) : node_nm_(node_nm) {
  try {
    model_.emplace();
  } catch (const cost::CostError& e) {
    unavailable_ = e.what();
  }
}

EnergyReport EnergyMeter::measure(const ref::GemmConfig& config, const hw::CycleStats& stats) const {
  EnergyReport r;
  r.node_nm = node_nm_;
  r.unavailable = unavailable_;
  if (!model_) return r;
  try {
    const cost::Node node = model_->node(node_nm_);
    r.vdd = node.vdd;
    const cost::PeFormats f = pe_formats(config);
    r.add(model_->energy(f, stats, node), stats.useful_macs);
    r.source = model_->pe_energy(f, node).source;
  } catch (const cost::CostError& e) {
    r.energy.reset();
    r.unavailable = e.what();
  }
  return r;
}

json energy_json(const EnergyReport& e) {
  json j;
  j["node_nm"] = e.node_nm;
  if (!e.energy) {
    j["unavailable"] = e.unavailable;
    return j;
  }
  const cost::EnergyBreakdown& b = *e.energy;
  j["vdd"] = e.vdd;
  // Rounded to 1e-6 pJ so that summation order (threads, layers) cannot
  // change a report's bytes.
  j["total_pj"] = round_to(b.total(), 1e-6);
  j["pj_per_mac"] = round_to(e.macs ? b.total() / static_cast<double>(e.macs) : 0, 1e-9);
  j["pe_pj"] = {{"datapath", round_to(b.datapath, 1e-6)},
                {"registers", round_to(b.registers, 1e-6)},
                {"clock", round_to(b.clock, 1e-6)},
                {"leakage", round_to(b.leakage, 1e-6)}};
  j["sram_pj"] = {{"input", round_to(b.input_sram, 1e-6)},
                  {"weight", round_to(b.weight_sram, 1e-6)},
                  {"output", round_to(b.output_sram, 1e-6)}};
  j["dram_pj"] = round_to(b.dram, 1e-6);
  j["pe_energy_source"] = e.source;
  return j;
}

std::string energy_summary(const EnergyReport& e, const std::string& per) {
  if (!e.energy) return fmt::format("  energy       unavailable: {}\n", e.unavailable);
  const cost::EnergyBreakdown& b = *e.energy;
  const double t = b.total();
  return fmt::format("  energy       {} {} at {} nm, {:.4g} pJ/MAC: PE {:.0f}% (datapath {:.0f}%, registers "
                     "{:.0f}%, clock {:.0f}%), SRAM {:.0f}%, DRAM {:.0f}%\n",
                     energy_text(t), per, e.node_nm, e.macs ? t / static_cast<double>(e.macs) : 0.0, percent(b.pe(), t),
                     percent(b.datapath, t), percent(b.registers, t), percent(b.clock, t),
                     percent(b.input_sram + b.weight_sram + b.output_sram, t), percent(b.dram, t));
}

CLI::App* setup_cost(CLI::App& parent, CostOptions& o) {
  CLI::App* cmd = parent.add_subcommand(
      "cost", "area of a PE and an array (multiplier, adder, registers, buffers) and energy per MAC, from "
              "synthesized RTL and gate-level simulation, scaled to a technology node");
  cmd->add_option("--mul", o.multiplier, "multiplier (operand) format, e.g. e4m3")->required()->type_name("FMT");
  cmd->add_option("--acc", o.accumulator, "accumulator format")->required()->type_name("FMT");
  cmd->add_option("--prod", o.product, "product format; default: exact products (fused)")->type_name("FMT");
  cmd->add_option("--array", o.array, "array size RxC")->capture_default_str();
  cmd->add_option("--node", o.node, "technology node in nm: 180 (as synthesized), 45 or 7")->capture_default_str();
  cmd->add_option("--ibuf", o.input_buffer, "input buffer capacity")->capture_default_str();
  cmd->add_option("--wbuf", o.weight_buffer, "weight buffer capacity")->capture_default_str();
  cmd->add_option("--obuf", o.output_buffer, "output buffer capacity")->capture_default_str();
  cmd->add_flag("--no-synth", o.no_synth, "refuse units missing from the area table instead of synthesizing them");
  cmd->add_option("--report", o.report_path, "write a JSON report")->type_name("report.json");
  return cmd;
}

int run_cost(const CostOptions& options, std::ostream& out, std::ostream& err) {
  return guarded(err, [&] { return cost_or_throw(options, out); });
}

int run_cost(const CostOptions& options) { return run_cost(options, std::cout, std::cerr); }

}  // namespace accsim::sim
