// `accsim run` end to end: the built binary on the tiny hand-made trace and
// on the shipped traces.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/cli/test_util.hpp"
#include "trace_fixture.hpp"

namespace accsim::net {
namespace {

using nlohmann::json;
using sim::testing::read_bytes;
using sim::testing::run_accsim;
using sim::testing::TempDir;
using sim::testing::write_bytes;

#define EXPECT_HAS(haystack, needle) EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

const std::string kTraces = ACCSIM_TRACES_DIR;

// A user error: exit 2, one line on stderr naming the input, no report.
void expect_user_error(const std::vector<std::string>& args, const std::string& message) {
  TempDir dir;
  testing::write_trace(dir);
  std::vector<std::string> full{"run", "--trace", dir.path().string(), "--report", "r.json"};
  full.insert(full.end(), args.begin(), args.end());
  const auto r = run_accsim(full, dir.path());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(r.err.starts_with("accsim: error: ")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_HAS(r.err, message);
  EXPECT_FALSE(std::filesystem::exists(dir / "r.json"));
}

TEST(RunCli, TinyTrace) {
  TempDir dir;
  testing::write_trace(dir);
  const auto r = run_accsim({"run", "--trace", ".", "--report", "r.json", "--threads", "2"}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");  // stdout is not a terminal: no progress bar
  EXPECT_HAS(r.out, "accsim run: tiny");
  EXPECT_HAS(r.out, "equals the framework");
  const json report = json::parse(read_bytes(dir / "r.json"));
  EXPECT_EQ(report["command"], "run");
  EXPECT_EQ(report["accuracy"]["framework"]["correct"], 3);
  EXPECT_EQ(report["accuracy"]["fp32"]["correct"], 3);
  EXPECT_EQ(report["accuracy"]["fp32"]["equals_framework"], true);
  EXPECT_EQ(report["layers"].size(), 1u);
  EXPECT_EQ(report["layers"][0]["name"], "fc");
  EXPECT_EQ(report["layers"][0]["gemm"]["k"], 8);
  EXPECT_FALSE(report.contains("timing"));
}

TEST(RunCli, BadInputsAreOneLineErrors) {
  expect_user_error({"--acc", "M60E4"}, "--acc: acc: ");
  expect_user_error({"--order", "chunked:0"}, "--order: ");
  expect_user_error({"--scale", "row"}, "--scale: scale 'row' is not one of");
  expect_user_error({"--layer", "conv:acc=fp16"}, "'conv' is not a GEMM layer of");
  expect_user_error({"--samples", "9"}, "--samples: 9 asked for");
  expect_user_error({"--layer-config", "missing.yaml"}, "missing.yaml: cannot open");
  expect_user_error({"--engine", "fast"}, "--engine: 'fast' is not one of auto, reference");
  {
    TempDir dir;
    const auto r = run_accsim({"run", "--trace", "nowhere"}, dir.path());
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err, "accsim: error: nowhere: no such trace folder\n");
  }
  {
    TempDir dir;
    testing::write_trace(dir);
    write_bytes(dir / "model.onnx", read_bytes(dir / "model.onnx").substr(0, 40));
    const auto r = run_accsim({"run", "--trace", ".", "--report", "r.json"}, dir.path());
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_HAS(r.err, "./model.onnx: ");
    EXPECT_FALSE(std::filesystem::exists(dir / "r.json"));
  }
  {
    TempDir dir;
    testing::write_trace(dir);
    const auto r = run_accsim({"run", "--trace", ".", "--report", "no/such/dir/r.json"}, dir.path());
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_HAS(r.err, "no/such/dir/r.json: directory 'no/such/dir' does not exist");
  }
}

TEST(RunCli, ReportIsByteIdenticalForAnyThreadCount) {
  TempDir dir;
  const std::vector<std::string> base{"run", "--trace", kTraces + "/fmnist_cnn", "--samples", "48",
                                      "--layer", "first:order=chunked:4"};
  std::string first;
  for (const char* threads : {"1", "2", "3"}) {
    auto args = base;
    args.insert(args.end(), {"--threads", threads, "--report", std::string("r") + threads + ".json"});
    const auto r = run_accsim(args, dir.path());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string report = read_bytes(dir / (std::string("r") + threads + ".json"));
    if (first.empty()) {
      first = report;
    } else {
      EXPECT_EQ(report, first) << "--threads " << threads;
    }
  }
  const json report = json::parse(first);
  EXPECT_EQ(report["layers"][0]["arithmetic"]["order"], "chunked:4");
  EXPECT_EQ(report["layers"][1]["arithmetic"]["order"], "chunked:16");
}

TEST(RunCli, DefaultRunsTheShippedResnetWithThePaperConfiguration) {
  TempDir dir;
  const auto r = run_accsim({"run", "--samples", "8", "--report", "r.json"}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_HAS(r.out, "accsim run: fmnist_resnet");
  const json report = json::parse(read_bytes(dir / "r.json"));
  const json& lowbit = report["config"]["lowbit"];
  EXPECT_EQ(lowbit["multiplier"], "M4E3");
  EXPECT_EQ(lowbit["product"], "M7E4,bias=6,round=rtz,ftz");
  EXPECT_EQ(lowbit["accumulator"], "M7E4,bias=4,round=rtz,ftz");
  EXPECT_EQ(lowbit["order"], "chunked:16");
  EXPECT_EQ(lowbit["scale"], "pow2");
  // Every layer's weights are rounded once per run, not per sample: each
  // weight counted once, under `weights`; `quantize` counts the activations
  // of every sample.
  for (const json& layer : report["layers"]) {
    const json& g = layer["gemm"];
    const auto m = g["m"].get<std::uint64_t>(), k = g["k"].get<std::uint64_t>(), n = g["n"].get<std::uint64_t>();
    // A Conv's weights are its GEMM's A, per group; the final Gemm's are its B.
    const std::uint64_t weights = layer["op"] == "Conv" ? m * k * g["groups"].get<std::uint64_t>() : k * n;
    EXPECT_EQ(layer["events"]["weights"]["ops"], weights) << layer["name"];
    EXPECT_EQ(layer["events"]["quantize"]["ops"].get<std::uint64_t>() % 8, 0u) << layer["name"];
  }
}

// Check 4 of DESIGN.md: accsim's FP32 against the exporting framework, on
// every sample of both shipped traces.
class ShippedTraceFp32 : public ::testing::TestWithParam<std::string> {};

TEST_P(ShippedTraceFp32, MatchesTheFrameworkTop1AndLogits) {
  TempDir dir;
  const std::string trace = kTraces + "/" + GetParam();
  const auto r = run_accsim({"run", "--trace", trace, "--mul", "fp32", "--prod", "fp32", "--acc", "fp32", "--order",
                             "sequential", "--scale", "none", "--report", "r.json"},
                            dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json report = json::parse(read_bytes(dir / "r.json"));
  const json& acc = report["accuracy"];
  const json meta = json::parse(read_bytes(trace + "/trace.json"));
  EXPECT_EQ(acc["framework"]["correct"], meta["accuracy"]["framework_correct"]);
  EXPECT_EQ(acc["fp32"]["correct"], meta["accuracy"]["framework_correct"]);
  EXPECT_EQ(acc["fp32"]["argmax_agrees_with_golden"], meta["num_samples"]);
  EXPECT_LT(acc["fp32"]["max_rel_logit_deviation"].get<double>(), 1e-4);
  // The "low-bit" run is the same fp32 arithmetic here.
  EXPECT_EQ(acc["lowbit"]["agreeing_samples"], meta["num_samples"]);
}

INSTANTIATE_TEST_SUITE_P(Traces, ShippedTraceFp32, ::testing::Values("fmnist_cnn", "fmnist_resnet", "fmnist_vit"));

// The shipped vision transformer on a few samples: its attention GEMMs run
// low-bit (and on the array) like any layer, are named as such, and take
// per-layer overrides.
TEST(RunCli, VisionTransformerAttentionLayersRunLowBitAndTakeOverrides) {
  TempDir dir;
  const std::string fp32_layer = "/blocks/blocks.0/attn/MatMul";
  const auto r = run_accsim({"run", "--trace", kTraces + "/fmnist_vit", "--samples", "6", "--energy-samples", "1",
                             "--layer", fp32_layer + ":engine=fp32", "--report", "r.json"},
                            dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_HAS(r.out, "(act x act)");
  EXPECT_HAS(r.out, "the weight buffer holds activations");
  const json report = json::parse(read_bytes(dir / "r.json"));
  std::size_t attention = 0;
  for (std::size_t l = 0; l < report["layers"].size(); ++l) {
    const json& layer = report["layers"][l];
    const json& energy = report["energy"]["layers"][l];
    const bool act = layer["operands"] == "activations x activations";
    const std::string name = layer["name"];
    EXPECT_EQ(act, name.ends_with("/attn/MatMul") || name.ends_with("/attn/MatMul_1")) << name;
    if (!act) continue;
    ++attention;
    EXPECT_EQ(layer["gemm"]["groups"], 4) << name;  // heads
    if (name == fp32_layer) {
      EXPECT_EQ(layer["arithmetic"]["engine"], "fp32");
      EXPECT_TRUE(energy["array"].is_null());
      continue;
    }
    EXPECT_EQ(layer["arithmetic"]["engine"], "reference") << name;
    const json& g = layer["gemm"];
    const int a = g["m"].get<int>() * g["k"].get<int>(), b = g["k"].get<int>() * g["n"].get<int>();
    EXPECT_EQ(layer["events"]["quantize"]["ops"], 6 * 4 * (a + b)) << name;  // both operands, every sample
    EXPECT_EQ(layer["events"]["weights"]["ops"], 0) << name;                  // and no constant one
    EXPECT_GT(layer["events"]["accumulate"]["ops"], 0) << name;
    EXPECT_EQ(energy["weight_buffer_holds"], "activations") << name;
    EXPECT_GT(energy["per_inference"]["total_pj"].get<double>(), 0) << name;
  }
  EXPECT_EQ(attention, 8u);  // 4 blocks x (Q·Kᵀ, softmax·V)
}

}  // namespace
}  // namespace accsim::net

namespace accsim::net {
namespace {

// docs/run.md: a power-of-two shift of every format's bias is a rescaling of
// the tensors, so the default configuration equals the paper's absolute
// biases (b_prod 12, b_acc 10) with e3m4's own bias raised from 3 to 6, bit
// for bit: same predictions, events and errors.
TEST(RunCli, DefaultBiasesEqualThePapersUpToAPowerOfTwo) {
  TempDir dir;
  const std::string trace = kTraces + "/fmnist_cnn";
  const auto ours = run_accsim({"run", "--trace", trace, "--samples", "32", "--report", "ours.json"}, dir.path());
  const auto paper = run_accsim({"run", "--trace", trace, "--samples", "32", "--mul", "M4E3,bias=6", "--prod",
                                 "M7E4,bias=12,round=rtz,ftz", "--acc", "M7E4,bias=10,round=rtz,ftz", "--report",
                                 "paper.json"},
                                dir.path());
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  ASSERT_EQ(paper.exit_code, 0) << paper.err;
  const json a = json::parse(read_bytes(dir / "ours.json"));
  const json b = json::parse(read_bytes(dir / "paper.json"));
  EXPECT_EQ(a["accuracy"], b["accuracy"]);
  ASSERT_EQ(a["layers"].size(), b["layers"].size());
  for (std::size_t l = 0; l < a["layers"].size(); ++l) {
    EXPECT_EQ(a["layers"][l]["events"], b["layers"][l]["events"]) << l;
    EXPECT_EQ(a["layers"][l]["error"], b["layers"][l]["error"]) << l;
  }
}

// Energy per inference: every low-bit layer of the CNN runs on the
// cycle-accurate array (bit-identical, or the run fails), and the report's
// per-layer energies add up to the per-inference total.
TEST(RunCli, EnergyPerInferenceAddsUpOverLayers) {
  TempDir dir;
  const auto r = run_accsim({"run", "--trace", kTraces + "/fmnist_cnn", "--samples", "6", "--energy-samples", "2",
                             "--node", "7", "--array-cols", "8", "--report", "r.json"},
                            dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_HAS(r.out, "energy per inference");
  const json e = json::parse(read_bytes(dir / "r.json"))["energy"];
  EXPECT_EQ(e["samples"], 2);
  EXPECT_EQ(e["node_nm"], 7);
  const json& total = e["per_inference"];
  ASSERT_TRUE(total.contains("total_pj")) << total.dump();
  double sum = 0;
  for (const json& layer : e["layers"]) {
    ASSERT_TRUE(layer["per_inference"].contains("total_pj")) << layer.dump();
    EXPECT_EQ(layer["array"]["cols"], 8);
    EXPECT_EQ(layer["array"]["rows"], 16);  // chunked:16: a 16-row weight-stationary column
    sum += layer["per_inference"]["total_pj"].get<double>();
  }
  EXPECT_NEAR(sum, total["total_pj"].get<double>(), 1e-5 * e["layers"].size());
  EXPECT_GT(total["pe_pj"]["datapath"].get<double>(), 0);

  const auto none = run_accsim({"run", "--trace", kTraces + "/fmnist_cnn", "--samples", "2", "--energy-samples", "0",
                                "--report", "n.json"},
                               dir.path());
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_FALSE(json::parse(read_bytes(dir / "n.json")).contains("energy"));
}

TEST(RunCli, BadEnergyFlagsAreOneLineErrors) {
  expect_user_error({"--node", "28"}, "--node: 28 nm");
  expect_user_error({"--array-cols", "0"}, "--array-cols: must be 1..1024");
}

}  // namespace
}  // namespace accsim::net
