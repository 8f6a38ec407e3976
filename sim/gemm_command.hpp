// `accsim gemm`: one GEMM through the reference path, from .npy operands to a
// summary, an optional C.npy and an optional JSON report.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/hw/stats.hpp"
#include "models/numerics/events.hpp"
#include "models/reference/gemm.hpp"
#include "sim/cost_command.hpp"
#include "sim/npy.hpp"

namespace CLI {
class App;
}

namespace accsim::sim {

// Everything the command line can say, as given (strings unparsed):
// run_gemm validates, so it can be called without CLI11.
struct GemmOptions {
  std::string a_path;
  std::string b_path;
  std::string multiplier;
  std::string accumulator;
  std::string product;     // empty: exact (fused) products
  std::string order;        // empty: sequential (reference), the dataflow's order (cycle)
  std::string scale = "none";
  unsigned threads = 0;    // 0: every hardware thread
  std::string out_path;    // empty: no C.npy
  std::string report_path; // empty: no JSON report
  bool timing = false;     // add wall time and thread count to the report

  // The cycle-accurate engine (--engine cycle, and `accsim verify`).
  std::string engine = "reference";  // reference | cycle
  std::string array = "16x16";
  std::string dataflow = "ws";
  std::string ws_partial_sums = "merge";  // merge | feedback
  std::string merge_format;               // WS merge: output buffer format; empty: the accumulator's
  unsigned mul_latency = 1;
  unsigned add_latency = 1;
  std::string input_buffer = "1MiB", weight_buffer = "1MiB", output_buffer = "1MiB";
  unsigned input_bandwidth = 0, weight_bandwidth = 0, output_bandwidth = 0;  // words/cycle/port; 0: unlimited
  unsigned input_ports = 2, weight_ports = 2, output_ports = 2;
  double dram_bandwidth = 0;  // bytes/cycle; 0: unlimited
  std::string vcd_path;
  int node = 45;  // technology node of the energy estimate (nm)
  // The command line, recorded in the report ("command_line") so that
  // `accsim check --rerun` can run it again (recorded_command_line).
  std::vector<std::string> command_line;
};

// Adds the `gemm` subcommand to `parent` and binds its flags to `options`.
CLI::App* setup_gemm(CLI::App& parent, GemmOptions& options);

// Adds the `verify` subcommand: the same flags (array options included),
// both engines on the same operands, "bit-identical" or the first mismatch.
CLI::App* setup_verify(CLI::App& parent, GemmOptions& options);
// Exit code 0 when bit-identical, 1 on a mismatch, 2 on bad input.
int run_verify(const GemmOptions& options, std::ostream& out, std::ostream& err);
int run_verify(const GemmOptions& options);

// Runs the command; returns the exit code. The summary goes to `out`; a user
// error is one line "accsim: error: <input>: <problem>" on `err`, exit 2,
// and leaves no output file behind.
int run_gemm(const GemmOptions& options, std::ostream& out, std::ostream& err);
int run_gemm(const GemmOptions& options);

// The report: configuration, shapes, events and errors. Deterministic (no
// wall time, thread count or host names), so it is byte-identical for any
// --threads; `timing`, when given, is appended as the "timing" object.
struct GemmRun {
  GemmOptions options;
  ref::GemmConfig config;
  NpyDtype a_dtype = NpyDtype::float64, b_dtype = NpyDtype::float64;
  std::size_t m = 0, k = 0, n = 0;
  ref::GemmResult result;
  std::optional<hw::CycleStats> cycle;  // --engine cycle
  std::optional<EnergyReport> energy;   // --engine cycle
  std::string a_hash, b_hash;           // "sha256:<hex>" of the operand files (net::sha256_file)
};
[[nodiscard]] nlohmann::ordered_json gemm_report(const GemmRun& run,
                                                 const std::optional<nlohmann::ordered_json>& timing);
// A JSON value for a double: the number when finite, else "inf", "-inf" or
// "nan" (JSON has no literal for them).
[[nodiscard]] nlohmann::ordered_json json_number(double x);
// An event tally as the gemm and run reports write it: ops, overflow,
// underflow, swamp, inexact, invalid.
[[nodiscard]] nlohmann::ordered_json events_json(const num::EventCounts& e);

}  // namespace accsim::sim
