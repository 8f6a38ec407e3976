// accsim check's comparison, rules and JUnit writer, on hand-written reports
// (the values in them are inputs chosen to sit on either side of a
// tolerance, not outputs of accsim).
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "models/numerics/identity.hpp"
#include "sim/check/compare.hpp"
#include "sim/check/junit.hpp"
#include "sim/check/rules.hpp"
#include "sim/check/subject.hpp"
#include "sim/check_command.hpp"
#include "sim/errors.hpp"
#include "tests/check/fixtures.hpp"

namespace accsim::sim::check {
namespace {

using nlohmann::json;
using testing::run_report;

Subject subject(const json& j, const std::string& name = "r.json") { return parse_report(j.dump(), name); }

std::vector<Check> checks(const json& base, const json& cur, const Rules& rules = {}) {
  return compare(subject(base, "base.json"), subject(cur, "cur.json"), rules);
}

const Check& find(const std::vector<Check>& cs, const std::string& scope, const std::string& metric) {
  const auto it = std::find_if(cs.begin(), cs.end(),
                               [&](const Check& c) { return c.scope == scope && c.metric == metric; });
  if (it == cs.end()) throw std::runtime_error("no check " + scope + " " + metric);
  return *it;
}

std::size_t failures(const std::vector<Check>& cs) {
  return static_cast<std::size_t>(std::count_if(cs.begin(), cs.end(), [](const Check& c) { return !c.passed; }));
}

TEST(CheckCompare, IdenticalReportsPass) {
  const auto cs = checks(run_report(), run_report());
  EXPECT_EQ(failures(cs), 0u);
  // top1, agreement, top1_fp32; 5 rates x 2 layers; energy and cycles of the network and of conv1.
  EXPECT_EQ(cs.size(), 3u + 10u + 4u);
}

TEST(CheckCompare, Top1DropAtTheToleranceHoldsAndBeyondFails) {
  json cur = run_report();
  cur["accuracy"]["lowbit"]["top1"] = 0.895;  // -0.5 points, the default tolerance
  EXPECT_TRUE(find(checks(run_report(), cur), "network", "top1").passed);
  cur["accuracy"]["lowbit"]["top1"] = 0.894;
  const Check c = find(checks(run_report(), cur), "network", "top1");
  EXPECT_FALSE(c.passed);
  EXPECT_NE(c.message.find("90.00%"), std::string::npos) << c.message;
  EXPECT_NE(c.message.find("89.40%"), std::string::npos) << c.message;
  EXPECT_NE(c.message.find("--max-top1-drop"), std::string::npos) << c.message;
  cur["accuracy"]["lowbit"]["top1"] = 0.99;  // improvements always pass
  EXPECT_TRUE(find(checks(run_report(), cur), "network", "top1").passed);
}

TEST(CheckCompare, EnergyRiseIsRelativeAndRiseFromZeroFails) {
  json cur = run_report();
  cur["energy"]["per_inference"]["total_pj"] = 1020.0;  // +2%
  EXPECT_TRUE(find(checks(run_report(), cur), "network", "energy").passed);
  cur["energy"]["per_inference"]["total_pj"] = 1021.0;
  EXPECT_FALSE(find(checks(run_report(), cur), "network", "energy").passed);
  Rules loose;
  loose.tolerances.max_energy_rise = 5;
  EXPECT_TRUE(find(checks(run_report(), cur, loose), "network", "energy").passed);

  json base = run_report();
  base["energy"]["layers"][0]["cycles_per_inference"] = 0;
  EXPECT_FALSE(find(checks(base, run_report()), "conv1", "cycles").passed);
}

TEST(CheckCompare, EventRateRiseIsInPoints) {
  json cur = run_report();
  cur["layers"][0]["rates"]["overflow"] = 0.0011;  // +0.01 points
  EXPECT_TRUE(find(checks(run_report(), cur), "conv1", "overflow").passed);
  cur["layers"][0]["rates"]["overflow"] = 0.00111;
  EXPECT_FALSE(find(checks(run_report(), cur), "conv1", "overflow").passed);
}

TEST(CheckCompare, UnavailableValues) {
  json cur = run_report();
  cur["layers"][1]["rates"]["swamp"] = 0.5;  // null in the baseline: now available passes
  EXPECT_TRUE(find(checks(run_report(), cur), "fc", "swamp").passed);
  cur = run_report();
  cur["energy"]["per_inference"].erase("total_pj");  // energy unavailable now
  const Check c = find(checks(run_report(), cur), "network", "energy");
  EXPECT_FALSE(c.passed);
  EXPECT_EQ(c.current_text, "n/a");
}

TEST(CheckCompare, ExtraFieldsAndTimingNeverBreakTheComparison) {
  json cur = run_report();
  cur["new_field"] = {{"x", 1.0}};
  cur["layers"][0]["rates"]["new_rate"] = 0.3;
  cur["timing"]["wall_seconds"] = 99.0;
  cur["command_line"] = {"accsim", "run", "--trace", "/elsewhere/t"};
  Rules exact;
  exact.exact = true;
  const auto cs = checks(run_report(), cur, exact);
  EXPECT_EQ(failures(cs), 0u);
  EXPECT_EQ(find(cs, "all", "every number").baseline_text, "21 numbers");  // counted by hand: timing and strings excluded
}

TEST(CheckCompare, ExactFailsOnAnyNumberAndNamesIt) {
  json cur = run_report();
  cur["layers"][0]["error"]["layer"]["snr_db"] = 30.4;  // not a gated metric
  EXPECT_EQ(failures(checks(run_report(), cur)), 0u);
  Rules exact;
  exact.exact = true;
  const Check c = find(checks(run_report(), cur, exact), "all", "every number");
  EXPECT_FALSE(c.passed);
  EXPECT_NE(c.message.find("layers[0].error.layer.snr_db: 30.5 -> 30.4"), std::string::npos) << c.message;

  cur = run_report();
  cur["accuracy"]["lowbit"]["top1"] = 0.91;  // an improvement is still a change
  EXPECT_FALSE(find(checks(run_report(), cur, exact), "network", "top1").passed);
  cur = run_report();
  cur["accuracy"]["lowbit"].erase("correct");
  EXPECT_NE(find(checks(run_report(), cur, exact), "all", "every number").message.find("accuracy.lowbit.correct: missing"),
            std::string::npos);
  cur = run_report();
  cur["layers"][0]["error"]["layer"]["max_abs"] = 1.0;  // "inf" in the baseline
  EXPECT_FALSE(find(checks(run_report(), cur, exact), "all", "every number").passed);
}

TEST(CheckCompare, MissingMetricFails) {
  json cur = run_report();
  cur.erase("energy");
  const auto cs = checks(run_report(), cur);
  EXPECT_FALSE(find(cs, "network", "energy").passed);
  EXPECT_EQ(find(cs, "network", "energy").current_text, "missing");
}

TEST(CheckCompare, IncomparableInputsAreRefused) {
  json cur = run_report();
  cur["trace"]["hash"] = "sha256:bb";
  try {
    (void)checks(run_report(), cur);
    FAIL() << "no error";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("trace hash differs"), std::string::npos) << m;
    EXPECT_NE(m.find("sha256:bb"), std::string::npos) << m;
    EXPECT_NE(m.find("sha256:aa"), std::string::npos) << m;
  }
  cur = run_report();
  cur["trace"]["samples"] = 200;
  EXPECT_THROW((void)checks(run_report(), cur), InputError);
  cur = run_report();
  cur["numerics_identity"] = "accsim-numerics-2";
  EXPECT_THROW((void)checks(run_report(), cur), InputError);
}

json gemm_report() {
  return json::parse(R"({
    "accsim_version": "0.1.0", "command": "gemm", "command_line": ["accsim", "gemm"],
    "numerics_identity": "accsim-numerics-1",
    "inputs": {"a": {"path": "A.npy", "hash": "sha256:a1"}, "b": {"path": "B.npy", "hash": "sha256:b1"}},
    "events": {
      "product": {"ops": 2000, "overflow": 0, "underflow": 20, "swamp": 0, "inexact": 0, "invalid": 0},
      "accumulate": {"ops": 1000, "overflow": 0, "underflow": 5, "swamp": 10, "inexact": 0, "invalid": 0},
      "merge": {"ops": 0, "overflow": 0, "underflow": 0, "swamp": 0, "inexact": 0, "invalid": 0}},
    "error": {"vs_quantized": {"snr_db": "inf"}, "vs_original": {"snr_db": 30.0}},
    "cycle": {"cycles": 7000}
  })");
}

TEST(CheckCompare, GemmRatesFromEventCountsAndSnr) {
  const auto same = checks(gemm_report(), gemm_report());
  EXPECT_EQ(failures(same), 0u);
  EXPECT_EQ(find(same, "gemm", "swamp").baseline_text, "1%");             // 10 of 1000 additions
  EXPECT_EQ(find(same, "gemm", "product_underflow").baseline_text, "1%");  // 20 of 2000 products
  json cur = gemm_report();
  cur["events"]["accumulate"]["swamp"] = 11;  // +0.1 points
  EXPECT_FALSE(find(checks(gemm_report(), cur), "gemm", "swamp").passed);
  cur = gemm_report();
  cur["error"]["vs_quantized"]["snr_db"] = 200.0;  // was exact
  EXPECT_FALSE(find(checks(gemm_report(), cur), "vs_quantized", "snr").passed);
  cur["error"]["vs_original"]["snr_db"] = 29.95;  // -0.05 dB
  EXPECT_TRUE(find(checks(gemm_report(), cur), "vs_original", "snr").passed);
  cur["error"]["vs_original"]["snr_db"] = 29.8;
  EXPECT_FALSE(find(checks(gemm_report(), cur), "vs_original", "snr").passed);
  cur = gemm_report();
  cur["inputs"]["b"]["hash"] = "sha256:b2";
  EXPECT_THROW((void)checks(gemm_report(), cur), InputError);
}

TEST(CheckCompare, NumericsIdentityNamesItsVersion) {
  EXPECT_EQ(std::string(num::kNumericsIdentity), "accsim-numerics-" + std::to_string(num::kNumericsVersion));
}

TEST(CheckLoad, BadReportsAreInputErrors) {
  auto bad = [](const std::string& text, const std::string& needle) {
    try {
      (void)parse_report(text, "r.json");
      ADD_FAILURE() << "accepted: " << text.substr(0, 60);
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const std::string good = run_report().dump();
  bad(good.substr(0, good.size() / 2), "not valid JSON");
  bad("[1, 2]", "not an accsim report");
  bad(R"({"command": "cost"})", "accsim cost");
  json j = run_report();
  j["accuracy"]["lowbit"]["top1"] = "nan";
  bad(j.dump(), "NaN");
  j = run_report();
  j["accuracy"]["lowbit"]["top1"] = 1.5;
  bad(j.dump(), "not a fraction");
  j = run_report();
  j["layers"][0]["rates"].erase("swamp");
  bad(j.dump(), "layers[0].rates.swamp");
  j = run_report();
  j.erase("numerics_identity");
  bad(j.dump(), "numerics_identity");
  j = run_report();
  j["energy"]["per_inference"]["total_pj"] = -1.0;
  bad(j.dump(), "negative");
  j = run_report();
  j["trace"]["samples"] = 1e30;
  bad(j.dump(), "not a sample count");
  bad(R"({"command": "run", "accsim_version": "0.1.0", "numerics_identity": "x", "command_line": [],
          "trace": {"hash": "h", "samples": 1}, "accuracy": {"lowbit": {"top1": 1e999}}})",
      "number overflow");
}

// Whatever a report file holds, loading it either works or is an InputError
// (one line, exit 2): truncations everywhere and seeded byte changes.
TEST(CheckLoad, DamagedReportsAreInputErrorsNeverCrashes) {
  const std::string good = run_report().dump();
  std::vector<std::string> damaged;
  for (std::size_t n = 0; n < good.size(); n += 3) damaged.push_back(good.substr(0, n));
  std::uint64_t state = 12345;
  const std::string replacements = "0-9e.\"{}[],:nul \x01\xff";
  for (int i = 0; i < 2000; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    std::string d = good;
    d[(state >> 33) % d.size()] = replacements[(state >> 17) % replacements.size()];
    damaged.push_back(d);
  }
  for (const std::string& d : damaged) {
    try {
      (void)parse_report(d, "r.json");
    } catch (const InputError&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what() << " on: " << d;
    }
  }
}

TEST(CheckRules, TolerancesMustBeNumbersAtLeastZero) {
  EXPECT_EQ(parse_tolerance("0", "--x"), 0.0);
  EXPECT_EQ(parse_tolerance("0.25", "--x"), 0.25);
  for (const char* text : {"-1", "abc", "nan", "inf", "", "1x", " 1"}) {
    EXPECT_THROW((void)parse_tolerance(text, "--x"), InputError) << text;
  }
}

TEST(CheckRules, LayerRuleBeatsMetricRuleBeatsTolerances) {
  Rules r;
  parse_rules("tolerances:\n  max-event-rise: 0.5\n  max-top1-drop: 2\nmetrics:\n  swamp: 1\n"
              "layers:\n  conv1:\n    swamp: 3\n",
              "rules.yaml", r);
  EXPECT_EQ(r.tolerances.max_top1_drop, 2.0);
  const Metric conv1_swamp{"conv1", "swamp", "f", Rule::rise_points, "%", 0.0};
  const Metric fc_swamp{"fc", "swamp", "f", Rule::rise_points, "%", 0.0};
  const Metric fc_overflow{"fc", "overflow", "f", Rule::rise_points, "%", 0.0};
  EXPECT_EQ(r.tolerance(conv1_swamp), 3.0);
  EXPECT_EQ(r.tolerance(fc_swamp), 1.0);
  EXPECT_EQ(r.tolerance(fc_overflow), 0.5);

  json cur = run_report();
  cur["layers"][0]["rates"]["swamp"] = 0.03;  // +2 points: within conv1's 3, beyond fc's 1
  const Check c = find(checks(run_report(), cur, r), "conv1", "swamp");
  EXPECT_TRUE(c.passed);
  EXPECT_EQ(c.limit, "rise <= 3 pts");
}

TEST(CheckRules, BadRulesFilesAreInputErrors) {
  for (const char* yaml : {"tolerances: [1]", "unknown: 1", "metrics:\n  speed: 1", "metrics:\n  top1: -1",
                           "metrics:\n  top1: abc", "tolerances:\n  max-speed: 1", "layers:\n  conv1: 3",
                           "exact: maybe", "- a", "tolerances: {max-top1-drop: [", "layers:\n  conv1:\n    top2: 1"}) {
    Rules r;
    EXPECT_THROW(parse_rules(yaml, "rules.yaml", r), InputError) << yaml;
  }
  Rules r;
  parse_rules("", "rules.yaml", r);  // empty: the defaults
  EXPECT_EQ(r.tolerances.max_top1_drop, Tolerances{}.max_top1_drop);
  parse_rules("exact: true", "rules.yaml", r);
  EXPECT_TRUE(r.exact);
}

TEST(CheckRules, LayersThatNeitherReportHasAreRefused) {
  Rules r;
  parse_rules("layers:\n  conv9:\n    swamp: 1\n", "rules.yaml", r);
  EXPECT_THROW(check_rule_layers(r, subject(run_report()), subject(run_report())), InputError);
  parse_rules("layers:\n  conv1:\n    swamp: 1\n", "rules.yaml", r);
  r.layers.erase("conv9");
  EXPECT_NO_THROW(check_rule_layers(r, subject(run_report()), subject(run_report())));
}

TEST(CheckCommandLine, RecordsWhatChangesNumbersOnly) {
  std::vector<std::string> args = {"/x/build/accsim", "run",     "--trace",  "t",         "--threads", "4",
                                   "--report",        "r.json",  "--timing", "--threads=2", "--samples", "10",
                                   "--out=C.npy",     "--vcd",   "w.vcd",    "--report-x"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  const std::vector<std::string> want = {"accsim", "run", "--trace", "t", "--samples", "10", "--report-x"};
  EXPECT_EQ(recorded_command_line(argv), want);
}

TEST(CheckJunit, EscapesMarkupAndControlCharacters) {
  EXPECT_EQ(xml_escape("a<b>&\"c'\x01\n"), "a&lt;b&gt;&amp;&quot;c&apos;?&#10;");
  Check ok;
  ok.suite = "s<1>";
  ok.scope = "network";
  ok.metric = "top1";
  Check bad = ok;
  bad.passed = false;
  bad.message = "dropped & failed";
  const std::string x = junit_xml({ok, bad}, "t");
  EXPECT_NE(x.find("<testsuites name=\"t\" tests=\"2\" failures=\"1\""), std::string::npos) << x;
  EXPECT_NE(x.find("<testsuite name=\"s&lt;1&gt;\" tests=\"2\" failures=\"1\""), std::string::npos) << x;
  EXPECT_NE(x.find("<failure type=\"regression\" message=\"dropped &amp; failed\">"), std::string::npos) << x;
}

}  // namespace
}  // namespace accsim::sim::check
