// The accsim command line: subcommands are declared here, implemented in
// their own files (setup_x binds flags, run_x does the work).
#include <exception>
#include <iostream>
#include <span>

#include <CLI/CLI.hpp>

#include "sim/check_command.hpp"
#include "sim/cost_command.hpp"
#include "sim/errors.hpp"
#include "sim/gemm_command.hpp"
#include "sim/run_command.hpp"
#include "sim/sweep_command.hpp"

int main(int argc, char** argv) {
  using namespace accsim::sim;
  CLI::App app{
      "accsim: a simulator of MAC arrays with low-bit floating-point accumulators.\n"
      "Run 'accsim <command> --help' for a command's flags.",
      "accsim"};
  // One subcommand a call: after it, a word like "sweep" or "run" is an
  // argument (a folder named sweep), never a second subcommand.
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", "accsim " ACCSIM_VERSION, "print the version and exit");

  GemmOptions gemm_options;
  CLI::App* gemm = setup_gemm(app, gemm_options);
  GemmOptions verify_options;
  CLI::App* verify = setup_verify(app, verify_options);
  RunOptions run_options;
  CLI::App* run = setup_run(app, run_options);
  CostOptions cost_options;
  CLI::App* cost = setup_cost(app, cost_options);
  CheckOptions check_options;
  CLI::App* check = setup_check(app, check_options);
  // Reports record the command line, for `accsim check --rerun`.
  gemm_options.command_line = run_options.command_line =
      recorded_command_line(std::span<char* const>(argv, static_cast<std::size_t>(argc)));
  SweepOptions sweep_options;
  CLI::App* sweep = setup_sweep(app, sweep_options);
  SweepMergeOptions merge_options;
  CLI::App* sweep_merge = setup_sweep_merge(app, merge_options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string sub;
    for (const CLI::App* c : app.get_subcommands()) sub = " " + c->get_name();
    std::cerr << "accsim: error: " << one_line(e.what()) << " (see 'accsim" << sub << " --help')\n";
    return kExitUsage;
  }

  if (gemm->parsed()) return run_gemm(gemm_options);
  if (verify->parsed()) return run_verify(verify_options);
  if (run->parsed()) return run_run(run_options);
  if (cost->parsed()) return run_cost(cost_options);
  if (check->parsed()) return run_check(check_options);
  if (sweep->parsed()) return run_sweep(sweep_options);
  if (sweep_merge->parsed()) return run_sweep_merge(merge_options);
  std::cout << app.help();
  return kExitOk;
}
