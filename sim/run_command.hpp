// `accsim run`: a trained network's trace through accsim, in FP32 and in a
// low-bit configuration, with accuracy, agreement and per-layer statistics.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace CLI {
class App;
}

namespace accsim::sim {

// The paper's 12-bit configuration (docs/run.md explains the biases): e3m4
// inputs with a power-of-two scale per tensor, products and accumulator in
// M7E4 with round-toward-zero and flush-to-zero, chunks of 16, and
// b_acc = b_prod - log2(16)/2.
inline constexpr const char* kDefaultMultiplier = "e3m4";
inline constexpr const char* kDefaultProduct = "M7E4,bias=6,round=rtz,ftz";
inline constexpr const char* kDefaultAccumulator = "M7E4,bias=4,round=rtz,ftz";
inline constexpr const char* kDefaultOrder = "chunked:16";
inline constexpr const char* kDefaultScale = "pow2";

// Everything the command line can say, as given (strings unparsed):
// run_run validates, so it can be called without CLI11.
struct RunOptions {
  std::string trace_dir;  // empty: the shipped ResNet trace (net::default_trace_dir)
  std::string multiplier = kDefaultMultiplier;
  std::string product = kDefaultProduct;  // "exact": fused products
  std::string accumulator = kDefaultAccumulator;
  std::string order = kDefaultOrder;
  std::string scale = kDefaultScale;
  // auto: layers whose arithmetic is exactly fp32 (mul, prod and acc fp32,
  // sequential, no scaling) run on the native fp32 engine, which gives the
  // same bits faster; reference: every layer on the reference GEMM.
  std::string engine = "auto";
  std::size_t samples = 0;  // 0: all samples of the trace
  unsigned threads = 0;     // 0: every hardware thread
  std::string layer_config;                  // YAML file of per-layer overrides
  std::vector<std::string> layer_overrides;  // "NAME:key=value"
  std::string report_path;                   // empty: no JSON report
  // Energy per inference: the first N samples run again, every low-bit
  // layer's GEMM on the cycle-accurate array (docs/cost.md); 0: no energy.
  std::size_t energy_samples = 1;
  std::size_t array_cols = 16;  // the array's columns (its rows follow each layer's chunk size)
  int node = 45;                // technology node of the energy, nm
  bool timing = false;  // add timings to the report (it then differs run to run)
  // The command line, recorded in the report ("command_line") so that
  // `accsim check --rerun` can run it again (recorded_command_line).
  std::vector<std::string> command_line;
};

// Adds the `run` subcommand to `parent` and binds its flags to `options`.
CLI::App* setup_run(CLI::App& parent, RunOptions& options);

// Runs the command; returns the exit code. The table goes to `out`; a user
// error is one line "accsim: error: <input>: <problem>" on `err`, exit 2,
// and leaves no report behind. A progress bar goes to stderr when `out` is
// std::cout and stdout is a terminal.
int run_run(const RunOptions& options, std::ostream& out, std::ostream& err);
int run_run(const RunOptions& options);

}  // namespace accsim::sim
