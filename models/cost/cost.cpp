#include "models/cost/cost.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <numeric>
#include <sstream>
#include <system_error>
#include <variant>

#include "models/cost/csv.hpp"
#include "models/hw/units.hpp"

extern char** environ;

namespace accsim::cost {

CostError::CostError(std::string input, const std::string& problem)
    : std::runtime_error(input + ": " + problem), input_(std::move(input)) {}

std::string UnitRef::describe() const {
  std::string s = unit;
  for (const std::string* f : {&operand, &product, &accumulator}) {
    if (!f->empty()) s += " " + *f;
  }
  return s;
}

EnergyBreakdown& EnergyBreakdown::operator+=(const EnergyBreakdown& o) {
  datapath += o.datapath;
  registers += o.registers;
  clock += o.clock;
  leakage += o.leakage;
  input_sram += o.input_sram;
  weight_sram += o.weight_sram;
  output_sram += o.output_sram;
  dram += o.dram;
  return *this;
}

EnergyBreakdown& EnergyBreakdown::operator*=(double f) {
  for (double* x : {&datapath, &registers, &clock, &leakage, &input_sram, &weight_sram, &output_sram, &dram}) *x *= f;
  return *this;
}

namespace {

constexpr double kNwNsToPj = 1e-6;  // nW x ns = 1e-18 J

std::string canon(const num::Format& f) { return num::to_string(f); }

bool is_int(const num::Format& f) { return std::holds_alternative<num::IntFormat>(f); }

// A format string from a table row, canonical (the table is written from
// canonical strings; this keeps lookups independent of spelling).
std::string canon_text(const std::string& s) {
  if (s.empty() || s == "exact") return s;
  return canon(num::parse_format(s));
}

UnitRef row_key(const CsvTable& t, const CsvTable::Row& r) {
  return {t.text(r, "unit"), canon_text(t.text(r, "operand")), canon_text(t.text(r, "product")),
          canon_text(t.text(r, "accumulator"))};
}

bool same(const UnitRef& a, const UnitRef& b) {
  return a.unit == b.unit && a.operand == b.operand && a.product == b.product && a.accumulator == b.accumulator;
}

// The units a PE is built from (rtl_ref/synth/synth.py names them).
struct PeUnits {
  UnitRef multiplier, adder, pe;
  int register_bits = 0;
};

// What rtl_ref implements (and its harness verifies): no fraction-less
// formats, no `fn` specials with one exponent bit (docs/rtl.md).
void check_rtl_supports(const num::Format& f) {
  const auto* ff = std::get_if<num::FloatFormat>(&f);
  if (ff == nullptr) return;
  if (ff->man_bits == 0) {
    throw CostError(canon(f), "rtl_ref's units need at least one mantissa bit (docs/rtl.md); no area or energy");
  }
  if (ff->specials == num::Specials::fn && ff->exp_bits == 1) {
    throw CostError(canon(f), "rtl_ref has no 'fn' format with one exponent bit (docs/rtl.md); no area or energy");
  }
}

PeUnits pe_units(const PeFormats& f) {
  const num::Format& a = f.multiplier;
  const num::Format& acc = f.accumulator;
  check_rtl_supports(a);
  check_rtl_supports(acc);
  if (f.product) check_rtl_supports(*f.product);
  if (is_int(a) != is_int(acc) || (f.product && is_int(*f.product) != is_int(a))) {
    throw CostError(canon(a) + " x " + canon(acc),
                    "rtl_ref has integer PEs (integer operands, product and accumulator) and floating-point "
                    "ones, not a mix");
  }
  PeUnits u;
  if (is_int(a)) {
    // An integer product is exact in twice the operand width unless a
    // narrower (saturating) product format is asked for.
    const num::Format product = f.product ? *f.product : num::parse_format("int" + std::to_string(2 * num::width(a)));
    u.multiplier = {"int_mul", canon(a), canon(product), ""};
    u.adder = {"int_acc", "", canon(product), canon(acc)};
    u.pe = {"int_pe", canon(a), "", canon(acc)};
    if (f.product && num::width(product) != 2 * num::width(a)) u.pe.unit.clear();  // int_pe has the exact product
    u.register_bits = 2 * num::width(a) + num::width(product) + num::width(acc);
    return u;
  }
  if (f.product) {
    u.multiplier = {"mul_round", canon(a), canon(*f.product), ""};
    // The table keeps an adder whose addend is in its own format with an empty addend column.
    const std::string addend = canon(*f.product) == canon(acc) ? "" : canon(*f.product);
    u.adder = {"acc", "", addend, canon(acc)};
    u.pe = {"pe", canon(a), canon(*f.product), canon(acc)};
  } else {
    u.multiplier = {"mul", canon(a), "", ""};
    u.adder = {"acc_fused", canon(a), "", canon(acc)};
    u.pe = {"pe", canon(a), "exact", canon(acc)};
  }
  u.register_bits = 2 * num::width(a) + hw::Multiplier(a, f.product, 1).register_width() + num::width(acc);
  return u;
}

// --- running the synthesis script -------------------------------------------------------

struct Process {
  int status = -1;
  std::string out, err;
};

std::string read_all(int fd) {
  std::string s;
  std::array<char, 4096> buf{};
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n > 0) {
      s.append(buf.data(), static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      return s;
    }
  }
}

// Runs argv (no shell: format strings are arguments, never parsed by one);
// stderr goes to a temporary file so neither pipe can fill up and block.
Process run_process(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int out_pipe[2];
  if (::pipe(out_pipe) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  char err_name[] = "/tmp/accsim-synth-XXXXXX";
  const int err_fd = ::mkstemp(err_name);
  if (err_fd < 0) throw std::system_error(errno, std::generic_category(), "mkstemp");
  ::unlink(err_name);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  posix_spawn_file_actions_addclose(&actions, out_pipe[0]);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  Process p;
  if (rc == 0) {
    p.out = read_all(out_pipe[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    p.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    ::lseek(err_fd, 0, SEEK_SET);
    p.err = read_all(err_fd);
  } else {
    p.err = std::string("cannot run ") + args[0] + ": " + std::strerror(rc);
  }
  ::close(out_pipe[0]);
  ::close(err_fd);
  return p;
}

std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string cand = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (::access(cand.c_str(), X_OK) == 0) return cand;
  }
  return {};
}

// The formats synth.py's `unit` command takes for a row key, in its order.
std::vector<std::string> synth_arguments(const UnitRef& k) {
  if (k.unit == "acc") return k.product.empty() ? std::vector{k.accumulator} : std::vector{k.accumulator, k.product};
  if (k.unit == "acc_fused") return {k.operand, k.accumulator};
  if (k.unit == "mul") return {k.operand};
  if (k.unit == "int_acc") return {k.accumulator, k.product};
  return {k.operand, k.product};  // mul_round, int_mul
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

double poly_energy(const CsvTable& t, const CsvTable::Row& r, double v) {
  return t.number(r, "energy_c2") * v * v + t.number(r, "energy_c1") * v + t.number(r, "energy_c0");
}

}  // namespace

std::filesystem::path CostModel::default_data_dir() {
  if (const char* env = std::getenv("ACCSIM_DATA_DIR"); env != nullptr && *env != '\0') return env;
  return ACCSIM_SOURCE_DIR;
}

std::filesystem::path CostModel::default_cache_file() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::filesystem::path(xdg) / "accsim" / "units.csv";
  }
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home != nullptr && *home != '\0' ? home : "/tmp") / ".cache" / "accsim" / "units.csv";
}

CostModel::CostModel(const Options& options) : options_(options) {
  const std::filesystem::path dir = options.data_dir;
  // Nodes.
  const CsvTable tech = CsvTable::read(dir / "models/cost/data/technology.csv");
  double e180 = 0;
  for (const auto& r : tech.rows()) {
    Node n;
    n.nm = static_cast<int>(tech.number(r, "node_nm"));
    n.vdd = tech.number(r, "vdd_v");
    n.area_scale = tech.number(r, "area_vs_180nm");
    n.energy_scale = poly_energy(tech, r, n.vdd);
    if (n.nm == 180) e180 = n.energy_scale;
    nodes_.push_back(n);
  }
  if (!(e180 > 0)) throw CostError(tech.name(), "no 180 nm row with a positive energy factor");
  for (Node& n : nodes_) n.energy_scale /= e180;

  // Memories.
  const CsvTable mem = CsvTable::read(dir / "models/cost/data/memory.csv");
  for (const auto& r : mem.rows()) {
    const std::string& q = mem.text(r, "quantity");
    if (q == "sram_access") {
      sram_pj_per_64b_.emplace_back(mem.number(r, "capacity_bytes"), mem.number(r, "value"));
      sram_node_nm_ = static_cast<int>(mem.number(r, "node_nm"));
    } else if (q == "dram_access") {
      dram_pj_per_64b_ = mem.number(r, "value");
    } else if (q == "sram_bit_cell") {
      sram_cell_um2_ = mem.number(r, "value");
      sram_cell_node_nm_ = static_cast<int>(mem.number(r, "node_nm"));
    } else if (q == "sram_array_efficiency") {
      sram_efficiency_ = mem.number(r, "value");
    }
  }
  std::sort(sram_pj_per_64b_.begin(), sram_pj_per_64b_.end());
  if (sram_pj_per_64b_.size() < 2 || dram_pj_per_64b_ <= 0 || sram_cell_um2_ <= 0 || sram_efficiency_ <= 0) {
    throw CostError(mem.name(), "needs at least two sram_access rows, dram_access, sram_bit_cell and "
                                "sram_array_efficiency");
  }

  // Areas: the committed table, then units synthesized on demand earlier.
  auto add_areas = [this](const CsvTable& t) {
    for (const auto& r : t.rows()) {
      areas_.push_back({row_key(t, r), t.number(r, "cells"), t.number(r, "flops"), t.number(r, "area_um2"),
                        t.number(r, "flop_area_um2")});
    }
  };
  add_areas(CsvTable::read(dir / "rtl_ref/area/units.csv"));
  if (std::filesystem::exists(options.cache_file)) {
    try {
      add_areas(CsvTable::parse(slurp(options.cache_file), options.cache_file.string()));
    } catch (const std::exception&) {
      // A damaged cache is only lost work: the units are synthesized again.
    }
  }
  double flop_area = 0, flops = 0;
  for (const AreaRow& a : areas_) {
    flop_area += a.flop_area;
    flops += a.flops;
  }
  if (!(flops > 0)) throw CostError((dir / "rtl_ref/area/units.csv").string(), "no synthesized PE with flip-flops");
  flop_area_per_bit_ = flop_area / flops;

  // Gate-level energies.
  const CsvTable en = CsvTable::read(dir / "rtl_ref/area/energy.csv");
  for (const auto& r : en.rows()) {
    EnergyRow e;
    e.name = en.text(r, "name");
    e.key = row_key(en, r);
    e.area = en.number(r, "area_um2");
    e.flops = en.number(r, "flops");
    e.comb_pj = en.number(r, "comb_pj_per_mac");
    e.flop_pj = en.number(r, "flop_pj_per_mac");
    e.clock_pj_per_flop_cycle = en.number(r, "clock_pj_per_flop_cycle");
    e.leakage_nw = en.number(r, "leakage_nw");
    e.period_ns = en.number(r, "period_ns");
    e.reg_toggles = en.number(r, "reg_toggles_per_mac");
    if (!(e.reg_toggles > 0) || !(e.flops > 0)) throw CostError(en.name(), e.name + ": no register activity");
    energies_.push_back(std::move(e));
  }
}

Node CostModel::node(int nm) const {
  for (const Node& n : nodes_) {
    if (n.nm == nm) return n;
  }
  std::string have;
  for (const Node& n : nodes_) have += (have.empty() ? "" : ", ") + std::to_string(n.nm);
  throw CostError("--node", std::to_string(nm) + " nm is not characterized; nodes: " + have);
}

std::string CostModel::nearest_rows(const UnitRef& key) const {
  // Distance between two rows of the same unit: exponent and mantissa bits
  // of the format that differs, then any other difference in the strings.
  auto fp = [](const std::string& s) -> std::optional<num::FloatFormat> {
    if (s.empty() || s == "exact") return std::nullopt;
    const num::Format f = num::parse_format(s);
    if (const auto* ff = std::get_if<num::FloatFormat>(&f)) return *ff;
    return std::nullopt;
  };
  auto distance = [&](const std::string& x, const std::string& y) {
    if (x == y) return 0.0;
    const auto fx = fp(x), fy = fp(y);
    if (!fx || !fy) return 100.0;
    return 2.0 * std::abs(fx->exp_bits - fy->exp_bits) + std::abs(fx->man_bits - fy->man_bits) + 0.5;
  };
  std::vector<std::pair<double, std::string>> cands;
  for (const AreaRow& a : areas_) {
    if (a.key.unit != key.unit) continue;
    const double d = distance(a.key.operand, key.operand) + distance(a.key.product, key.product) +
                     distance(a.key.accumulator, key.accumulator);
    cands.emplace_back(d, a.key.describe());
  }
  std::sort(cands.begin(), cands.end());
  std::string s;
  for (std::size_t i = 0; i < std::min<std::size_t>(3, cands.size()); ++i) s += (i ? "; " : "") + cands[i].second;
  return s.empty() ? "none of this unit" : s;
}

const CostModel::AreaRow& CostModel::unit_row(const UnitRef& key, bool* synthesized) const {
  for (const AreaRow& a : areas_) {
    if (same(a.key, key)) return a;
  }
  // A unit whose synthesis failed once fails again: say so without rerunning it.
  const std::string described = key.describe();
  for (const auto& [unit, why] : failed_synthesis_) {
    if (unit == described) throw CostError(described, why);
  }
  const std::string table = (options_.data_dir / "rtl_ref/area/units.csv").string();
  const std::string yosys = find_in_path("yosys");
  if (!options_.synthesize || yosys.empty()) {
    throw CostError(key.describe(), "not in " + table + " and " +
                                        (options_.synthesize ? "yosys is not installed to synthesize it"
                                                             : "synthesis on demand is off") +
                                        "; nearest synthesized: " + nearest_rows(key));
  }
  std::vector<std::string> args = {"/usr/bin/python3",
                                   (options_.data_dir / "rtl_ref/synth/synth.py").string(),
                                   "--yosys", yosys};
  if (std::filesystem::exists(ACCSIM_FORMAT_PARAMS)) {
    args.insert(args.end(), {"--params-tool", ACCSIM_FORMAT_PARAMS});
  }
  args.insert(args.end(), {"unit", key.unit});
  for (std::string& f : synth_arguments(key)) args.push_back(std::move(f));
  args.emplace_back("--row");
  const Process p = run_process(args);
  if (p.status != 0) {
    std::string why = p.err.empty() ? "exit status " + std::to_string(p.status) : p.err;
    std::replace(why.begin(), why.end(), '\n', ' ');
    failed_synthesis_.emplace_back(described, "synthesis on demand failed: " + why);
    throw CostError(described, failed_synthesis_.back().second);
  }
  const CsvTable row = CsvTable::parse(p.out, "synth.py output");
  if (row.rows().size() != 1 || !same(row_key(row, row.rows()[0]), key)) {
    throw CostError(key.describe(), "synthesis on demand returned another unit than asked for");
  }
  const auto& r = row.rows()[0];
  areas_.push_back({key, row.number(r, "cells"), row.number(r, "flops"), row.number(r, "area_um2"),
                    row.number(r, "flop_area_um2")});
  // Keep it for next time: header once, then rows; a failure to cache only
  // costs a synthesis later.
  std::error_code ec;
  std::filesystem::create_directories(options_.cache_file.parent_path(), ec);
  const bool fresh = !std::filesystem::exists(options_.cache_file);
  std::ofstream cache(options_.cache_file, std::ios::app | std::ios::binary);
  if (cache) {
    const std::size_t header_end = p.out.find('\n') + 1;
    if (fresh) cache << "# Units synthesized on demand by accsim (rtl_ref/synth/synth.py unit ... --row)\n" << p.out;
    else cache << p.out.substr(header_end);
  }
  if (synthesized != nullptr) *synthesized = true;
  return areas_.back();
}

PeArea CostModel::pe_area(const PeFormats& f, const Node& node) const {
  const PeUnits u = pe_units(f);
  PeArea a;
  a.multiplier_unit = u.multiplier;
  a.adder_unit = u.adder;
  a.multiplier = unit_row(u.multiplier, &a.synthesized_on_demand).area * node.area_scale;
  a.adder = unit_row(u.adder, &a.synthesized_on_demand).area * node.area_scale;
  a.register_bits = u.register_bits;
  a.registers = u.register_bits * flop_area_per_bit_ * node.area_scale;
  if (!u.pe.unit.empty()) {
    for (const AreaRow& r : areas_) {
      if (same(r.key, u.pe)) a.synthesized = r.area * node.area_scale;
    }
  }
  return a;
}

PeEnergy CostModel::pe_energy(const PeFormats& f, const Node& node) const {
  const PeUnits u = pe_units(f);
  PeEnergy e;
  for (const EnergyRow& r : energies_) {
    if (!same(r.key, u.pe)) continue;
    e.comb_per_toggle = r.comb_pj / r.reg_toggles;
    e.reg_per_toggle = r.flop_pj / r.reg_toggles;
    e.clock_per_flop_cycle = r.clock_pj_per_flop_cycle;
    e.leakage_per_cycle = r.leakage_nw * r.period_ns * kNwNsToPj;
    e.flops = static_cast<int>(r.flops);
    e.reg_toggles_per_mac = r.reg_toggles;
    e.characterized = true;
    e.source = "gate-level simulation of the synthesized PE (rtl_ref/area/energy.csv: " + r.name + ")";
    break;
  }
  if (!e.characterized) {
    // Not simulated at gate level. At the characterization stream's
    // activity, datapath energy per MAC is close to proportional to logic
    // area (the simulated PEs spend 1.5 to 2.5 fJ per um^2): the PEs of the
    // same kind that were simulated give that density, per toggle energies of
    // flip-flops and clock, the fraction of register bits that flip per MAC
    // and leakage per um^2, and this PE's composed area scales them. Logic
    // area is composed from units on both sides, so the two agree in kind.
    const bool int_pe = u.multiplier.unit == "int_mul";
    double comb = 0, logic = 0, flop_pj = 0, toggles = 0, flops = 0, clock = 0, leak = 0, area = 0;
    std::string names;
    int n = 0;
    for (const EnergyRow& r : energies_) {
      if ((r.key.unit == "int_pe") != int_pe) continue;
      PeFormats rf{num::parse_format(r.key.operand), std::nullopt, num::parse_format(r.key.accumulator)};
      if (!r.key.product.empty() && r.key.product != "exact") rf.product = num::parse_format(r.key.product);
      const PeArea ra = pe_area(rf, Node{});
      comb += r.comb_pj;
      logic += ra.multiplier + ra.adder;
      flop_pj += r.flop_pj;
      toggles += r.reg_toggles;
      flops += r.flops;
      clock += r.clock_pj_per_flop_cycle;
      leak += r.leakage_nw * r.period_ns * kNwNsToPj;
      area += r.area;
      names += (n++ ? ", " : "") + r.name;
    }
    if (n == 0) throw CostError(u.pe.describe(), "no characterized PE of this kind in rtl_ref/area/energy.csv");
    const PeArea a = pe_area(f, Node{});
    e.flops = a.register_bits;
    e.reg_toggles_per_mac = toggles / flops * a.register_bits;
    e.comb_per_toggle = comb / logic * (a.multiplier + a.adder) / e.reg_toggles_per_mac;
    e.reg_per_toggle = flop_pj / toggles;
    e.clock_per_flop_cycle = clock / n;
    e.leakage_per_cycle = leak / area * a.total();
    e.source = "estimated from synthesized area and the gate-level energies of " + names;
  }
  e.comb_per_toggle *= node.energy_scale;
  e.reg_per_toggle *= node.energy_scale;
  e.clock_per_flop_cycle *= node.energy_scale;
  e.leakage_per_cycle *= node.energy_scale;
  return e;
}

double CostModel::sram_area(std::uint64_t bytes, const Node& node) const {
  const double cell_180 = sram_cell_um2_ / this->node(sram_cell_node_nm_).area_scale;
  return static_cast<double>(bytes) * 8 * cell_180 * node.area_scale / sram_efficiency_;
}

double CostModel::sram_pj_per_bit(std::uint64_t bytes, const Node& node) const {
  // Log-linear in capacity between the listed sizes, the end segments extended.
  const double x = std::log(std::max<double>(1, static_cast<double>(bytes)));
  std::size_t i = 1;
  while (i + 1 < sram_pj_per_64b_.size() && x > std::log(sram_pj_per_64b_[i].first)) ++i;
  const auto [c0, e0] = sram_pj_per_64b_[i - 1];
  const auto [c1, e1] = sram_pj_per_64b_[i];
  const double t = (x - std::log(c0)) / (std::log(c1) - std::log(c0));
  const double pj_64b = std::max(0.0, e0 + t * (e1 - e0));
  return pj_64b / 64 * node.energy_scale / this->node(sram_node_nm_).energy_scale;
}

EnergyBreakdown CostModel::energy(const PeFormats& f, const hw::CycleStats& run, const Node& node) const {
  const PeEnergy pe = pe_energy(f, node);
  EnergyBreakdown e;
  const auto toggles = static_cast<double>(run.toggles.total());
  e.datapath = pe.comb_per_toggle * toggles;
  e.registers = pe.reg_per_toggle * toggles;
  // Clock gating: a PE's flip-flops are clocked in the cycles it computes.
  e.clock = pe.clock_per_flop_cycle * pe.flops * static_cast<double>(run.useful_macs);
  e.leakage = pe.leakage_per_cycle * static_cast<double>(run.pe_cycles());
  auto sram = [&](const hw::BufferStats& b) {
    const auto bytes = static_cast<std::uint64_t>(b.bytes(b.capacity_words));
    return static_cast<double>(b.sram_reads() + b.sram_writes()) * b.word_bits * sram_pj_per_bit(bytes, node);
  };
  e.input_sram = sram(run.input);
  e.weight_sram = sram(run.weight);
  e.output_sram = sram(run.output);
  e.dram = (run.dram_read_bytes() + run.dram_write_bytes()) * 8 * dram_pj_per_bit();
  return e;
}

}  // namespace accsim::cost
