// `accsim check`: the regression gate. A report (of `accsim run` or `accsim
// gemm`) or a sweep folder against a committed baseline, metric by metric
// within tolerances; a readable table, optional JUnit XML; exit 0 when every
// check holds, 1 when any regresses, 2 when the inputs cannot be compared.
#pragma once

#include <iosfwd>
#include <span>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace accsim::sim {

inline constexpr int kExitRegression = 1;

// Everything the command line can say, as given (tolerances unparsed, ""
// when not given): run_check validates, so it can be called without CLI11.
struct CheckOptions {
  std::string report_path;    // REPORT: a report file or a sweep folder
  std::string baseline_path;  // --baseline BASE
  std::string max_top1_drop, max_agreement_drop, max_energy_rise, max_area_rise, max_cycles_rise, max_event_rise,
      max_snr_drop;
  bool exact = false;
  std::string rules_path;  // --rules FILE (YAML)
  std::string junit_path;  // --junit OUT.xml
  bool rerun = false;      // run REPORT's recorded command again; demand identical numbers
  std::string accsim_binary;  // what --rerun runs; empty: this executable
};

// The command line a report records ("command_line"), from main's argv: the
// program as "accsim", then every argument except those that change no
// number (--threads, --timing) and the outputs (--report, --out, --vcd), so
// that a report stays byte-identical for any thread count or file name.
// `accsim check --rerun` runs it again.
[[nodiscard]] std::vector<std::string> recorded_command_line(std::span<char* const> argv);

CLI::App* setup_check(CLI::App& parent, CheckOptions& options);

// Runs the command; returns the exit code. The table goes to `out`; a user
// error is one line "accsim: error: <input>: <problem>" on `err`, exit 2,
// and writes no JUnit file.
int run_check(const CheckOptions& options, std::ostream& out, std::ostream& err);
int run_check(const CheckOptions& options);

}  // namespace accsim::sim
