// `accsim gemm` end to end: the built binary on hand-made files. Expected
// results are worked out by hand in the comments, not by running accsim.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/reference/lanes_f32.hpp"
#include "sim/npy.hpp"
#include "test_util.hpp"

namespace accsim::sim {
namespace {

using nlohmann::json;
using testing::npy_f32;
using testing::npy_f64;
using testing::npy_header_dict;
using testing::npy_raw;
using testing::read_bytes;
using testing::run_accsim;
using testing::TempDir;
using testing::write_bytes;

std::vector<double> read_c(const std::filesystem::path& path, std::size_t rows, std::size_t cols) {
  const NpyMatrix c = read_npy(path);
  EXPECT_EQ(c.dtype, NpyDtype::float64);
  EXPECT_EQ(c.matrix.rows, rows);
  EXPECT_EQ(c.matrix.cols, cols);
  return c.matrix.data;
}

json read_report(const std::filesystem::path& path) { return json::parse(read_bytes(path)); }

TEST(GemmCli, SmallIntegersInFp32AreExact) {
  // A = [1 2 3; 4 5 6], B = [7 8; 9 10; 11 12]:
  //   C = [1*7+2*9+3*11, 1*8+2*10+3*12; 4*7+5*9+6*11, 4*8+5*10+6*12] = [58 64; 139 154],
  // every partial sum an integer far below 2^24, so fp32 is exact.
  TempDir dir;
  write_bytes(dir / "A.npy", npy_f64(2, 3, {1, 2, 3, 4, 5, 6}));
  write_bytes(dir / "B.npy", npy_f32(3, 2, {7, 8, 9, 10, 11, 12}));
  const auto r = run_accsim({"gemm", "--a", "A.npy", "--b", "B.npy", "--mul", "fp32", "--acc", "fp32", "--scale",
                             "none", "--out", "C.npy", "--report", "report.json"},
                            dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("accsim gemm"), std::string::npos) << r.out;
  EXPECT_EQ(dir.listing(), (std::set<std::string>{"A.npy", "B.npy", "C.npy", "report.json"}));
  EXPECT_EQ(read_c(dir / "C.npy", 2, 2), (std::vector<double>{58, 64, 139, 154}));

  const json report = read_report(dir / "report.json");
  EXPECT_EQ(report["config"]["multiplier"], "fp32");
  EXPECT_EQ(report["config"]["accumulator"], "fp32");
  EXPECT_TRUE(report["config"]["product"].is_null());
  EXPECT_EQ(report["config"]["order"], "sequential");
  EXPECT_EQ(report["config"]["scale"], "none");
  EXPECT_EQ(report["shape"], (json{{"m", 2}, {"k", 3}, {"n", 2}}));
  EXPECT_EQ(report["macs"], 12);
  EXPECT_EQ(report["inputs"]["a"]["dtype"], "float64");
  EXPECT_EQ(report["inputs"]["b"]["dtype"], "float32");
  const json& acc = report["events"]["accumulate"];
  EXPECT_EQ(acc["ops"], 12);
  EXPECT_EQ(acc["inexact"], 0);
  EXPECT_EQ(acc["swamp"], 0);
  EXPECT_EQ(report["events"]["quantize_a"]["ops"], 6);
  EXPECT_EQ(report["events"]["quantize_a"]["inexact"], 0);
  // An exact result: zero error, infinite SNR spelled "inf".
  EXPECT_EQ(report["error"]["vs_quantized"]["rel_frobenius"], 0.0);
  EXPECT_EQ(report["error"]["vs_original"]["max_abs"], 0.0);
  EXPECT_EQ(report["error"]["vs_quantized"]["snr_db"], "inf");
  EXPECT_FALSE(report.contains("timing"));
  EXPECT_TRUE(report["accsim_version"].is_string());
}

// A narrow accumulator swamps. M3E4 (4 significant bits, bias 7, max 480)
// holds every integer up to 16; above 16 its spacing is 2, so 16 + 1 = 17 is
// a tie between 16 (fraction 000, even) and 18 (001), and rne keeps 16.
//   A = [1 x 40; 16, 1 x 39], B = ones(40, 1).
//   sequential: row 0 counts 1..16, then 24 adds of 1 swamp -> 16;
//               row 1 starts at 16 and all 39 adds swamp     -> 16.
//   chunked:8 (merge in M3E4): row 0 has five chunks of 8 -> 8,16,24,32,40
//               (all representable: 24 = 1.1b*2^4, 40 = 1.01b*2^5) -> 40;
//               row 1: chunk 0 = 16 (7 swamps), four chunks of 8 ->
//               16,24,32,40,48 -> 48. The exact sums are 40 and 55.
struct SwampCase {
  const char* order;
  double c0, c1;
  int accumulate_swamps, merge_ops;
};
void PrintTo(const SwampCase& c, std::ostream* os) { *os << c.order; }
class GemmCliSwamp : public ::testing::TestWithParam<SwampCase> {};

TEST_P(GemmCliSwamp, NarrowAccumulatorSwamps) {
  const SwampCase& t = GetParam();
  TempDir dir;
  std::vector<double> a(80, 1.0);
  a[40] = 16.0;
  write_bytes(dir / "A.npy", npy_f64(2, 40, a));
  write_bytes(dir / "B.npy", npy_f64(40, 1, std::vector<double>(40, 1.0)));
  const auto r = run_accsim({"gemm", "--a", "A.npy", "--b", "B.npy", "--mul", "fp32", "--acc", "M3E4", "--order",
                             t.order, "--out", "C.npy", "--report", "r.json", "--threads", "2"},
                            dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_c(dir / "C.npy", 2, 1), (std::vector<double>{t.c0, t.c1}));
  const json report = read_report(dir / "r.json");
  EXPECT_EQ(report["config"]["accumulator"], "M3E4");
  EXPECT_EQ(report["events"]["accumulate"]["ops"], 80);
  EXPECT_EQ(report["events"]["accumulate"]["swamp"], t.accumulate_swamps);
  EXPECT_EQ(report["events"]["accumulate"]["inexact"], t.accumulate_swamps);  // every 17 -> 16 is inexact
  EXPECT_EQ(report["events"]["accumulate"]["overflow"], 0);
  EXPECT_EQ(report["events"]["merge"]["ops"], t.merge_ops);
  EXPECT_EQ(report["events"]["merge"]["swamp"], 0);
  EXPECT_EQ(report["events"]["merge"]["inexact"], 0);
  // Errors against the exact [40, 55].
  const double e0 = 40 - t.c0, e1 = 55 - t.c1;
  EXPECT_DOUBLE_EQ(report["error"]["vs_original"]["max_abs"].get<double>(), std::max(e0, e1));
  EXPECT_DOUBLE_EQ(report["error"]["vs_quantized"]["rel_frobenius"].get<double>(),
                   std::sqrt((e0 * e0 + e1 * e1) / (40.0 * 40 + 55.0 * 55)));
}

INSTANTIATE_TEST_SUITE_P(Orders, GemmCliSwamp,
                         ::testing::Values(SwampCase{"sequential", 16, 16, 24 + 39, 0},
                                           SwampCase{"chunked:8", 40, 48, 7, 10}));

// Same inputs, different thread counts: byte-identical C.npy and report.
TEST(GemmCli, ThreadCountChangesNothing) {
  TempDir dir;
  std::mt19937_64 rng(20240112);
  std::normal_distribution<double> normal;
  const std::size_t m = 133, k = 300, n = 17;  // m: several of the error yardstick's 64-row blocks
  std::vector<double> a(m * k), b(k * n);
  for (double& x : a) x = normal(rng);
  for (double& x : b) x = normal(rng) * 0.05;
  write_bytes(dir / "A.npy", npy_f64(m, k, a));
  write_bytes(dir / "B.npy", npy_f64(k, n, b));
  const std::vector<std::vector<std::string>> configs = {
      {"--mul", "e4m3", "--acc", "M7E4,bias=10,round=rtz,ftz", "--prod", "M7E4,bias=12,round=rtz,ftz", "--order",
       "chunked:16", "--scale", "none"},
      {"--mul", "e5m2", "--acc", "M7E4,round=sr,seed=7", "--order", "chunked:32:fp16", "--scale", "channel"},
      {"--mul", "e4m3", "--acc", "fp16", "--scale", "pow2"},
  };
  for (const auto& config : configs) {
    std::string first_c, first_report;
    for (const char* threads : {"1", "2", "3"}) {
      const std::filesystem::path run_dir = dir / (std::string("t") + threads);
      std::filesystem::create_directory(run_dir);
      std::vector<std::string> args = {"gemm", "--a", (dir / "A.npy").string(), "--b", (dir / "B.npy").string(),
                                       "--threads", threads, "--out", "C.npy", "--report", "report.json"};
      args.insert(args.end(), config.begin(), config.end());
      const auto r = run_accsim(args, run_dir);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      const std::string c = read_bytes(run_dir / "C.npy"), report = read_bytes(run_dir / "report.json");
      if (first_c.empty()) {
        first_c = c;
        first_report = report;
        EXPECT_FALSE(json::parse(report).contains("timing"));
      } else {
        EXPECT_EQ(c, first_c) << "threads " << threads << ", " << config[3];
        EXPECT_EQ(report, first_report) << "threads " << threads << ", " << config[3];
      }
      std::filesystem::remove_all(run_dir);
    }
  }
}

TEST(GemmCli, ReportNamesTheRouteThatRan) {
  // models/numerics/README.md: narrow sums take plan_fast's lanes (in
  // float lanes where plan_f32 allows: the paper's accumulator), bf16 sums
  // (beyond a double) the wider lanes, and a 51-bit significand, which
  // leaves no room below a double's last place for round-to-odd, the
  // general path.
  TempDir dir;
  write_bytes(dir / "A.npy", npy_f32(2, 3, {1, 2, 3, 4, 5, 6}));
  write_bytes(dir / "B.npy", npy_f32(3, 2, {7, 8, 9, 10, 11, 12}));
  const std::pair<const char*, const char*> cases[] = {
      {"M7E4,bias=4,round=rtz,ftz", "fast"},
      // (Sums rounded to odd: the float lanes with AVX-512 only, see
      // ref::use_f32_lanes.)
      {"M7E4,bias=-4,round=rtz,ftz", ref::cpu_lane_isa() == ref::LaneIsa::avx512 ? "f32" : "fast"},
      {"bf16", "lanes"},
      {"M51E8", "general"}};
  for (const auto& [acc, route] : cases) {
    const auto r = run_accsim({"gemm", "--a", "A.npy", "--b", "B.npy", "--mul", "e4m3", "--acc", acc, "--report",
                               "report.json"},
                              dir.path());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(read_report(dir / "report.json")["implementation"], route) << acc;
    EXPECT_NE(r.out.find(std::string(route) + " path"), std::string::npos) << r.out;
  }
}

TEST(GemmCli, AccsimIsaLowersTheFloatLanesWithoutChangingABit) {
  // models/numerics/README.md: ACCSIM_ISA caps the float lanes' ISA; every
  // ISA (and the double lanes) gives the same bits, and an unknown value is
  // one warning line.
  TempDir dir;
  std::vector<float> a(40 * 70), b(70 * 37);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>((i * 37) % 23) - 11.0f;
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>((i * 53) % 19) * 0.25f - 2.0f;
  write_bytes(dir / "A.npy", npy_f32(40, 70, a));
  write_bytes(dir / "B.npy", npy_f32(70, 37, b));
  std::string first_c, first_report;
  for (const char* isa : {"", "avx512", "avx2", "baseline", "sse9"}) {
    const std::vector<std::string> env = {std::string("ACCSIM_ISA=") + isa};
    const auto r = run_accsim({"gemm", "--a", "A.npy", "--b", "B.npy", "--mul", "e4m3", "--acc",
                               "M7E4,bias=-4,round=rtz,ftz", "--scale", "pow2", "--order", "chunked:16", "--out",
                               "C.npy", "--report", "report.json"},
                              dir.path(), env);
    ASSERT_EQ(r.exit_code, 0) << isa << ": " << r.err;
    // The paper's sums are rounded to odd, which only AVX-512 does faster
    // than the double lanes (ref::use_f32_lanes).
    const bool avx512 = ref::cpu_lane_isa() == ref::LaneIsa::avx512 && std::string(isa) != "avx2" &&
                        std::string(isa) != "baseline";
    EXPECT_EQ(read_report(dir / "report.json")["implementation"], avx512 ? "f32" : "fast") << isa;
    if (std::string(isa) == "sse9") {
      EXPECT_EQ(r.err, "accsim: warning: ACCSIM_ISA=sse9: not one of avx512, avx2, baseline; using the CPU's best\n");
    } else {
      EXPECT_EQ(r.err, "") << isa;
    }
    const std::string c = read_bytes(dir / "C.npy");
    std::string report = read_bytes(dir / "report.json");
    // Everything but the route (checked above) is the same.
    const std::size_t route = report.find("\"implementation\"");
    ASSERT_NE(route, std::string::npos);
    report.erase(route, report.find('\n', route) - route);
    if (first_c.empty()) {
      first_c = c;
      first_report = report;
    } else {
      EXPECT_EQ(c, first_c) << isa;
      EXPECT_EQ(report, first_report) << isa;
    }
  }
}

TEST(GemmCli, TimingIsOptIn) {
  TempDir dir;
  write_bytes(dir / "A.npy", npy_f64(1, 1, {2}));
  write_bytes(dir / "B.npy", npy_f64(1, 1, {3}));
  const auto r = run_accsim({"gemm", "--a", "A.npy", "--b", "B.npy", "--mul", "fp32", "--acc", "fp32", "--threads",
                             "2", "--report", "r.json", "--timing"},
                            dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json report = read_report(dir / "r.json");
  EXPECT_EQ(report["timing"]["threads"], 2);
  EXPECT_TRUE(report["timing"]["gemm_seconds"].is_number());
  EXPECT_TRUE(report["timing"]["gemm_cpu_seconds"].is_number());
  EXPECT_TRUE(report["output"]["path"].is_null());
}

// The error statistics against an independent yardstick: the GEMMs of the
// original inputs and of their fp32 roundings (the machine's own double ->
// float conversion), summed here in long double, compared with C as written.
// The reported figures must agree far beyond the digits the summary prints.
TEST(GemmCli, ErrorStatisticsMatchALongDoubleOracle) {
  TempDir dir;
  std::mt19937_64 rng(77);
  std::normal_distribution<double> normal;
  const std::size_t m = 150, k = 90, n = 40;  // several of the yardstick's row blocks
  std::vector<double> a(m * k), b(k * n);
  for (double& x : a) x = normal(rng);
  for (double& x : b) x = normal(rng);
  write_bytes(dir / "A.npy", npy_f64(m, k, a));
  write_bytes(dir / "B.npy", npy_f64(k, n, b));
  const auto r = run_accsim({"gemm", "--a", "A.npy", "--b", "B.npy", "--mul", "fp32", "--acc", "bf16", "--scale",
                             "none", "--threads", "2", "--out", "C.npy", "--report", "r.json"},
                            dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<double> c = read_c(dir / "C.npy", m, n);
  const json error = read_report(dir / "r.json")["error"];
  auto check = [&](const json& reported, bool rounded_inputs) {
    auto in = [&](double x) { return rounded_inputs ? static_cast<double>(static_cast<float>(x)) : x; };
    long double signal = 0, noise = 0, max_abs = 0;
    for (std::size_t i = 0; i < m; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        long double want = 0;
        for (std::size_t kk = 0; kk < k; ++kk) {
          want += static_cast<long double>(in(a[i * k + kk])) * static_cast<long double>(in(b[kk * n + j]));
        }
        const long double e = static_cast<long double>(c[i * n + j]) - want;
        signal += want * want;
        noise += e * e;
        max_abs = std::max(max_abs, std::fabs(e));
      }
    }
    const double rel = static_cast<double>(std::sqrt(noise / signal));
    const double snr = static_cast<double>(10 * std::log10(signal / noise));
    EXPECT_NEAR(reported["rel_frobenius"].get<double>(), rel, 1e-9 * rel) << reported.dump();
    EXPECT_NEAR(reported["snr_db"].get<double>(), snr, 1e-9) << reported.dump();
    EXPECT_NEAR(reported["max_abs"].get<double>(), static_cast<double>(max_abs), 1e-9 * static_cast<double>(max_abs))
        << reported.dump();
  };
  check(error["vs_original"], false);
  check(error["vs_quantized"], true);
}

// --- bad input: exit 2, one line naming the input, no output left behind --
struct BadCase {
  const char* name;
  std::vector<std::string> args;  // after "gemm"; the files below exist
  std::vector<std::string> message_parts;
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

void write_inputs(const TempDir& dir) {
  write_bytes(dir / "A.npy", npy_f64(2, 3, {1, 2, 3, 4, 5, 6}));
  write_bytes(dir / "B.npy", npy_f64(3, 2, {1, 2, 3, 4, 5, 6}));
  write_bytes(dir / "B5.npy", npy_f64(5, 2, std::vector<double>(10, 1.0)));
  write_bytes(dir / "int32.npy",
              npy_raw(npy_header_dict("<i4", "(3, 2)"), std::string(24, '\1')));
  write_bytes(dir / "cube.npy", npy_raw(npy_header_dict("<f8", "(3, 2, 2)"), std::string(96, '\0')));
  write_bytes(dir / "nan.npy", npy_f64(2, 3, {1, 2, 3, 4, 5, std::nan("")}));
  write_bytes(dir / "inf.npy", npy_f32(3, 2, {1, 2, 3, 4, INFINITY, 6}));
  write_bytes(dir / "garbage.npy", "not a numpy file at all");
}

class GemmCliBadInput : public ::testing::TestWithParam<BadCase> {};

TEST_P(GemmCliBadInput, FailsWithOneLineAndNoOutput) {
  const BadCase& t = GetParam();
  TempDir dir;
  write_inputs(dir);
  const std::set<std::string> before = dir.listing();
  std::vector<std::string> args = {"gemm"};
  args.insert(args.end(), t.args.begin(), t.args.end());
  args.insert(args.end(), {"--out", "C.npy", "--report", "report.json"});
  const auto r = run_accsim(args, dir.path());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(r.err.starts_with("accsim: error: ")) << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one line: " << r.err;
  for (const auto& part : t.message_parts) EXPECT_NE(r.err.find(part), std::string::npos) << r.err;
  EXPECT_EQ(dir.listing(), before) << "an output or temporary was left behind";
}

const std::vector<std::string> kFp32 = {"--mul", "fp32", "--acc", "fp32"};
std::vector<std::string> with_fp32(std::vector<std::string> args) {
  args.insert(args.end(), kFp32.begin(), kFp32.end());
  return args;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, GemmCliBadInput,
    ::testing::Values(
        BadCase{"missing_file", with_fp32({"--a", "missing.npy", "--b", "B.npy"}), {"missing.npy: cannot open"}},
        BadCase{"not_npy", with_fp32({"--a", "garbage.npy", "--b", "B.npy"}), {"garbage.npy: ", "magic"}},
        BadCase{"int32", with_fp32({"--a", "A.npy", "--b", "int32.npy"}), {"int32.npy: ", "dtype '<i4'"}},
        BadCase{"three_d", with_fp32({"--a", "cube.npy", "--b", "B.npy"}), {"cube.npy: ", "3-D"}},
        BadCase{"mismatched_k", with_fp32({"--a", "A.npy", "--b", "B5.npy"}), {"B5.npy: has 5 rows", "3 columns"}},
        BadCase{"nan_in_a", with_fp32({"--a", "nan.npy", "--b", "B.npy"}),
                {"nan.npy: element (row 1, col 2) is NaN"}},
        BadCase{"inf_in_b", with_fp32({"--a", "A.npy", "--b", "inf.npy"}),
                {"inf.npy: element (row 2, col 0) is +inf"}},
        BadCase{"bad_format",
                {"--a", "A.npy", "--b", "B.npy", "--mul", "e4m3", "--acc", "M60E4"},
                {"--acc: ", "M60E4", "mantissa bits must be 0..52"}},
        BadCase{"bad_product_format",
                {"--a", "A.npy", "--b", "B.npy", "--mul", "e4m3", "--acc", "fp32", "--prod", "fp33"},
                {"--prod: ", "fp33"}},
        BadCase{"bad_order", with_fp32({"--a", "A.npy", "--b", "B.npy", "--order", "zigzag"}), {"--order: ", "zigzag"}},
        BadCase{"bad_chunk", with_fp32({"--a", "A.npy", "--b", "B.npy", "--order", "chunked:0"}), {"--order: "}},
        BadCase{"bad_scale", with_fp32({"--a", "A.npy", "--b", "B.npy", "--scale", "log"}), {"--scale: ", "'log'"}},
        BadCase{"missing_flag", {"--a", "A.npy", "--b", "B.npy", "--acc", "fp32"}, {"--mul"}},
        BadCase{"unknown_flag", with_fp32({"--a", "A.npy", "--b", "B.npy", "--bogus"}), {"--bogus"}},
        BadCase{"bad_threads", with_fp32({"--a", "A.npy", "--b", "B.npy", "--threads", "-1"}), {"--threads"}}),
    [](const ::testing::TestParamInfo<BadCase>& p) { return std::string(p.param.name); });

TEST(GemmCli, UnwritableOutputFailsBeforeWriting) {
  TempDir dir;
  write_inputs(dir);
  const auto before = dir.listing();
  const auto r = run_accsim(with_fp32({"gemm", "--a", "A.npy", "--b", "B.npy", "--report", "report.json", "--out",
                                       "no/such/dir/C.npy"}),
                            dir.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("no/such/dir/C.npy: directory"), std::string::npos) << r.err;
  EXPECT_EQ(dir.listing(), before);
}

TEST(GemmCli, OutAndReportMustDiffer) {
  TempDir dir;
  write_inputs(dir);
  const auto before = dir.listing();
  const auto r =
      run_accsim(with_fp32({"gemm", "--a", "A.npy", "--b", "B.npy", "--out", "x.npy", "--report", "./x.npy"}),
                 dir.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--report: names the same file as --out"), std::string::npos) << r.err;
  EXPECT_EQ(dir.listing(), before);
}

TEST(GemmCli, FailureKeepsAnExistingOutputUntouched) {
  TempDir dir;
  write_inputs(dir);
  write_bytes(dir / "C.npy", "previous result");
  const auto r = run_accsim(with_fp32({"gemm", "--a", "nan.npy", "--b", "B.npy", "--out", "C.npy"}), dir.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(read_bytes(dir / "C.npy"), "previous result");
}

TEST(Cli, NoSubcommandPrintsHelp) {
  TempDir dir;
  const auto r = run_accsim({}, dir.path());
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("gemm"), std::string::npos) << r.out;
}

TEST(Cli, UnknownSubcommandIsAUsageError) {
  TempDir dir;
  const auto r = run_accsim({"frobnicate"}, dir.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(r.err.starts_with("accsim: error: ")) << r.err;
}

}  // namespace
}  // namespace accsim::sim
