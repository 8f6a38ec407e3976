// `accsim cost` and the energy block of `accsim gemm --engine cycle`, end to
// end: numbers that add up, the node scaling, and one-line refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_util.hpp"

namespace accsim::sim {
namespace {

using testing::npy_f64;
using testing::read_bytes;
using testing::run_accsim;
using testing::TempDir;
using testing::write_bytes;

const char* const kPaperProd = "M7E4,bias=12,round=rtz,ftz";
const char* const kPaperAcc = "M7E4,bias=10,round=rtz,ftz";

nlohmann::json cost_report(const TempDir& dir, std::vector<std::string> args) {
  args.insert(args.begin(), "cost");
  args.insert(args.end(), {"--report", "cost.json", "--no-synth"});
  const auto r = run_accsim(args, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(read_bytes(dir / "cost.json"));
}

TEST(CostCli, PartsAddUpAndNodesScale) {
  TempDir dir;
  const auto at180 = cost_report(dir, {"--mul", "e4m3", "--prod", kPaperProd, "--acc", kPaperAcc, "--node", "180"});
  const auto at45 = cost_report(dir, {"--mul", "e4m3", "--prod", kPaperProd, "--acc", kPaperAcc, "--node", "45",
                                      "--array", "8x4"});
  for (const auto* r : {&at180, &at45}) {
    const auto& pe = (*r)["pe_area_um2"];
    EXPECT_NEAR(pe["total"].get<double>(),
                pe["multiplier"]["um2"].get<double>() + pe["adder"]["um2"].get<double>() +
                    pe["registers"]["um2"].get<double>(),
                1e-6);
    const auto& e = (*r)["pe_energy_per_mac_pj"];
    EXPECT_NEAR(e["total"].get<double>(), e["datapath"].get<double>() + e["registers"].get<double>() +
                                              e["clock"].get<double>() + e["leakage"].get<double>(),
                1e-9);
    EXPECT_TRUE(e["characterized"].get<bool>());
  }
  EXPECT_EQ(at45["array_area_um2"]["pes"].get<double>(), 32 * at45["pe_area_um2"]["total"].get<double>());
  // Stillmaker and Baas: 180 -> 45 nm area x 0.053; energy at 0.9 V over 1.8 V.
  EXPECT_NEAR(at45["pe_area_um2"]["total"].get<double>() / at180["pe_area_um2"]["total"].get<double>(), 0.053, 1e-12);
  const double e180 = 24.64 * 1.8 - 17.98, e45 = 1.018 * 0.81 - 0.3107 * 0.9 + 0.1539;
  EXPECT_NEAR(at45["pe_energy_per_mac_pj"]["total"].get<double>() /
                  at180["pe_energy_per_mac_pj"]["total"].get<double>(),
              e45 / e180, 1e-9);
  // The 180 nm PE energy is the gate-level figure of rtl_ref/area/energy.csv's
  // `paper` row (70.089 pJ), up to the run's 5 fill and drain cycles.
  EXPECT_NEAR(at180["pe_energy_per_mac_pj"]["total"].get<double>(), 70.089, 0.1);
}

TEST(CostCli, BadInputIsOneLineAndExitCode2) {
  TempDir dir;
  struct Case {
    std::vector<std::string> args;
    std::string names;
  };
  const std::vector<Case> cases = {
      {{"cost", "--mul", "M60E4", "--acc", "fp32"}, "--mul: M60E4"},
      {{"cost", "--mul", "e4m3", "--acc", "fp32", "--node", "28"}, "--node: 28 nm"},
      {{"cost", "--mul", "e4m3", "--acc", "fp32", "--array", "0x4"}, "--array"},
      {{"cost", "--mul", "e4m3", "--acc", "fp32", "--ibuf", "lots"}, "--ibuf"},
      {{"cost", "--mul", "int8", "--acc", "fp32"}, "int8 x fp32"},
      {{"cost", "--mul", "M0E4", "--acc", "fp32"}, "M0E4: rtl_ref's units need at least one mantissa bit"},
      {{"cost", "--mul", "e4m3", "--acc", "M9E5", "--no-synth"}, "nearest synthesized: acc_fused e4m3 M10E5"},
      {{"cost", "--mul", "e4m3", "--acc", "fp32", "--report", "no/such/dir/r.json"}, "r.json"},
  };
  for (const Case& c : cases) {
    const auto r = run_accsim(c.args, dir.path());
    EXPECT_EQ(r.exit_code, 2) << c.args[2];
    EXPECT_NE(r.err.find(c.names), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;  // one line
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

TEST(CostCli, CycleGemmReportsEnergyThatAddsUp) {
  TempDir dir;
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal(0, 1);
  std::vector<double> a(9 * 40), b(40 * 7);
  for (double& x : a) x = normal(rng);
  for (double& x : b) x = normal(rng);
  write_bytes(dir / "A.npy", npy_f64(9, 40, a));
  write_bytes(dir / "B.npy", npy_f64(40, 7, b));
  const auto r = run_accsim({"gemm", "--a", "A.npy", "--b", "B.npy", "--mul", "e4m3", "--acc", "fp16", "--scale",
                             "pow2", "--engine", "cycle", "--array", "4x4", "--report", "g.json"},
                            dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("energy"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(read_bytes(dir / "g.json"));
  const auto& e = j["energy"];
  ASSERT_TRUE(e.contains("total_pj")) << e.dump();
  EXPECT_EQ(e["node_nm"], 45);
  double parts = e["dram_pj"].get<double>();
  for (const auto& [k, v] : e["pe_pj"].items()) parts += v.get<double>();
  for (const auto& [k, v] : e["sram_pj"].items()) parts += v.get<double>();
  EXPECT_NEAR(e["total_pj"].get<double>(), parts, 1e-5);
  EXPECT_NEAR(e["pj_per_mac"].get<double>(), e["total_pj"].get<double>() / (9 * 40 * 7), 1e-6);
  EXPECT_GT(e["pe_pj"]["datapath"].get<double>(), 0);
  EXPECT_GT(e["dram_pj"].get<double>(), 0);
}

// The main job on a fresh machine: no cache of units synthesized earlier, an
// empty home. Its configuration (whatever `accsim run`'s defaults are) must
// be costed from the shipped tables alone: `accsim cost --no-synth` accepts
// it, `accsim run` reports energy, and nothing is written into the home.
TEST(CostCli, MainJobHasEnergyFromTheShippedTables) {
  TempDir work, home;
  const std::vector<std::string> fresh = {"HOME=" + home.path().string(),
                                          "XDG_CACHE_HOME=" + (home / "cache").string(), "ACCSIM_DATA_DIR="};
  const auto run = run_accsim({"run", "--samples", "8", "--report", "r.json"}, work.path(), fresh);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto report = nlohmann::json::parse(read_bytes(work / "r.json"));
  const auto& per_inference = report["energy"]["per_inference"];
  EXPECT_FALSE(per_inference.contains("unavailable")) << per_inference.dump();
  ASSERT_TRUE(per_inference.contains("total_pj")) << per_inference.dump();
  EXPECT_GT(per_inference["total_pj"].get<double>(), 0);
  EXPECT_NE(run.out.find("uJ per inference"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("unavailable"), std::string::npos) << run.out;

  const auto& lowbit = report["config"]["lowbit"];
  const auto cost = run_accsim({"cost", "--no-synth", "--mul", lowbit["multiplier"].get<std::string>(), "--prod",
                                lowbit["product"].get<std::string>(), "--acc", lowbit["accumulator"].get<std::string>(),
                                "--report", "c.json"},
                               work.path(), fresh);
  ASSERT_EQ(cost.exit_code, 0) << cost.err;
  const auto c = nlohmann::json::parse(read_bytes(work / "c.json"));
  EXPECT_FALSE(c["pe_area_um2"]["synthesized_on_demand"].get<bool>());
  EXPECT_GT(c["pe_energy_per_mac_pj"]["total"].get<double>(), 0);
  EXPECT_TRUE(home.listing().empty()) << "accsim wrote into the home directory: " << *home.listing().begin();
}

// The configurations the documentation runs (docs/run.md's equivalence, bias
// table and per-layer example; docs/zero_shot.md's rows; the README's and
// docs/cost.md's paper PE) are all in the shipped tables.
TEST(CostCli, DocumentedConfigurationsNeedNoSynthesis) {
  TempDir work;
  const std::string rtz = ",round=rtz,ftz";
  std::vector<std::vector<std::string>> configs = {
      {"M4E3,bias=6", "M7E4,bias=12" + rtz, "M7E4,bias=10" + rtz},
      {"e3m4", "M7E4,bias=6" + rtz, "M8E4,bias=4" + rtz},
      {"e4m3", kPaperProd, kPaperAcc},
      {"e3m4", "exact", "M21E5"},
  };
  for (int b = 4; b <= 8; ++b) {
    configs.push_back({"e3m4", "M7E4,bias=" + std::to_string(b) + rtz, "M7E4,bias=" + std::to_string(b - 2) + rtz});
  }
  for (int m = 6; m <= 10; ++m) {
    const std::string f = "M" + std::to_string(m) + "E5,bias=15" + rtz;
    configs.push_back({"e3m4", f, f});
  }
  for (int m = 1; m <= 7; ++m) {
    const std::string f = "M" + std::to_string(m) + "E4";
    configs.push_back({"e3m4", f + ",bias=6" + rtz, f + ",bias=4" + rtz});
  }
  for (const auto& c : configs) {
    std::vector<std::string> args = {"cost", "--no-synth", "--mul", c[0], "--acc", c[2]};
    if (c[1] != "exact") args.insert(args.end(), {"--prod", c[1]});
    const auto r = run_accsim(args, work.path());
    EXPECT_EQ(r.exit_code, 0) << c[0] << " " << c[1] << " " << c[2] << ": " << r.err;
  }
}

}  // namespace
}  // namespace accsim::sim
