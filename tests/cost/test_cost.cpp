// models/cost against what it is built from: the committed synthesis and
// gate-level tables (read here independently, column by column), the
// published node and memory figures, and the cycle model's activity.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "models/cost/cost.hpp"
#include "models/cost/csv.hpp"
#include "models/hw/cycle_gemm.hpp"
#include "models/reference/gemm.hpp"

namespace accsim::cost {
namespace {

namespace fs = std::filesystem;

const std::string kPaperAcc = "M7E4,bias=10,round=rtz,ftz";
const std::string kPaperProd = "M7E4,bias=12,round=rtz,ftz";

PeFormats formats(const std::string& mul, const std::string& prod, const std::string& acc) {
  PeFormats f{num::parse_format(mul), std::nullopt, num::parse_format(acc)};
  if (!prod.empty()) f.product = num::parse_format(prod);
  return f;
}

CostModel::Options offline() {
  CostModel::Options o;
  o.synthesize = false;
  return o;
}

// A copy of the data files in a temporary folder, to edit.
struct DataCopy {
  fs::path root;
  explicit DataCopy(const std::string& tag) {
    root = fs::temp_directory_path() / ("accsim-cost-" + tag + "-" + std::to_string(::getpid()));
    fs::remove_all(root);
    for (const char* dir : {"rtl_ref/area", "models/cost/data"}) {
      fs::create_directories(root / dir);
      fs::copy(CostModel::default_data_dir() / dir, root / dir, fs::copy_options::recursive);
    }
  }
  ~DataCopy() { fs::remove_all(root); }
  // Drops the lines of `file` that contain `needle`.
  void drop_lines(const std::string& file, const std::string& needle) const {
    std::ifstream in(root / file);
    std::stringstream kept;
    for (std::string line; std::getline(in, line);) {
      if (line.find(needle) == std::string::npos) kept << line << '\n';
    }
    std::ofstream(root / file) << kept.str();
  }
};

TEST(Csv, QuotesCommentsAndErrors) {
  const CsvTable t = CsvTable::parse("# comment\na,b,c\n1,\"x,y\",\"say \"\"hi\"\"\"\n", "t.csv");
  ASSERT_EQ(t.rows().size(), 1u);
  EXPECT_EQ(t.text(t.rows()[0], "b"), "x,y");
  EXPECT_EQ(t.text(t.rows()[0], "c"), "say \"hi\"");
  EXPECT_EQ(t.number(t.rows()[0], "a"), 1.0);
  EXPECT_THROW((void)t.number(t.rows()[0], "b"), CostError);
  EXPECT_THROW((void)CsvTable::parse("a,b\n1\n", "short.csv"), CostError);
  EXPECT_THROW((void)CsvTable::parse("a,b\n\"1,2\n", "quote.csv"), CostError);
  EXPECT_THROW((void)CsvTable::read("/nonexistent/units.csv"), CostError);
}

// The factors are Stillmaker and Baas's polynomials evaluated at each node's
// supply, relative to 180 nm at 1.8 V; the expected values are computed here
// from the published coefficients, not read back from the model.
TEST(Nodes, StillmakerBaasFactors) {
  const CostModel m(offline());
  const double e180 = 24.64 * 1.8 - 17.98;
  const Node n45 = m.node(45), n7 = m.node(7), n180 = m.node(180);
  EXPECT_DOUBLE_EQ(n180.area_scale, 1.0);
  EXPECT_DOUBLE_EQ(n180.energy_scale, 1.0);
  EXPECT_DOUBLE_EQ(n45.area_scale, 0.053);
  EXPECT_NEAR(n45.energy_scale, (1.018 * 0.81 - 0.3107 * 0.9 + 0.1539) / e180, 1e-12);
  EXPECT_NEAR(n7.energy_scale, (0.1776 * 0.49 - 0.09097 * 0.7 + 0.02447) / e180, 1e-12);
  try {
    (void)m.node(28);
    FAIL() << "28 nm accepted";
  } catch (const CostError& e) {
    EXPECT_EQ(e.input(), "--node");
    EXPECT_NE(std::string(e.what()).find("180, 45, 7"), std::string::npos) << e.what();
  }
}

// The PE composed from separately synthesized units is close to the same PE
// synthesized as one module, for every whole PE the table holds.
TEST(Area, ComposedPeMatchesWholePeSynthesis) {
  const CostModel m(offline());
  const Node n = m.node(180);
  const std::vector<PeFormats> pes = {
      formats("e4m3", kPaperProd, kPaperAcc), formats("e4m3", "", kPaperAcc), formats("e4m3", "", "fp32"),
      formats("e4m3", "", "fp16"),            formats("e4m3", "", "bf16"),    formats("e4m3", "", "M10E5"),
      formats("bf16", "", "fp32"),            formats("fp16", "", "fp32"),    formats("int8", "", "int32")};
  for (const PeFormats& f : pes) {
    const PeArea a = m.pe_area(f, n);
    SCOPED_TRACE(a.adder_unit.describe());
    ASSERT_TRUE(a.synthesized.has_value());
    EXPECT_GT(a.multiplier, 0);
    EXPECT_GT(a.adder, 0);
    EXPECT_GT(a.registers, 0);
    // Within 20%: the whole PE also holds the valid/clear pipeline and
    // abc maps it as one netlist.
    EXPECT_NEAR(a.total() / *a.synthesized, 1.0, 0.2);
    EXPECT_FALSE(a.synthesized_on_demand);
  }
}

TEST(Area, PaperPeUsesThePapersUnitsAndScales) {
  const CostModel m(offline());
  const PeArea a180 = m.pe_area(formats("e4m3", kPaperProd, kPaperAcc), m.node(180));
  EXPECT_EQ(a180.multiplier_unit.unit, "mul_round");
  EXPECT_EQ(a180.adder_unit.unit, "acc");
  EXPECT_EQ(a180.adder_unit.product, kPaperProd);  // the adder adds M7E4 products with bias 12
  // Registers: a, b (8 bits each), the 12-bit product and the 12-bit sum.
  EXPECT_EQ(a180.register_bits, 8 + 8 + 12 + 12);
  const PeArea a7 = m.pe_area(formats("e4m3", kPaperProd, kPaperAcc), m.node(7));
  EXPECT_NEAR(a7.total(), a180.total() * 0.0032, 1e-9 * a180.total());
}

TEST(Area, MissingUnitIsRefusedNamingTheNearestRows) {
  const CostModel m(offline());
  try {
    (void)m.pe_area(formats("e4m3", "", "M9E5"), m.node(180));
    FAIL() << "an unsynthesized fused adder was accepted";
  } catch (const CostError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("acc_fused e4m3 M9E5"), std::string::npos) << what;
    EXPECT_NE(what.find("nearest synthesized: acc_fused e4m3 M10E5"), std::string::npos) << what;
  }
  EXPECT_THROW((void)m.pe_area(formats("int8", "", "fp32"), m.node(180)), CostError);
}

// With Yosys present, a unit outside the table is synthesized once and then
// read from the cache.
TEST(Area, SynthesizesOnDemandAndCaches) {
  if (std::system("command -v yosys >/dev/null 2>&1") != 0) GTEST_SKIP() << "yosys not installed";
  const fs::path cache = fs::temp_directory_path() / ("accsim-cost-cache-" + std::to_string(::getpid())) / "u.csv";
  fs::remove_all(cache.parent_path());
  CostModel::Options o;
  o.cache_file = cache;
  const PeFormats f = formats("M2E3", "M3E3", "M3E3");  // mul_round M2E3 -> M3E3: not in the table
  double first = 0;
  {
    const CostModel m(o);
    const PeArea a = m.pe_area(f, m.node(180));
    EXPECT_TRUE(a.synthesized_on_demand);
    EXPECT_EQ(a.multiplier_unit.describe(), "mul_round M2E3 M3E3");
    first = a.multiplier;
    EXPECT_GT(first, 0);
  }
  const CostModel again(o);
  const PeArea b = again.pe_area(f, again.node(180));
  EXPECT_FALSE(b.synthesized_on_demand);
  EXPECT_EQ(b.multiplier, first);
  fs::remove_all(cache.parent_path());
}

// Split into per-toggle constants and put back together at the
// characterization's own activity, a simulated PE gives the total the
// gate-level run measured (the pj_per_mac column, which the model never reads).
TEST(Energy, CharacterizedPesReproduceTheGateLevelTotal) {
  const CostModel m(offline());
  const CsvTable t = CsvTable::read(CostModel::default_data_dir() / "rtl_ref/area/energy.csv");
  ASSERT_GE(t.rows().size(), 9u);
  for (const auto& r : t.rows()) {
    const std::string unit = t.text(r, "unit"), product = t.text(r, "product");
    const PeFormats f = formats(t.text(r, "operand"), product == "exact" ? "" : product, t.text(r, "accumulator"));
    const PeEnergy e = m.pe_energy(f, m.node(180));
    SCOPED_TRACE(t.text(r, "name"));
    EXPECT_TRUE(e.characterized);
    // per_mac() clocks the registers once per MAC; the run had 5 more
    // cycles (fill and drain) than MACs: 0.35% of the clock energy.
    EXPECT_NEAR(e.per_mac() / t.number(r, "pj_per_mac"), 1.0, 0.002);
  }
}

// The estimate for a PE that was not simulated, checked by leaving a
// simulated one out: within 25% of its measured energy.
TEST(Energy, AreaBasedEstimateOfALeftOutPe) {
  const CostModel full(offline());
  for (const char* name : {"e4m3_fp16", "e4m3_m10e5", "paper", "e4m3_bf16"}) {
    SCOPED_TRACE(name);
    const DataCopy data(name);
    data.drop_lines("rtl_ref/area/energy.csv", std::string(name) + ",");
    CostModel::Options o = offline();
    o.data_dir = data.root;
    const CostModel loo(o);
    PeFormats f = formats("e4m3", "", "fp16");
    if (std::string(name) == "e4m3_m10e5") f = formats("e4m3", "", "M10E5");
    if (std::string(name) == "paper") f = formats("e4m3", kPaperProd, kPaperAcc);
    if (std::string(name) == "e4m3_bf16") f = formats("e4m3", "", "bf16");
    const PeEnergy measured = full.pe_energy(f, full.node(180));
    const PeEnergy estimated = loo.pe_energy(f, loo.node(180));
    ASSERT_TRUE(measured.characterized);
    ASSERT_FALSE(estimated.characterized);
    EXPECT_NEAR(estimated.per_mac() / measured.per_mac(), 1.0, 0.25);
  }
}

TEST(Memory, HorowitzPointsAndInterpolation) {
  const CostModel m(offline());
  const Node n45 = m.node(45);
  EXPECT_NEAR(m.sram_pj_per_bit(8192, n45), 10.0 / 64, 1e-12);
  EXPECT_NEAR(m.sram_pj_per_bit(32768, n45), 20.0 / 64, 1e-12);
  EXPECT_NEAR(m.sram_pj_per_bit(1 << 20, n45), 100.0 / 64, 1e-12);
  EXPECT_NEAR(m.sram_pj_per_bit(16384, n45), 15.0 / 64, 1e-12);  // halfway in log capacity
  EXPECT_LT(m.sram_pj_per_bit(4096, n45), m.sram_pj_per_bit(8192, n45));
  EXPECT_GT(m.sram_pj_per_bit(4 << 20, n45), m.sram_pj_per_bit(1 << 20, n45));
  EXPECT_NEAR(m.dram_pj_per_bit(), 1950.0 / 64, 1e-12);
  // Mistry et al.'s 0.346 um^2 cell at 45 nm, over the 0.7 array efficiency.
  EXPECT_NEAR(m.sram_area(1024, n45), 1024 * 8 * 0.346 / 0.7, 1e-6);
}

// Energy follows the data: the same GEMM with constant weights (stationary
// operands that never toggle) spends less in the datapath than with random
// ones, and nothing is spent without toggles.
TEST(Energy, FollowsTheCycleModelsActivity) {
  const CostModel m(offline());
  ref::GemmConfig cfg;
  cfg.multiplier = num::parse_format("e4m3");
  cfg.product = num::parse_format(kPaperProd);
  cfg.accumulator = num::parse_format(kPaperAcc);
  cfg.scaling = ref::Scaling::pow2;
  hw::ArrayConfig arr;
  arr.rows = arr.cols = 4;
  cfg.order = arr.order();
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(-1, 1);
  ref::Matrix a(12, 32), b_random(32, 8), b_const(32, 8);
  for (double& x : a.data) x = u(rng);
  for (double& x : b_random.data) x = u(rng);
  for (double& x : b_const.data) x = 0.5;
  auto run = [&](const ref::Matrix& b) {
    const auto qa = ref::quantize_operand(a, cfg.multiplier, cfg.scaling, ref::ScaleAxis::rows, 1);
    const auto qb = ref::quantize_operand(b, cfg.multiplier, cfg.scaling, ref::ScaleAxis::cols, 2);
    return hw::run_cycle_gemm(qa, qb, cfg, arr).stats;
  };
  const PeFormats f = formats("e4m3", kPaperProd, kPaperAcc);
  const Node n = m.node(45);
  const hw::CycleStats random_stats = run(b_random), const_stats = run(b_const);
  const EnergyBreakdown er = m.energy(f, random_stats, n), ec = m.energy(f, const_stats, n);
  EXPECT_LT(ec.datapath, er.datapath);
  EXPECT_GT(ec.datapath, 0);
  EXPECT_EQ(er.clock, ec.clock);  // same MACs, same clocked registers
  EXPECT_GT(er.input_sram + er.weight_sram + er.output_sram, 0);
  EXPECT_NEAR(er.total(), er.pe() + er.input_sram + er.weight_sram + er.output_sram + er.dram, 1e-9);
  hw::CycleStats idle = random_stats;
  idle.toggles = {};
  EXPECT_EQ(m.energy(f, idle, n).datapath, 0);
}

}  // namespace
}  // namespace accsim::cost
