// Sweep specs (expansion, canonical settings, keys, shards, one-line errors
// with file, line and key) and the point log (torn lines, Pareto flags).
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "sim/errors.hpp"
#include "sim/sweep_spec.hpp"
#include "sim/sweep_store.hpp"
#include "tests/cli/test_util.hpp"

namespace accsim::sim {
namespace {

using nlohmann::ordered_json;
using testing::TempDir;

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

const std::string kTrace = std::string(ACCSIM_TRACES_DIR) + "/fmnist_cnn";

SweepPlan plan_of(const TempDir& dir, const std::string& body) {
  return parse_sweep_spec("trace: " + kTrace + "\nsamples: 4\n" + body, dir / "spec.yaml");
}

std::string error_of(const TempDir& dir, const std::string& yaml) {
  try {
    (void)parse_sweep_spec(yaml, dir / "spec.yaml");
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(SweepSpec, AxesMultiplyZipsVaryTogetherExcludesDrop) {
  TempDir dir;
  const SweepPlan plan = plan_of(dir,
                                 "fixed: {mul: e4m3, scale: none}\n"
                                 "axes:\n"
                                 "  array: [8x8, 16X16]\n"
                                 "  dataflow: [ws, os]\n"
                                 "zip:\n"
                                 "  - prod: [exact, \"M7E4,bias=12,round=rtz,ftz\"]\n"
                                 "    acc: [fp32, \"M7E4,bias=10,ftz,round=rtz\"]\n"
                                 "exclude:\n"
                                 "  - {array: 16x16, dataflow: os, acc: fp32}\n");
  EXPECT_EQ(plan.points.size(), 2u * 2u * 2u - 1u);
  std::set<std::string> combos;
  for (const SweepPoint& p : plan.points) {
    const ordered_json& c = p.config;
    combos.insert(c["array"].get<std::string>() + " " + c["dataflow"].get<std::string>() + " " +
                  c["prod"].get<std::string>() + " " + c["acc"].get<std::string>());
    EXPECT_EQ(c["mul"], "e4m3");
    EXPECT_EQ(c["scale"], "none");
    EXPECT_EQ(c["order"], "chunked:16");  // the run command's default
    EXPECT_EQ(p.key.size(), 16u);
  }
  // Zipped: exact goes with fp32 only; canonical spellings (16x16, option order).
  EXPECT_TRUE(combos.contains("16x16 ws M7E4,bias=12,round=rtz,ftz M7E4,bias=10,round=rtz,ftz"));
  EXPECT_TRUE(combos.contains("8x8 os exact fp32"));
  EXPECT_FALSE(combos.contains("16x16 os exact fp32"));
  EXPECT_FALSE(combos.contains("8x8 ws exact M7E4,bias=10,round=rtz,ftz"));
  // Sorted by key; the numerics key ignores the array.
  std::set<std::string> numerics;
  for (std::size_t i = 1; i < plan.points.size(); ++i) EXPECT_LT(plan.points[i - 1].key, plan.points[i].key);
  for (const SweepPoint& p : plan.points) numerics.insert(p.numerics_key);
  EXPECT_EQ(numerics.size(), 2u);
}

TEST(SweepSpec, KeysDependOnSettingsAndTraceContentNotOnSpelling) {
  TempDir dir;
  const SweepPlan a = plan_of(dir, "fixed: {acc: \"M7E4,bias=10,round=rtz,ftz\", array: 16x16}\n");
  const SweepPlan b = plan_of(dir, "fixed: {acc: \"M7E4,ftz,bias=10,round=rtz\", array: 16X16}\n");
  const SweepPlan c = plan_of(dir, "fixed: {acc: \"M7E4,bias=9,round=rtz,ftz\", array: 16x16}\n");
  ASSERT_EQ(a.points.size(), 1u);
  EXPECT_EQ(a.points[0].key, b.points[0].key);
  EXPECT_NE(a.points[0].key, c.points[0].key);
  EXPECT_EQ(a.traces[0].hash.rfind("sha256:", 0), 0u);
}

TEST(SweepSpec, ExplicitPointsAndLayerOverrides) {
  TempDir dir;
  const SweepPlan plan = plan_of(dir,
                                 "fixed: {mul: e4m3, prod: exact, acc: fp16}\n"
                                 "points:\n"
                                 "  - {acc: bf16}\n"
                                 "  - {layers: {first: {engine: fp32}, last: {order: sequential}}}\n"
                                 "axes: {node: [45, 7]}\n");
  ASSERT_EQ(plan.points.size(), 4u);
  std::size_t with_overrides = 0;
  for (const SweepPoint& p : plan.points) {
    if (p.config["overrides"].empty()) {
      EXPECT_EQ(p.config["acc"], "bf16");
    } else {
      ++with_overrides;
      EXPECT_EQ(p.config["acc"], "fp16");
      EXPECT_EQ(p.config["overrides"].dump(),
                R"([{"layer":"first","key":"engine","value":"fp32"},{"layer":"last","key":"order","value":"sequential"}])");
    }
  }
  EXPECT_EQ(with_overrides, 2u);
}

TEST(SweepSpec, SeveralTracesAreAnAxisWithTheirOwnHashes) {
  TempDir dir;
  const SweepPlan plan = parse_sweep_spec("traces: [" + kTrace + ", " + std::string(ACCSIM_TRACES_DIR) +
                                              "/fmnist_resnet]\nsamples: 2\naxes: {acc: [fp16, bf16]}\n",
                                          dir / "spec.yaml");
  ASSERT_EQ(plan.traces.size(), 2u);
  EXPECT_NE(plan.traces[0].hash, plan.traces[1].hash);
  EXPECT_EQ(plan.points.size(), 4u);
  std::set<std::string> numerics;
  for (const SweepPoint& p : plan.points) numerics.insert(p.numerics_key);
  EXPECT_EQ(numerics.size(), 4u);  // the same formats on another trace are another accuracy run
}

TEST(SweepSpec, ShardsSplitWholeNumericsGroupsAndCoverEveryPointOnce) {
  TempDir dir;
  const SweepPlan plan = plan_of(dir, "fixed: {mul: e4m3, prod: exact}\naxes:\n  acc: [fp16, bf16, fp32]\n  array: [8x8, 16x16]\n");
  std::multiset<std::string> all;
  for (std::size_t i = 0; i < 2; ++i) {
    std::set<std::string> groups;
    for (const SweepPoint& p : shard_points(plan, i, 2)) {
      all.insert(p.key);
      groups.insert(p.numerics_key);
    }
    for (std::size_t j = 0; j < 2; ++j) {
      if (j == i) continue;
      for (const SweepPoint& p : shard_points(plan, j, 2)) EXPECT_FALSE(groups.contains(p.numerics_key));
    }
  }
  EXPECT_EQ(all.size(), plan.points.size());
  for (const SweepPoint& p : plan.points) EXPECT_EQ(all.count(p.key), 1u);
}

TEST(SweepSpec, WithFewerGroupsThanShardsEveryShardGetsPoints) {
  TempDir dir;
  const SweepPlan plan = plan_of(dir, "fixed: {mul: e4m3, prod: exact, acc: fp16}\naxes: {array: [4x4, 8x8, 16x16, 32x32, 64x64]}\n");
  std::multiset<std::string> all;
  for (std::size_t i = 0; i < 3; ++i) {
    const std::vector<SweepPoint> share = shard_points(plan, i, 3);
    EXPECT_GE(share.size(), 1u);
    EXPECT_LE(share.size(), 2u);
    for (const SweepPoint& p : share) all.insert(p.key);
  }
  EXPECT_EQ(all.size(), 5u);
  for (const SweepPoint& p : plan.points) EXPECT_EQ(all.count(p.key), 1u);
}

TEST(SweepSpec, ErrorsNameFileLineAndKey) {
  TempDir dir;
  const std::string spec = (dir / "spec.yaml").string();
  const std::string head = "trace: " + kTrace + "\nsamples: 2\n";
  EXPECT_EQ(error_of(dir, head + "fixd: {mul: e4m3}\n").rfind(spec + ":3: fixd: unknown key", 0), 0u)
      << error_of(dir, head + "fixd: {mul: e4m3}\n");
  EXPECT_EQ(error_of(dir, head + "axes:\n  acc: [fp16, M7E99]\n").rfind(spec + ":4: axes.acc[1]: ", 0), 0u)
      << error_of(dir, head + "axes:\n  acc: [fp16, M7E99]\n");
  EXPECT_EQ(error_of(dir, head + "axes:\n  acc: []\n"), spec + ":4: axes.acc: is an empty list: the product of the axes would be empty");
  EXPECT_EQ(error_of(dir, head + "fixed: {colour: red}\n").rfind(spec + ":3: fixed.colour: unknown setting", 0), 0u);
  EXPECT_EQ(error_of(dir, "trace: /nonexistent/trace\n").rfind(spec + ":1: trace: cannot load the trace: ", 0), 0u)
      << error_of(dir, "trace: /nonexistent/trace\n");
  EXPECT_EQ(error_of(dir, head + "fixed: {array: 8x}\n").rfind(spec + ":3: fixed.array: ", 0), 0u);
  EXPECT_EQ(error_of(dir, head + "fixed: {node: 32}\n").rfind(spec + ":3: fixed.node: ", 0), 0u);
  EXPECT_EQ(error_of(dir, head + "fixed: {layers: {nosuchlayer: {acc: fp16}}}\n").rfind(spec + ":3: ", 0), 0u);
  EXPECT_EQ(error_of(dir, head + "fixed: {acc: fp16}\naxes: {acc: [bf16]}\n").rfind(spec + ":4: axes.acc[0]: 'acc' is already set", 0), 0u)
      << error_of(dir, head + "fixed: {acc: fp16}\naxes: {acc: [bf16]}\n");
  EXPECT_EQ(error_of(dir, head + "zip:\n  - {acc: [fp16, bf16], prod: [exact]}\n").rfind(spec + ":4: zip[0].prod: has 1 values", 0), 0u);
  EXPECT_EQ(error_of(dir, head + "axes: {acc: [fp16]}\nexclude: [{acc: fp16}]\n"), spec + ": every one of the 1 points is excluded: nothing to run");
  EXPECT_EQ(error_of(dir, "axes: [\n").rfind(spec + ":", 0), 0u);
  EXPECT_EQ(error_of(dir, head + "fixed: {[a]: b}\n").rfind(spec + ":3: unexpected YAML here: ", 0), 0u);
  EXPECT_EQ(error_of(dir, head + "fixed: {layers: {first: [1]}}\n"), spec + ":3: fixed.layers.first: must be a map of key: value");
  EXPECT_EQ(error_of(dir, "points:\n  - {trace: " + kTrace + "}\n  - {acc: fp16}\n")
                .rfind(spec + ":3: points[1].acc: this point names no trace", 0),
            0u)
      << error_of(dir, "points:\n  - {trace: " + kTrace + "}\n  - {acc: fp16}\n");
}

ordered_json record(const std::string& key, double top1, double area, double energy, const std::string& status = "ok") {
  ordered_json r;
  r["key"] = key;
  r["status"] = status;
  r["trace"] = {{"path", "t"}, {"hash", "sha256:x"}};
  r["samples"] = 10;
  r["config"] = {{"acc", "fp16"}};
  if (status == "ok") {
    r["top1"] = top1;
    r["area_um2"] = {{"pe", 1.0}, {"array", area}};
    r["energy_uj_per_inference"] = energy;
  }
  return r;
}

TEST(SweepStore, ParetoFlagsMatchABruteForceReading) {
  TempDir dir;
  PointRecords rs;
  // (top1, area, energy): b dominates a in area; c and d tie in area (both on
  // that front), d dominates c in energy.
  rs["a"] = record("a", 0.90, 200, 5);
  rs["b"] = record("b", 0.92, 150, 9);
  rs["c"] = record("c", 0.80, 100, 9);
  rs["d"] = record("d", 0.80, 100, 1);
  rs["e"] = record("e", 0, 0, 0, "failed");
  write_final(dir.path(), rs);
  EXPECT_EQ(rs["a"]["pareto"].dump(), R"({"area":false,"energy":true})");
  EXPECT_EQ(rs["b"]["pareto"].dump(), R"({"area":true,"energy":true})");  // the best top-1 is on both
  EXPECT_EQ(rs["c"]["pareto"].dump(), R"({"area":true,"energy":false})");
  EXPECT_EQ(rs["d"]["pareto"].dump(), R"({"area":true,"energy":true})");
  EXPECT_EQ(rs["e"]["pareto"].dump(), R"({"area":false,"energy":false})");
  std::ifstream csv(dir / "points.csv");
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header.rfind("key,status,error,trace,trace_hash,samples,mul,prod,acc,", 0), 0u);
}

TEST(SweepStore, TornLastLineIsCutOffBadMiddleLineIsAnError) {
  TempDir dir;
  {
    PointLog log(dir.path());
    log.append(record("k1", 0.5, 1, 1));
    log.append(record("k2", 0.6, 1, 1));
  }
  const std::string whole = read_file(dir / "points.jsonl");
  testing::write_bytes(dir / "points.jsonl", whole + R"({"key":"k3","sta)");
  LogRead r = read_point_log(dir.path(), false);
  EXPECT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.torn_bytes, 16u);
  EXPECT_EQ(read_file(dir / "points.jsonl").size(), whole.size() + 16);  // not repaired
  r = read_point_log(dir.path(), true);
  EXPECT_EQ(read_file(dir / "points.jsonl"), whole);

  testing::write_bytes(dir / "points.jsonl", "garbage\n" + whole);
  try {
    (void)read_point_log(dir.path(), true);
    ADD_FAILURE() << "accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind((dir / "points.jsonl").string() + ":1: not a point record", 0), 0u) << e.what();
  }
}

}  // namespace
}  // namespace accsim::sim
