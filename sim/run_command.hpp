// `accsim run`: a trained network's trace through accsim, in FP32 and in a
// low-bit configuration, with accuracy, agreement and per-layer statistics.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/hw/array_config.hpp"
#include "sim/cost_command.hpp"
#include "sim/network/executor.hpp"
#include "sim/network/trace.hpp"

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

// --- pieces `accsim sweep` shares with `accsim run` ---------------------------------

// The FP32 baseline's arithmetic as formats (mul, prod and acc fp32,
// sequential, no scaling): what the native fp32 engine computes bit for bit.
[[nodiscard]] bool is_exactly_fp32(const net::LayerArithmetic& a);

// The array that produces a layer's order: chunked:C[:FMT] is a
// weight-stationary array of C rows merging column chunks in FMT; sequential
// is output-stationary (each PE sums all of K).
[[nodiscard]] hw::ArrayConfig array_for(const ref::AccumulationOrder& order, std::size_t cols);

// Energy per inference (docs/cost.md): the first samples run again, each
// low-bit layer's GEMM also on the cycle-accurate array `array_of` gives for
// it. The network's values are the reference path's in the layer's own
// order; the array sums in its own order (ArrayConfig::order()) and its
// result is checked bit for bit against the reference path in that order
// (the same GEMM when the orders agree, as in `accsim run`).
struct Energy {
  std::size_t samples = 0;
  std::vector<EnergyReport> layers;  // per GEMM layer, summed over the samples
  std::vector<hw::ArrayConfig> arrays;
  std::vector<std::uint64_t> cycles;  // per layer, summed over the samples
  std::vector<bool> costed;           // false: fp32-engine layer, not run on the array
  std::vector<double> dram_read_bytes;  // per layer, both operands, summed over the samples
  EnergyReport total;
  std::uint64_t gemms = 0;            // GEMMs run on the array (a grouped Conv: one per group)
  std::uint64_t reordered_gemms = 0;  // of those, GEMMs whose array order differs from the layer's
};
[[nodiscard]] Energy measure_energy(const net::Trace& trace, const net::Executor& lowbit, std::size_t samples,
                                    const EnergyMeter& meter,
                                    const std::function<hw::ArrayConfig(const ref::GemmConfig&)>& array_of);

}  // namespace accsim::sim
