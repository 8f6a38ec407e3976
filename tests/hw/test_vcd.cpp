// The VCD: parsed back, it declares the clock, the controller's signals and
// every PE register of the window, time only moves forward, the clock
// toggles every half period, and registers change in the cycles the timing
// says (the first activation reaches PE(0,0)'s register one cycle after the
// weight load).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <unistd.h>

#include "test_util.hpp"

namespace accsim::hw {
namespace {

struct Vcd {
  std::map<std::string, std::string> id_of;  // "accelerator.array.pe_0_0.a" -> id
  std::map<std::string, int> width_of;
  // id -> (time, value) in file order
  std::map<std::string, std::vector<std::pair<std::uint64_t, std::string>>> changes;
  std::vector<std::uint64_t> times;
  bool enddefinitions = false;
};

Vcd parse(const std::string& path) {
  Vcd v;
  std::ifstream in(path);
  std::vector<std::string> scope;
  std::string line;
  std::uint64_t now = 0;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string w;
    words >> w;
    if (w == "$scope") {
      std::string kind, name;
      words >> kind >> name;
      scope.push_back(name);
    } else if (w == "$upscope") {
      scope.pop_back();
    } else if (w == "$var") {
      std::string type, id, name;
      int width = 0;
      words >> type >> width >> id >> name;
      std::string full;
      for (const std::string& s : scope) full += s + ".";
      v.id_of[full + name] = id;
      v.width_of[full + name] = width;
    } else if (w == "$enddefinitions") {
      v.enddefinitions = true;
    } else if (!w.empty() && w[0] == '#') {
      now = std::stoull(w.substr(1));
      v.times.push_back(now);
    } else if (!w.empty() && w[0] == 'b') {
      std::string id;
      words >> id;
      v.changes[id].emplace_back(now, w.substr(1));
    } else if (!w.empty() && (w[0] == '0' || w[0] == '1') && w.size() > 1) {
      v.changes[w.substr(1)].emplace_back(now, w.substr(0, 1));
    }
  }
  return v;
}

std::string binary(std::uint64_t x) {
  std::string s;
  do {
    s.insert(s.begin(), static_cast<char>('0' + (x & 1)));
    x >>= 1;
  } while (x != 0);
  return s;
}

TEST(Vcd, DeclaresSignalsAndRecordsTheirChanges) {
  const std::string path = (std::filesystem::temp_directory_path() / ("accsim_test_" + std::to_string(::getpid()) + ".vcd")).string();
  const ref::GemmConfig cfg = test::gemm_config("e4m3", "M7E4,bias=10,round=rtz,ftz", "M7E4,bias=12,round=rtz,ftz");
  const std::size_t M = 6, K = 5, N = 7;
  const test::Operands ops = test::quantized(M, K, N, cfg, 12);
  ArrayConfig arr = test::array_config(4, 4, Dataflow::weight_stationary);
  arr.vcd_path = path;
  arr.vcd_window = parse_vcd_window("rows=0:2,cols=0:3");
  const CycleResult r = test::expect_bit_identical(ops, cfg, arr);
  const Vcd v = parse(path);
  std::filesystem::remove(path);

  ASSERT_TRUE(v.enddefinitions);
  for (const char* name : {"accelerator.clk", "accelerator.stall", "accelerator.phase", "accelerator.tile"}) {
    EXPECT_TRUE(v.id_of.count(name)) << name;
  }
  for (std::size_t row = 0; row < 2; ++row) {
    for (std::size_t col = 0; col < 3; ++col) {
      for (const char* reg : {"a", "w", "p", "s"}) {
        EXPECT_TRUE(v.id_of.count("accelerator.array.pe_" + std::to_string(row) + "_" + std::to_string(col) + "." + reg))
            << row << col << reg;
      }
    }
  }
  EXPECT_FALSE(v.id_of.count("accelerator.array.pe_2_0.a")) << "outside the window";
  EXPECT_EQ(v.width_of.at("accelerator.array.pe_0_0.a"), 8);
  EXPECT_EQ(v.width_of.at("accelerator.array.pe_0_0.p"), 12);
  EXPECT_EQ(v.width_of.at("accelerator.array.pe_1_2.s"), 12);

  // Time moves forward; the clock rises at 10t and falls at 10t + 5.
  for (std::size_t i = 1; i < v.times.size(); ++i) ASSERT_LT(v.times[i - 1], v.times[i]);
  const auto& clk = v.changes.at(v.id_of.at("accelerator.clk"));
  EXPECT_EQ(clk.size(), 2 * r.stats.cycles);
  for (std::size_t i = 0; i < clk.size(); ++i) {
    EXPECT_EQ(clk[i].first, 10 * (i / 2) + 5 * (i % 2));
    EXPECT_EQ(clk[i].second, i % 2 == 0 ? "1" : "0");
  }

  // PE(0,0)'s activation register: A[0][0] enters row 0 in the first stream
  // step (cycle kr = 4, after the first tile's 4-row weight load) and is in
  // the register from the next cycle on.
  const std::string a00 = v.id_of.at("accelerator.array.pe_0_0.a");
  const std::uint64_t first = ops.a.bits[0];
  ASSERT_NE(first, 0u) << "choose a seed whose A[0][0] is not +0";
  bool seen = false;
  for (const auto& [time, value] : v.changes.at(a00)) {
    if (value == binary(first) && time > 0) {
      EXPECT_EQ(time, 10 * (4 + 1));
      seen = true;
      break;
    }
  }
  EXPECT_TRUE(seen);
  // The weight register of PE(1,2) holds B[1][2] when the first stream starts (cycle 4).
  const auto& w12 = v.changes.at(v.id_of.at("accelerator.array.pe_1_2.w"));
  std::string at_stream_start;
  for (const auto& [time, value] : w12) {
    if (time <= 10 * 4) at_stream_start = value;
  }
  EXPECT_EQ(at_stream_start, binary(ops.b.bits[1 * N + 2]));
  // Partial sums move: the sum register of PE(1,0) changes many times.
  EXPECT_GT(v.changes.at(v.id_of.at("accelerator.array.pe_1_0.s")).size(), M);
  // The phase signal walks through load (1), fill (2), steady (3), drain (4).
  std::set<std::string> phases;
  for (const auto& [time, value] : v.changes.at(v.id_of.at("accelerator.phase"))) phases.insert(value);
  EXPECT_TRUE(phases.count("1") && phases.count("10") && phases.count("11") && phases.count("100"));
}

TEST(Vcd, CycleWindowLimitsTheDump) {
  const std::string path = (std::filesystem::temp_directory_path() / ("accsim_window_" + std::to_string(::getpid()) + ".vcd")).string();
  const ref::GemmConfig cfg = test::gemm_config("e4m3", "fp16", "");
  const test::Operands ops = test::quantized(5, 6, 5, cfg, 13);
  ArrayConfig arr = test::array_config(2, 2, Dataflow::output_stationary);
  arr.vcd_path = path;
  arr.vcd_window = parse_vcd_window("cycles=5:12");
  arr.dram_bytes_per_cycle = 1;  // with stalls: steps and cycles differ
  const CycleResult r = test::expect_bit_identical(ops, cfg, arr);
  EXPECT_GT(r.stats.phases.stall, 0u);
  const Vcd v = parse(path);
  std::filesystem::remove(path);
  ASSERT_FALSE(v.times.empty());
  EXPECT_EQ(v.times.front(), 50u);
  EXPECT_LE(v.times.back(), 120u);
  EXPECT_EQ(v.changes.at(v.id_of.at("accelerator.clk")).size(), 2u * 7u);
  const auto& stall = v.changes.at(v.id_of.at("accelerator.stall"));
  EXPECT_FALSE(stall.empty());
}

TEST(Vcd, UnwritablePathIsAConfigError) {
  const ref::GemmConfig cfg = test::gemm_config("e4m3", "fp16", "");
  const test::Operands ops = test::quantized(2, 2, 2, cfg, 14);
  ArrayConfig arr = test::array_config(2, 2, Dataflow::output_stationary);
  arr.vcd_path = "/nonexistent-dir/x.vcd";
  ref::GemmConfig c = cfg;
  c.order = arr.order();
  try {
    (void)run_cycle_gemm(ops.a, ops.b, c, arr);
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.field(), "vcd_path");
  }
}

}  // namespace
}  // namespace accsim::hw
