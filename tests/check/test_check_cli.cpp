// `accsim check` end to end: the built binary on hand-written reports and
// sweep folders (tests/check/fixtures.hpp), on a real gemm report for
// --rerun, and its JUnit output through tests/check/check_junit.py.
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/check/fixtures.hpp"
#include "tests/cli/test_util.hpp"

namespace accsim::sim::check {
namespace {

using nlohmann::json;
using sim::testing::read_bytes;
using sim::testing::run_accsim;
using sim::testing::RunResult;
using sim::testing::shell_quote;
using sim::testing::TempDir;
using sim::testing::write_bytes;
using testing::run_report;
using testing::sweep_point;

void write_json(const std::filesystem::path& path, const json& j) { write_bytes(path, j.dump(2) + "\n"); }

void write_points(const std::filesystem::path& dir, const std::vector<json>& points) {
  std::filesystem::create_directories(dir);
  std::string text;
  for (const json& p : points) text += p.dump() + "\n";
  write_bytes(dir / "points.jsonl", text);
}

// check_junit.py's verdict on a JUnit file; expected counts are checked too.
int junit_check(const std::filesystem::path& xml, int tests, int failures) {
  const std::string cmd = std::string(ACCSIM_PYTHON) + " " + shell_quote(ACCSIM_CHECK_JUNIT) + " " +
                          shell_quote(xml.string()) + " " + std::to_string(tests) + " " + std::to_string(failures) +
                          " >/dev/null";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void expect_one_line_error(const RunResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("accsim: error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

TEST(CheckCli, PassRegressionAndFailuresFirst) {
  TempDir dir;
  write_json(dir / "base.json", run_report());
  json cur = run_report();
  cur["layers"][1]["rates"]["swamp"] = 0.0;  // fine (was null)
  cur["layers"][0]["rates"]["swamp"] = 0.05;  // +4 points: a regression
  write_json(dir / "cur.json", cur);

  RunResult r = run_accsim({"check", "base.json", "--baseline", "base.json"}, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("PASS: all 17 checks hold"), std::string::npos) << r.out;

  r = run_accsim({"check", "cur.json", "--baseline", "base.json"}, dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const auto fail_row = r.out.find("FAIL    conv1");
  const auto first_ok = r.out.find("ok      ");
  ASSERT_NE(fail_row, std::string::npos) << r.out;
  EXPECT_LT(fail_row, first_ok) << r.out;
  EXPECT_NE(r.out.find("conv1 swamp: baseline 1%, current 5%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--max-event-rise"), std::string::npos) << r.out;

  // A looser flag lets it pass; a rules file's layer rule wins over the flag.
  r = run_accsim({"check", "cur.json", "--baseline", "base.json", "--max-event-rise", "5"}, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  write_bytes(dir / "rules.yaml", "tolerances:\n  max-event-rise: 5\nlayers:\n  conv1:\n    swamp: 3\n");
  r = run_accsim({"check", "cur.json", "--baseline", "base.json", "--rules", "rules.yaml"}, dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("rules.yaml: layers: 'conv1': swamp"), std::string::npos) << r.out;
  r = run_accsim({"check", "cur.json", "--baseline", "base.json", "--rules", "rules.yaml", "--max-event-rise", "0"},
                 dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
}

TEST(CheckCli, JunitIsValidAndCarriesTheFailure) {
  TempDir dir;
  write_json(dir / "base.json", run_report());
  json cur = run_report();
  cur["accuracy"]["lowbit"]["top1"] = 0.8;
  write_json(dir / "cur.json", cur);
  const RunResult r = run_accsim({"check", "cur.json", "--baseline", "base.json", "--junit", "out.xml"}, dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(junit_check(dir / "out.xml", 17, 1), 0);
  const std::string xml = read_bytes(dir / "out.xml");
  EXPECT_NE(xml.find("name=\"network: top1\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("baseline 90.00%, current 80.00%"), std::string::npos) << xml;
  EXPECT_NE(xml.find("drop &lt;= 0.5 pts"), std::string::npos) << xml;

  // --exact adds one "every number" case.
  EXPECT_EQ(run_accsim({"check", "base.json", "--baseline", "base.json", "--exact", "--junit", "same.xml"}, dir.path())
                .exit_code,
            0);
  EXPECT_EQ(junit_check(dir / "same.xml", 18, 0), 0);
}

TEST(CheckCli, UnusableInputIsOneLineExit2AndWritesNothing) {
  TempDir dir;
  write_json(dir / "base.json", run_report());
  const std::string good = run_report().dump();
  write_bytes(dir / "truncated.json", good.substr(0, good.size() - 20));
  write_bytes(dir / "text.json", "not json\n");
  json j = run_report();
  j["accuracy"]["lowbit"]["agreement_with_fp32"] = "nan";
  write_json(dir / "nan.json", j);
  j = run_report();
  j.erase("layers");
  write_json(dir / "nolayers.json", j);
  j = run_report();
  j["trace"]["hash"] = "sha256:other";
  write_json(dir / "othertrace.json", j);
  write_json(dir / "cost.json", json{{"accsim_version", "0.1.0"}, {"command", "cost"}});
  write_points(dir / "sweep", {sweep_point("p1", "M7E4", 0.9)});

  struct Case {
    std::vector<std::string> args;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {{"missing.json", "--baseline", "base.json"}, "missing.json: does not exist"},
      {{"base.json", "--baseline", "missing.json"}, "missing.json: does not exist"},
      {{"truncated.json", "--baseline", "base.json"}, "truncated.json: not valid JSON"},
      {{"text.json", "--baseline", "base.json"}, "text.json: not valid JSON"},
      {{"nan.json", "--baseline", "base.json"}, "'accuracy.lowbit.agreement_with_fp32' is NaN"},
      {{"nolayers.json", "--baseline", "base.json"}, "'layers' is missing"},
      {{"othertrace.json", "--baseline", "base.json"}, "trace hash differs"},
      {{"cost.json", "--baseline", "base.json"}, "accsim cost"},
      {{"sweep", "--baseline", "base.json"}, "is a sweep folder but the baseline base.json is a run report"},
      {{"base.json", "--baseline", "base.json", "--max-top1-drop", "-1"}, "--max-top1-drop: -1 is negative"},
      {{"base.json", "--baseline", "base.json", "--max-energy-rise", "lots"}, "--max-energy-rise: 'lots' is not"},
      {{"base.json", "--baseline", "base.json", "--junit", "nodir/out.xml"}, "nodir/out.xml: directory"},
      {{"base.json"}, "--baseline: required"},
      {{"sweep", "--rerun"}, "--rerun: works on run and gemm reports"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"check"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    if (std::find(args.begin(), args.end(), "--junit") == args.end()) args.insert(args.end(), {"--junit", "out.xml"});
    const RunResult r = run_accsim(args, dir.path());
    SCOPED_TRACE(c.args.front());
    expect_one_line_error(r, c.needle);
    EXPECT_FALSE(std::filesystem::exists(dir / "out.xml"));
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "nodir"));
}

TEST(CheckCli, SweepFoldersMatchPointsByConfiguration) {
  TempDir dir;
  // The baseline ran elsewhere (another path to the same trace).
  write_points(dir / "base", {sweep_point("a", "M7E4", 0.90, "/ci/traces/tiny"),
                              sweep_point("b", "M6E4", 0.88, "/ci/traces/tiny"),
                              sweep_point("c", "M5E4", 0.80, "/ci/traces/tiny"),
                              sweep_point("d", "M4E4", 0.50, "/ci/traces/tiny")});
  json failed = sweep_point("d", "M4E4", 0, "traces/tiny");
  failed["status"] = "failed";
  failed["error"] = "synthesis failed";
  json first_try = sweep_point("b", "M6E4", 0.10, "traces/tiny");  // superseded by the later record of b
  write_points(dir / "same", {first_try, sweep_point("c", "M5E4", 0.80, "traces/tiny"),
                              sweep_point("a", "M7E4", 0.90, "traces/tiny"), sweep_point("b", "M6E4", 0.88, "traces/tiny"),
                              sweep_point("d", "M4E4", 0.50, "traces/tiny")});
  RunResult r = run_accsim({"check", "same", "--baseline", "base", "--junit", "same.xml"}, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // Per point: top1, agreement, top1_fp32, 4 rates of one layer, cycles, 2 areas, energy = 11.
  EXPECT_EQ(junit_check(dir / "same.xml", 44, 0), 0);

  write_points(dir / "cur", {sweep_point("a", "M7E4", 0.90, "traces/tiny"),
                             sweep_point("b", "M6E4", 0.85, "traces/tiny"),  // -3 points
                             failed,                                          // failed now
                             sweep_point("e", "M3E4", 0.40, "traces/tiny")});  // new; c is missing
  r = run_accsim({"check", "cur", "--baseline", "base", "--junit", "cur.xml"}, dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("b: network top1: baseline 88.00%, current 85.00%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("point c is in the baseline but missing from the report"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("point d ran in the baseline but failed now: synthesis failed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("point e is in the report but not in the baseline"), std::string::npos) << r.out;
  // a: 11 checks, b: 11 (1 failed), c missing, d failed, e new.
  EXPECT_EQ(junit_check(dir / "cur.xml", 25, 4), 0);

  write_points(dir / "other", {sweep_point("a", "M7E4", 0.90, "traces/tiny", "sha256:bb")});
  expect_one_line_error(run_accsim({"check", "other", "--baseline", "base"}, dir.path()), "trace hash (point a) differs");
  json more_samples = sweep_point("a", "M7E4", 0.90, "traces/tiny");
  more_samples["samples"] = 200;
  write_points(dir / "other", {more_samples});
  expect_one_line_error(run_accsim({"check", "other", "--baseline", "base"}, dir.path()), "samples (point a) differs");
  write_bytes(dir / "other" / "points.jsonl", sweep_point("a", "M7E4", 0.9).dump() + "\n{\"status\": \"o");
  expect_one_line_error(run_accsim({"check", "other", "--baseline", "base"}, dir.path()), "points.jsonl:2: not valid JSON");
  std::filesystem::create_directories(dir / "empty");
  expect_one_line_error(run_accsim({"check", "empty", "--baseline", "base"}, dir.path()), "has no points.jsonl");
}

TEST(CheckCli, RerunDemandsTheSameNumbers) {
  TempDir dir;
  const std::string examples = std::string(ACCSIM_SOURCE_DIR) + "/examples/gemm/";
  const RunResult made = run_accsim({"gemm", "--a", examples + "A.npy", "--b", examples + "B.npy", "--mul", "e4m3",
                                     "--acc", "M7E4,bias=10,round=rtz,ftz", "--order", "chunked:16", "--threads", "1",
                                     "--report", "r.json", "--out", "C.npy"},
                                    dir.path());
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string c_before = read_bytes(dir / "C.npy");
  json report = json::parse(read_bytes(dir / "r.json"));
  const std::vector<std::string> want = {"accsim", "gemm", "--a", examples + "A.npy", "--b", examples + "B.npy",
                                         "--mul", "e4m3", "--acc", "M7E4,bias=10,round=rtz,ftz", "--order",
                                         "chunked:16"};
  EXPECT_EQ(report["command_line"].get<std::vector<std::string>>(), want);

  RunResult r = run_accsim({"check", "r.json", "--rerun"}, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("every number"), std::string::npos) << r.out;
  EXPECT_EQ(read_bytes(dir / "C.npy"), c_before);  // the rerun's outputs went elsewhere

  // A report whose numbers its own command does not reproduce.
  report["events"]["accumulate"]["swamp"] = report["events"]["accumulate"]["swamp"].get<std::uint64_t>() + 1;
  write_json(dir / "tampered.json", report);
  r = run_accsim({"check", "tampered.json", "--rerun"}, dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("events.accumulate.swamp"), std::string::npos) << r.out;

  report["command_line"] = {"accsim", "cost", "--mul", "e4m3"};
  write_json(dir / "othercommand.json", report);
  expect_one_line_error(run_accsim({"check", "othercommand.json", "--rerun"}, dir.path()), "not 'accsim gemm'");
  report["command_line"] = {"accsim", "gemm", "--a", "missing.npy", "--b", "missing.npy", "--mul", "e4m3", "--acc",
                            "fp32"};
  write_json(dir / "broken.json", report);
  expect_one_line_error(run_accsim({"check", "broken.json", "--rerun"}, dir.path()), "exited with code 2");
}

}  // namespace
}  // namespace accsim::sim::check
