// `accsim gemm --engine cycle` and `accsim verify`, end to end: the cycle
// engine's C.npy equals the reference engine's byte for byte when both
// follow the array's order, and verify says so.
#include <gtest/gtest.h>

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

void write_operands(const TempDir& dir, std::size_t m, std::size_t k, std::size_t n) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal(0, 1);
  std::vector<double> a(m * k), b(k * n);
  for (double& x : a) x = normal(rng);
  for (double& x : b) x = normal(rng);
  write_bytes(dir / "A.npy", npy_f64(m, k, a));
  write_bytes(dir / "B.npy", npy_f64(k, n, b));
}

std::vector<std::string> paper(std::vector<std::string> args) {
  for (const char* x : {"--a", "A.npy", "--b", "B.npy", "--mul", "e4m3", "--prod", "M7E4,bias=12,round=rtz,ftz",
                        "--acc", "M7E4,bias=10,round=rtz,ftz"}) {
    args.emplace_back(x);
  }
  return args;
}

TEST(CycleCli, WeightStationaryMatchesChunkedReference) {
  // A 6x4 WS array merges column chunks of R = 6 in the accumulator format:
  // the reference order chunked:6. K = 20 and N = 9 are not multiples.
  TempDir dir;
  write_operands(dir, 13, 20, 9);
  auto cycle = paper({"gemm", "--engine", "cycle", "--array", "6x4", "--out", "cycle.npy", "--report", "cycle.json"});
  const auto rc = run_accsim(cycle, dir.path());
  ASSERT_EQ(rc.exit_code, 0) << rc.err;
  const auto rr = run_accsim(paper({"gemm", "--order", "chunked:6", "--out", "ref.npy"}), dir.path());
  ASSERT_EQ(rr.exit_code, 0) << rr.err;
  EXPECT_EQ(read_bytes(dir / "cycle.npy"), read_bytes(dir / "ref.npy"));
  const nlohmann::json report = nlohmann::json::parse(read_bytes(dir / "cycle.json"));
  EXPECT_EQ(report["engine"], "cycle");
  EXPECT_EQ(report["config"]["order"], "chunked:6");
  EXPECT_EQ(report["cycle"]["cycles"], report["cycle"]["formula_cycles"]);  // unlimited buffers never stall
  EXPECT_EQ(report["cycle"]["useful_macs"], 13 * 20 * 9);
  EXPECT_EQ(report["cycle"]["buffers"]["output"]["word_bits"], 12);  // M7E4 partial sums
}

TEST(CycleCli, VerifyReportsBitIdentical) {
  TempDir dir;
  write_operands(dir, 7, 33, 5);
  for (const char* dataflow : {"ws", "os"}) {
    const auto r = run_accsim(paper({"verify", "--array", "4x4", "--dataflow", dataflow}), dir.path());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("bit-identical", 0), 0u) << r.out;
  }
}

TEST(CycleCli, BadArrayConfigurationsAreUsageErrors) {
  TempDir dir;
  write_operands(dir, 4, 4, 4);
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{"--array", "0x4"}, {"--dataflow", "diagonal"}, {"--add-latency", "0"},
        {"--obuf", "1B"}, {"--order", "sequential"}}) {
    auto args = paper({"gemm", "--engine", "cycle", "--out", "C.npy"});
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = run_accsim(args, dir.path());
    EXPECT_EQ(r.exit_code, 2) << extra[0] << " " << extra[1] << ": " << r.err;
    EXPECT_EQ(r.err.find("accsim: error: "), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir / "C.npy"));
  }
}

}  // namespace
}  // namespace accsim::sim
