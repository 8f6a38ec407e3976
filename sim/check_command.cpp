#include "sim/check_command.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "sim/check/compare.hpp"
#include "sim/check/junit.hpp"
#include "sim/check/rules.hpp"
#include "sim/check/subject.hpp"
#include "sim/errors.hpp"
#include "sim/output_file.hpp"

extern char** environ;

namespace accsim::sim {
namespace {

namespace fs = std::filesystem;
using check::Check;
using check::Subject;

check::Rules make_rules(const CheckOptions& o) {
  check::Rules rules;
  if (!o.rules_path.empty()) check::read_rules(o.rules_path, rules);
  // Flags override the rules file's tolerances block (its per-metric and
  // per-layer rules stay more specific).
  const std::pair<const char*, const std::string*> flags[] = {
      {"--max-top1-drop", &o.max_top1_drop},     {"--max-agreement-drop", &o.max_agreement_drop},
      {"--max-energy-rise", &o.max_energy_rise}, {"--max-area-rise", &o.max_area_rise},
      {"--max-cycles-rise", &o.max_cycles_rise}, {"--max-event-rise", &o.max_event_rise},
      {"--max-snr-drop", &o.max_snr_drop}};
  for (const auto& [flag, text] : flags) {
    if (text->empty()) continue;
    check::set_tolerance(rules.tolerances, flag, check::parse_tolerance(*text, flag));
  }
  if (o.exact) rules.exact = true;
  return rules;
}

// A scratch folder for --rerun's outputs, removed at scope exit.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (fs::temp_directory_path() / "accsim-check-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw InputError("--rerun", "cannot create a temporary folder");
    path_ = tmpl;
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string last_line(const std::string& text) {
  std::istringstream lines(text);
  std::string line, last;
  while (std::getline(lines, line)) {
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  }
  return last;
}

// The report's own command line again, with this build of accsim; its
// outputs (--report, and gemm's --out and --vcd) go to a scratch folder.
// Returns the fresh report's text.
std::string rerun(const Subject& report, const CheckOptions& o) {
  const std::string name = report.path.string();
  const std::vector<std::string>& argv = report.command_line;
  const char* expected = report.kind == check::Kind::run ? "run" : "gemm";
  if (argv.size() < 2) {
    throw InputError(name, "field 'command_line' is empty: the report does not say how it was made");
  }
  if (argv[1] != expected) {
    throw InputError(name, fmt::format("field 'command_line' runs 'accsim {}', not 'accsim {}'", one_line(argv[1]),
                                       expected));
  }
  const ScratchDir scratch;
  std::error_code ec;
  const fs::path binary = o.accsim_binary.empty() ? fs::read_symlink("/proc/self/exe", ec) : fs::path(o.accsim_binary);
  if (ec || binary.empty()) throw InputError("--rerun", "cannot find the accsim executable to run");
  std::vector<std::string> args{binary.string(), argv[1]};
  const fs::path fresh = scratch.path() / "report.json";
  bool has_report = false;
  for (std::size_t i = 2; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    bool redirected = false;
    for (const char* flag : {"--report", "--out", "--vcd"}) {
      const std::string f(flag);
      const fs::path target = f == "--report" ? fresh : scratch.path() / (f.substr(2) + ".out");
      if (a == f && i + 1 < argv.size()) {
        args.insert(args.end(), {f, target.string()});
        ++i;
      } else if (a.starts_with(f + "=")) {
        args.push_back(f + "=" + target.string());
      } else {
        continue;
      }
      redirected = true;
      has_report = has_report || f == "--report";
      break;
    }
    if (!redirected) args.push_back(a);
  }
  if (!has_report) args.insert(args.end(), {"--report", fresh.string()});

  const fs::path log = scratch.path() / "log.txt";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> cargs;
  for (std::string& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = ::posix_spawn(&pid, binary.c_str(), &actions, nullptr, cargs.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    throw InputError("--rerun", fmt::format("cannot run {}: {}", binary.string(), std::generic_category().message(spawned)));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw InputError("--rerun", "lost the rerun's process");
  }
  std::string shown;
  for (std::size_t i = 1; i < argv.size(); ++i) shown += " " + argv[i];
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    const std::string why = WIFEXITED(status) ? fmt::format("exited with code {}", WEXITSTATUS(status))
                                              : fmt::format("was killed by signal {}", WTERMSIG(status));
    throw InputError("--rerun", fmt::format("'accsim{}' {}: {}", one_line(shown), why, one_line(last_line(read_text(log)))));
  }
  if (!fs::exists(fresh, ec)) throw InputError("--rerun", "the rerun wrote no report");
  return read_text(fresh);
}

std::string shorten(std::string s, std::size_t width) {
  if (s.size() > width) s = "..." + s.substr(s.size() - width + 3);
  return s;
}

std::string table(const Subject& report, const Subject& baseline, bool have_baseline, const check::Rules& rules,
                  const std::vector<Check>& checks, bool rerun_done) {
  std::string s;
  auto line = [&s](const std::string& text) {
    s += text;
    s += '\n';
  };
  line(fmt::format("accsim check: {} {}{}", check::to_string(report.kind), report.path.string(),
                   have_baseline ? fmt::format(" against the baseline {}", baseline.path.string()) : ""));
  if (have_baseline) {
    std::vector<std::string> same;
    for (const auto& [name, value] : baseline.units.at(0).identity) {
      // Hashes shortened here; a mismatch's error message gives them whole.
      const std::string shown = value.starts_with("sha256:") && value.size() > 23 ? value.substr(0, 23) + "..." : value;
      if (baseline.kind != check::Kind::sweep) same.push_back(fmt::format("{} {}", name, shown));
    }
    if (baseline.kind == check::Kind::sweep) same.push_back("trace hash of every matched point");
    if (!baseline.numerics_identity.empty()) same.push_back("numerics " + baseline.numerics_identity);
    std::string joined;
    for (const std::string& x : same) joined += (joined.empty() ? "" : ", ") + x;
    line(fmt::format("  same        {}", joined));
    if (!baseline.accsim_version.empty() || !report.accsim_version.empty()) {
      line(fmt::format("  accsim      {} (baseline {})", report.accsim_version.empty() ? "?" : report.accsim_version,
                       baseline.accsim_version.empty() ? "?" : baseline.accsim_version));
    }
    if (rules.exact) {
      line("  tolerance   --exact: every number identical");
    } else {
      const check::Tolerances& t = rules.tolerances;
      line(fmt::format("  tolerances  top-1 drop {:g} pts, agreement drop {:g} pts, event rate rise {:g} pts, energy "
                       "rise {:g}%, area rise {:g}%, cycles rise {:g}%, SNR drop {:g} dB{}",
                       t.max_top1_drop, t.max_agreement_drop, t.max_event_rise, t.max_energy_rise, t.max_area_rise,
                       t.max_cycles_rise, t.max_snr_drop,
                       rules.source.empty() ? "" : fmt::format("; per metric and layer: {}", rules.source)));
    }
  }
  if (rerun_done) line("  rerun       the report's own command line, run again: every number must be identical");

  std::set<std::string> suites;
  for (const Check& c : checks) suites.insert(c.suite);
  const bool many = suites.size() > 1;
  auto where = [&](const Check& c) { return many ? c.suite + " " + c.scope : c.scope; };
  std::size_t where_width = 5;
  for (const Check& c : checks) where_width = std::max(where_width, where(c).size());
  where_width = std::min<std::size_t>(where_width, 44);
  line("");
  line(fmt::format("  {:<8}{:<{}}  {:<18}{:>15}{:>15}{:>14}  {}", "verdict", "where", where_width, "metric", "baseline",
                   "current", "difference", "tolerance"));
  for (const Check& c : checks) {
    line(fmt::format("  {:<8}{:<{}}  {:<18}{:>15}{:>15}{:>14}  {}", c.passed ? "ok" : "FAIL",
                     shorten(where(c), where_width), where_width, c.metric, c.baseline_text, c.current_text,
                     c.difference, c.limit));
  }
  const auto failed = std::count_if(checks.begin(), checks.end(), [](const Check& c) { return !c.passed; });
  line("");
  if (failed == 0) {
    line(fmt::format("  PASS: all {} checks hold", checks.size()));
  } else {
    line(fmt::format("  FAIL: {} of {} checks regressed:", failed, checks.size()));
    for (const Check& c : checks) {
      if (!c.passed) line(fmt::format("    {}{}", many ? c.suite + ": " : "", c.message));
    }
    line("  (a change meant to move these numbers updates the baseline: docs/check.md)");
  }
  return s;
}

int check_or_throw(const CheckOptions& o, std::ostream& out) {
  if (o.report_path.empty()) throw InputError("REPORT", "required: a report of accsim run or gemm, or a sweep folder");
  if (o.baseline_path.empty() && !o.rerun) {
    throw InputError("--baseline", "required (or --rerun, which checks a report against its own command run again)");
  }
  const check::Rules rules = make_rules(o);
  if (!o.junit_path.empty()) check_writable_target(o.junit_path);

  const Subject report = check::load_subject(o.report_path);
  std::optional<Subject> baseline;
  std::vector<Check> checks;
  if (!o.baseline_path.empty()) {
    baseline = check::load_subject(o.baseline_path);
    check::check_compatible(*baseline, report);
    check::check_rule_layers(rules, *baseline, report);
    checks = check::compare(*baseline, report, rules);
  }
  if (o.rerun) {
    if (report.kind == check::Kind::sweep) {
      throw InputError("--rerun", "works on run and gemm reports; for a sweep, run it again into a new folder and "
                                  "check that against this one with --exact");
    }
    const Subject fresh = check::parse_report(rerun(report, o), "rerun of " + report.path.string());
    check::Rules exact;
    exact.exact = true;
    std::vector<Check> again = check::compare(report, fresh, exact, "rerun: ");
    checks.insert(checks.end(), again.begin(), again.end());
  }
  // Failures first, each group in the reports' order.
  std::stable_partition(checks.begin(), checks.end(), [](const Check& c) { return !c.passed; });

  std::optional<StagedFile> junit;
  if (!o.junit_path.empty()) junit.emplace(o.junit_path, check::junit_xml(checks, "accsim check " + o.report_path));
  out << table(report, baseline ? *baseline : report, baseline.has_value(), rules, checks, o.rerun);
  if (junit) {
    junit->commit();
    out << "  wrote JUnit " << o.junit_path << '\n';
  }
  const bool failed = std::any_of(checks.begin(), checks.end(), [](const Check& c) { return !c.passed; });
  return failed ? kExitRegression : kExitOk;
}

}  // namespace

std::vector<std::string> recorded_command_line(std::span<char* const> argv) {
  std::vector<std::string> out{"accsim"};
  for (std::size_t i = 1; i < argv.size(); ++i) {
    const std::string_view a = argv[i] != nullptr ? argv[i] : "";
    if (a == "--timing") continue;
    bool dropped = false;
    for (const std::string_view flag : {"--threads", "--report", "--out", "--vcd"}) {
      if (a == flag) {
        ++i;  // and its value
      } else if (!(a.starts_with(flag) && a.size() > flag.size() && a[flag.size()] == '=')) {
        continue;
      }
      dropped = true;
      break;
    }
    if (!dropped) out.emplace_back(a);
  }
  return out;
}

CLI::App* setup_check(CLI::App& parent, CheckOptions& o) {
  CLI::App* cmd = parent.add_subcommand(
      "check",
      "The regression gate: compare a report of accsim run or gemm (or a sweep folder) with a baseline within "
      "tolerances; exit 0 when every check holds, 1 when any regresses, 2 when they cannot be compared "
      "(docs/check.md)");
  cmd->add_option("REPORT", o.report_path, "report.json of accsim run or gemm, or a sweep folder")->type_name("REPORT");
  cmd->add_option("--baseline", o.baseline_path, "the baseline: a report or sweep folder of the same kind")
      ->type_name("BASE");
  const char* tol = "Tolerances (defaults: docs/check.md)";
  cmd->add_option("--max-top1-drop", o.max_top1_drop, "top-1 (low-bit and FP32) may fall by this many points (0.5)")
      ->type_name("PTS")
      ->group(tol);
  cmd->add_option("--max-agreement-drop", o.max_agreement_drop,
                  "agreement with FP32 may fall by this many points (1)")
      ->type_name("PTS")
      ->group(tol);
  cmd->add_option("--max-energy-rise", o.max_energy_rise, "energy may rise by this many percent (2)")
      ->type_name("PCT")
      ->group(tol);
  cmd->add_option("--max-area-rise", o.max_area_rise, "area (PE, array) may rise by this many percent (1)")
      ->type_name("PCT")
      ->group(tol);
  cmd->add_option("--max-cycles-rise", o.max_cycles_rise, "cycles may rise by this many percent (1)")
      ->type_name("PCT")
      ->group(tol);
  cmd->add_option("--max-event-rise", o.max_event_rise,
                  "overflow, underflow, swamping and product event rates (per layer) may rise by this many points "
                  "(0.01)")
      ->type_name("PTS")
      ->group(tol);
  cmd->add_option("--max-snr-drop", o.max_snr_drop, "a gemm's SNR may fall by this many dB (0.1)")
      ->type_name("DB")
      ->group(tol);
  cmd->add_flag("--exact", o.exact, "every number identical (a change that must not move a bit)")->group(tol);
  cmd->add_option("--rules", o.rules_path, "YAML tolerances per metric and per layer (docs/check.md)")
      ->type_name("FILE")
      ->group(tol);
  cmd->add_option("--junit", o.junit_path, "write JUnit XML (one testcase per metric and layer or point)")
      ->type_name("OUT.xml");
  cmd->add_flag("--rerun", o.rerun,
                "run the report's own recorded command line again with this accsim and demand identical numbers");
  return cmd;
}

int run_check(const CheckOptions& options, std::ostream& out, std::ostream& err) {
  bool finished = false;
  const int code = guarded(err, [&] {
    const int verdict = check_or_throw(options, out);
    finished = true;
    return verdict;
  });
  // Exit code 1 means "regressed" to a CI job: anything that stopped the
  // comparison (an internal error, out of memory) gave no verdict, so it is 2.
  return finished ? code : kExitUsage;
}

int run_check(const CheckOptions& options) { return run_check(options, std::cout, std::cerr); }

}  // namespace accsim::sim
