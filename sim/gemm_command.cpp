#include "sim/gemm_command.hpp"

#include <time.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <filesystem>
#include <iostream>
#include <new>
#include <stdexcept>
#include <string_view>
#include <system_error>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "models/hw/array_config.hpp"
#include "models/numerics/arith.hpp"
#include "models/numerics/identity.hpp"
#include "models/hw/cycle_gemm.hpp"
#include "models/reference/parallel.hpp"
#include "sim/errors.hpp"
#include "sim/network/digest.hpp"
#include "sim/output_file.hpp"

namespace accsim::sim {
namespace {

// Which route computed the GEMM (results are identical on every route):
// plan_fast's double lanes, or within plan_fast's route plan_f32's float
// lanes, the wider lanes of plan_any_lanes, or num::mac per step.
const char* implementation(const ref::GemmStats& stats) {
  if (stats.f32_lanes) return "f32";
  if (stats.fast_path) return "fast";
  return stats.any_lanes ? "lanes" : "general";
}

using Clock = std::chrono::steady_clock;

num::Format parse_format_flag(std::string_view flag, const std::string& text) {
  try {
    return num::parse_format(text);
  } catch (const num::FormatError& e) {
    throw InputError(flag, e.what());
  }
}

// Rejects what the GEMM cannot take: empty operands and non-finite values
// (NaN and inf have no place in a quantized tensor; the first one is named
// so the user can find it).
void check_operand(const ref::Matrix& m, const std::string& name) {
  if (m.rows == 0 || m.cols == 0) {
    throw InputError(name, fmt::format("shape ({}, {}) is empty; every dimension must be at least 1", m.rows,
                                       m.cols));
  }
  for (std::size_t i = 0; i < m.data.size(); ++i) {
    const double x = m.data[i];
    if (std::isfinite(x)) continue;
    const char* what = std::isnan(x) ? "NaN" : (x > 0 ? "+inf" : "-inf");
    throw InputError(name, fmt::format("element (row {}, col {}) is {}; every input value must be finite",
                                       i / m.cols, i % m.cols, what));
  }
}

std::string format_name(const num::Format& f) { return num::to_string(f); }

nlohmann::ordered_json error_json(const ref::ErrorStats& s) {
  nlohmann::ordered_json j;
  j["rel_frobenius"] = json_number(s.rel_frobenius);
  j["max_abs"] = json_number(s.max_abs);
  j["snr_db"] = json_number(s.snr_db);
  return j;
}

nlohmann::ordered_json buffer_json(const hw::BufferStats& b) {
  nlohmann::ordered_json j;
  j["word_bits"] = b.word_bits;
  j["capacity_words"] = b.capacity_words;
  j["resident"] = b.resident;
  j["reads_words"] = b.sram_reads();
  j["writes_words"] = b.sram_writes();
  j["reads_bytes"] = b.bytes(b.sram_reads());
  j["writes_bytes"] = b.bytes(b.sram_writes());
  j["dram_reads_words"] = b.dram_reads;
  j["dram_writes_words"] = b.dram_writes;
  return j;
}

nlohmann::ordered_json cycle_json(const hw::CycleStats& c) {
  nlohmann::ordered_json j;
  j["array"] = {{"rows", c.rows}, {"cols", c.cols}};
  j["cycles"] = c.cycles;
  j["formula_cycles"] = c.formula_cycles;
  j["phases"] = {{"weight_load", c.phases.weight_load}, {"fill", c.phases.fill}, {"steady", c.phases.steady},
                 {"drain", c.phases.drain}, {"stall", c.phases.stall}};
  j["stalls"] = {{"dram", c.stalls.dram}, {"input_port", c.stalls.input_port},
                 {"weight_port", c.stalls.weight_port}, {"output_port", c.stalls.output_port}};
  j["tiles"] = c.tiles;
  j["useful_macs"] = c.useful_macs;
  j["utilization"] = json_number(c.utilization());
  j["buffers"] = {{"input", buffer_json(c.input)}, {"weight", buffer_json(c.weight)}, {"output", buffer_json(c.output)}};
  j["dram"] = {{"read_bytes", c.dram_read_bytes()}, {"write_bytes", c.dram_write_bytes()}};
  j["toggles"] = {{"activation", c.toggles.activation}, {"weight", c.toggles.weight},
                  {"product", c.toggles.product}, {"sum", c.toggles.sum}};
  j["register_bits"] = {{"activation", c.register_bits.activation}, {"weight", c.register_bits.weight},
                        {"product", c.register_bits.product}, {"sum", c.register_bits.sum}};
  return j;
}

std::string rate(std::uint64_t count, std::uint64_t ops) {
  if (ops == 0) return "-";
  return fmt::format("{:.3g}%", 100.0 * static_cast<double>(count) / static_cast<double>(ops));
}

// CPU time of the whole process (every thread): what the GEMM costs, however
// loaded the machine is.
double process_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

std::string seconds_text(double s) {
  if (s < 1e-3) return fmt::format("{:.1f} us", s * 1e6);
  if (s < 1) return fmt::format("{:.1f} ms", s * 1e3);
  return fmt::format("{:.2f} s", s);
}

std::string summary(const GemmRun& run, double gemm_seconds, unsigned threads) {
  const ref::GemmConfig& c = run.config;
  const ref::GemmStats& st = run.result.stats;
  std::string s;
  auto line = [&s](std::string_view text) {
    s += text;
    s += '\n';
  };
  line(fmt::format("accsim gemm: A {}x{} ({}, {}) x B {}x{} ({}, {}) -> C {}x{}", run.m, run.k,
                   run.options.a_path, to_string(run.a_dtype), run.k, run.n, run.options.b_path,
                   to_string(run.b_dtype), run.m, run.n));
  line(fmt::format("  multiplier   {}", format_name(c.multiplier)));
  line(fmt::format("  product      {}", c.product ? format_name(*c.product) : "exact (fused)"));
  line(fmt::format("  accumulator  {}", format_name(c.accumulator)));
  if (c.order.sequential()) {
    line("  order        sequential");
  } else {
    line(fmt::format("  order        {} (chunk results merged in {})", ref::to_string(c.order),
                     format_name(c.order.merge(c.accumulator))));
  }
  line(fmt::format("  scale        {}", ref::to_string(c.scaling)));
  line(fmt::format("  MACs         {}, {} path", run.m * run.k * run.n, implementation(st)));
  line(fmt::format("  time         {} with error statistics, {} thread{}", seconds_text(gemm_seconds), threads,
                   threads == 1 ? "" : "s"));
  line(fmt::format("  {:<14}{:>12}{:>11}{:>11}{:>11}{:>11}{:>11}", "events", "ops", "overflow", "underflow",
                   "swamp", "inexact", "invalid"));
  auto row = [&](std::string_view label, const num::EventCounts& e) {
    line(fmt::format("    {:<12}{:>12}{:>11}{:>11}{:>11}{:>11}{:>11}", label, e.ops, e.overflow, e.underflow,
                     e.swamp, e.inexact, e.invalid));
  };
  row("quantize A", st.quantize_a);
  row("quantize B", st.quantize_b);
  row("product", st.product);
  row("accumulate", st.accumulate);
  const num::EventCounts& acc = st.accumulate;
  line(fmt::format("    {:<12}{:>12}{:>11}{:>11}{:>11}{:>11}{:>11}", "", "per acc op", rate(acc.overflow, acc.ops),
                   rate(acc.underflow, acc.ops), rate(acc.swamp, acc.ops), rate(acc.inexact, acc.ops),
                   rate(acc.invalid, acc.ops)));
  if (!c.order.sequential()) row("merge", st.merge);
  line(fmt::format("  {:<22}{:>15}{:>12}{:>10}", "error", "rel. Frobenius", "max abs", "SNR dB"));
  auto err_row = [&](std::string_view label, const ref::ErrorStats& e) {
    line(fmt::format("    {:<20}{:>15.4g}{:>12.4g}{:>10.2f}", label, e.rel_frobenius, e.max_abs, e.snr_db));
  };
  err_row("vs quantized inputs", st.vs_quantized);
  err_row("vs original inputs", st.vs_original);
  if (run.cycle) {
    const hw::CycleStats& cy = *run.cycle;
    line(fmt::format("  array        {}x{}, {} cycles (closed form without stalls {}), utilization {:.1f}%", cy.rows,
                     cy.cols, cy.cycles, cy.formula_cycles, 100 * cy.utilization()));
    line(fmt::format("    phases     weight load {}, fill {}, steady {}, drain {}, stall {}", cy.phases.weight_load,
                     cy.phases.fill, cy.phases.steady, cy.phases.drain, cy.phases.stall));
    line(fmt::format("    traffic    DRAM read {:.0f} B, write {:.0f} B; output buffer word {} bits",
                     cy.dram_read_bytes(), cy.dram_write_bytes(), cy.output.word_bits));
    line(fmt::format("    toggles    activation {}, weight {}, product {}, sum {}", cy.toggles.activation,
                     cy.toggles.weight, cy.toggles.product, cy.toggles.sum));
  }
  if (run.energy) s += energy_summary(*run.energy, "per GEMM");
  return s;
}

// The reference configuration from the flags; the order is left for
// configure_order (it depends on the engine).
ref::GemmConfig gemm_config(const GemmOptions& o) {
  ref::GemmConfig config;
  config.multiplier = parse_format_flag("--mul", o.multiplier);
  config.accumulator = parse_format_flag("--acc", o.accumulator);
  if (!o.product.empty()) config.product = parse_format_flag("--prod", o.product);
  const std::optional<ref::Scaling> scaling = ref::parse_scaling(o.scale);
  if (!scaling) throw InputError("--scale", "'" + o.scale + "' is not one of none, tensor, channel, pow2");
  config.scaling = *scaling;
  config.threads = o.threads;
  config.error_stats = true;
  return config;
}

ref::AccumulationOrder parse_order_flag(const std::string& text) {
  try {
    return ref::parse_order(text);
  } catch (const num::FormatError& e) {
    throw InputError("--order", e.what());
  }
}

// The array from the flags; a hw::ConfigError names its field, which maps
// back to the flag.
hw::ArrayConfig array_config(const GemmOptions& o, const ref::GemmConfig& gemm) {
  try {
    hw::ArrayConfig arr;
    const hw::ArrayShape shape = hw::parse_array(o.array);
    arr.rows = shape.rows;
    arr.cols = shape.cols;
    arr.dataflow = hw::parse_dataflow(o.dataflow);
    arr.ws_partial_sums = hw::parse_ws_partial_sums(o.ws_partial_sums);
    if (!o.merge_format.empty()) arr.merge_format = parse_format_flag("--merge-format", o.merge_format);
    arr.mul_latency = o.mul_latency;
    arr.add_latency = o.add_latency;
    arr.input_buffer = {hw::parse_bytes(o.input_buffer, "--ibuf"), o.input_ports, o.input_bandwidth};
    arr.weight_buffer = {hw::parse_bytes(o.weight_buffer, "--wbuf"), o.weight_ports, o.weight_bandwidth};
    arr.output_buffer = {hw::parse_bytes(o.output_buffer, "--obuf"), o.output_ports, o.output_bandwidth};
    arr.dram_bytes_per_cycle = o.dram_bandwidth;
    arr.vcd_path = o.vcd_path;
    arr.validate(gemm);
    return arr;
  } catch (const hw::ConfigError& e) {
    throw InputError("array configuration", e.what());
  }
}

// --order as given, or the order the engine's dataflow produces; the cycle
// engine refuses any other (bit-identity is only meaningful in one order).
void configure_order(const GemmOptions& o, ref::GemmConfig& config, const hw::ArrayConfig* arr) {
  if (arr == nullptr) {
    config.order = o.order.empty() ? ref::AccumulationOrder{} : parse_order_flag(o.order);
    return;
  }
  config.order = arr->order();
  if (!o.order.empty() && parse_order_flag(o.order) != config.order) {
    throw InputError("--order", "'" + o.order + "' is not the order this array produces (" +
                                    ref::to_string(config.order) + "); omit --order with --engine cycle");
  }
}

int run_or_throw(const GemmOptions& o, std::ostream& out) {
  // Flags first: they are cheap to check and say more than a failed load.
  GemmRun run;
  run.options = o;
  ref::GemmConfig& config = run.config;
  config = gemm_config(o);
  if (o.engine != "reference" && o.engine != "cycle") {
    throw InputError("--engine", "'" + o.engine + "' is not one of reference, cycle");
  }
  std::optional<hw::ArrayConfig> arr;
  if (o.engine == "cycle") {
    arr = array_config(o, config);
    check_node(o.node);
  }
  configure_order(o, config, arr ? &*arr : nullptr);

  if (!o.out_path.empty()) check_writable_target(o.out_path);
  if (!o.report_path.empty()) check_writable_target(o.report_path);
  if (!o.out_path.empty() && !o.report_path.empty()) {
    std::error_code ec_out, ec_report;
    const auto out_file = std::filesystem::weakly_canonical(std::filesystem::absolute(o.out_path), ec_out);
    const auto report_file = std::filesystem::weakly_canonical(std::filesystem::absolute(o.report_path), ec_report);
    if (o.out_path == o.report_path || (!ec_out && !ec_report && out_file == report_file)) {
      throw InputError("--report", "names the same file as --out");
    }
  }

  const auto t_load = Clock::now();
  NpyMatrix a = read_npy(o.a_path);
  NpyMatrix b = read_npy(o.b_path);
  check_operand(a.matrix, o.a_path);
  check_operand(b.matrix, o.b_path);
  if (b.matrix.rows != a.matrix.cols) {
    throw InputError(o.b_path, fmt::format("has {} rows but {} has {} columns (A is MxK, B must be KxN)",
                                           b.matrix.rows, o.a_path, a.matrix.cols));
  }
  run.a_dtype = a.dtype;
  run.b_dtype = b.dtype;
  if (!o.report_path.empty()) {  // the operands' identity, for `accsim check`
    run.a_hash = "sha256:" + net::sha256_file(o.a_path);
    run.b_hash = "sha256:" + net::sha256_file(o.b_path);
  }
  run.m = a.matrix.rows;
  run.k = a.matrix.cols;
  run.n = b.matrix.cols;

  const auto t_gemm = Clock::now();
  const double cpu_gemm = process_cpu_seconds();
  try {
    if (arr) {
      run.result = ref::gemm(a.matrix, b.matrix, config,
                             [&](const ref::QuantizedOperand& qa, const ref::QuantizedOperand& qb,
                                 const ref::GemmConfig& c) {
                               hw::CycleResult r = hw::run_cycle_gemm(qa, qb, c, *arr);
                               run.cycle = r.stats;
                               return std::move(r.gemm);
                             });
    } else {
      run.result = ref::gemm(a.matrix, b.matrix, config);
    }
  } catch (const hw::ConfigError& e) {
    throw InputError("array configuration", e.what());
  } catch (const std::invalid_argument& e) {
    // The operands were checked above, so this is a configuration the
    // reference path does not support.
    throw InputError("gemm", e.what());
  }
  if (run.cycle) run.energy = EnergyMeter(o.node).measure(config, *run.cycle);
  const auto t_done = Clock::now();
  const double load_seconds = std::chrono::duration<double>(t_gemm - t_load).count();
  const double gemm_seconds = std::chrono::duration<double>(t_done - t_gemm).count();
  const double gemm_cpu_seconds = process_cpu_seconds() - cpu_gemm;
  const unsigned threads = ref::resolve_threads(o.threads);

  // Stage every output before committing any, so a failure leaves none.
  std::optional<StagedFile> c_file, report_file;
  if (!o.out_path.empty()) c_file.emplace(o.out_path, encode_npy(run.result.c));
  if (!o.report_path.empty()) {
    std::optional<nlohmann::ordered_json> timing;
    if (o.timing) {
      timing.emplace();
      (*timing)["threads"] = threads;
      (*timing)["load_seconds"] = load_seconds;
      (*timing)["gemm_seconds"] = gemm_seconds;
      (*timing)["gemm_cpu_seconds"] = gemm_cpu_seconds;
    }
    report_file.emplace(o.report_path, gemm_report(run, timing).dump(2) + "\n");
  }
  if (c_file) c_file->commit();
  if (report_file) report_file->commit();

  out << summary(run, gemm_seconds, threads);
  if (c_file) out << "  wrote C      " << o.out_path << '\n';
  if (report_file) out << "  wrote report " << o.report_path << '\n';
  return kExitOk;
}

}  // namespace

nlohmann::ordered_json events_json(const num::EventCounts& e) {
  return {{"ops", e.ops},         {"overflow", e.overflow}, {"underflow", e.underflow},
          {"swamp", e.swamp},     {"inexact", e.inexact},   {"invalid", e.invalid}};
}

nlohmann::ordered_json json_number(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  return x;
}

nlohmann::ordered_json gemm_report(const GemmRun& run, const std::optional<nlohmann::ordered_json>& timing) {
  const ref::GemmConfig& c = run.config;
  const ref::GemmStats& st = run.result.stats;
  using json = nlohmann::ordered_json;
  json r;
  r["accsim_version"] = ACCSIM_VERSION;
  r["command"] = "gemm";
  r["command_line"] = run.options.command_line;
  r["numerics_identity"] = num::kNumericsIdentity;

  json& config = r["config"];
  config["multiplier"] = format_name(c.multiplier);
  config["product"] = c.product ? json(format_name(*c.product)) : json(nullptr);
  config["accumulator"] = format_name(c.accumulator);
  config["order"] = ref::to_string(c.order);
  config["merge_format"] = c.order.sequential() ? json(nullptr) : json(format_name(c.order.merge(c.accumulator)));
  config["scale"] = ref::to_string(c.scaling);

  json& inputs = r["inputs"];
  inputs["a"] = {{"path", run.options.a_path}, {"dtype", to_string(run.a_dtype)}, {"rows", run.m}, {"cols", run.k},
                 {"hash", run.a_hash}};
  inputs["b"] = {{"path", run.options.b_path}, {"dtype", to_string(run.b_dtype)}, {"rows", run.k}, {"cols", run.n},
                 {"hash", run.b_hash}};
  r["shape"] = {{"m", run.m}, {"k", run.k}, {"n", run.n}};
  r["macs"] = static_cast<std::uint64_t>(run.m) * run.k * run.n;
  r["implementation"] = implementation(st);
  r["output"] = {{"format", format_name(run.result.c_format)},
                 {"path", run.options.out_path.empty() ? json(nullptr) : json(run.options.out_path)}};

  json& events = r["events"];
  events["quantize_a"] = events_json(st.quantize_a);
  events["quantize_b"] = events_json(st.quantize_b);
  events["product"] = events_json(st.product);
  events["accumulate"] = events_json(st.accumulate);
  events["merge"] = events_json(st.merge);

  r["error"] = {{"vs_quantized", error_json(st.vs_quantized)}, {"vs_original", error_json(st.vs_original)}};
  r["engine"] = run.cycle ? "cycle" : "reference";
  if (run.cycle) r["cycle"] = cycle_json(*run.cycle);
  if (run.energy) r["energy"] = energy_json(*run.energy);
  if (timing) r["timing"] = *timing;
  return r;
}

namespace {

// The flags `gemm` and `verify` share.
void bind_gemm_flags(CLI::App* cmd, GemmOptions& o) {
  cmd->add_option("--a", o.a_path, "A (M x K): .npy, float32 or float64, C order")->required()->type_name("A.npy");
  cmd->add_option("--b", o.b_path, "B (K x N): .npy, float32 or float64, C order")->required()->type_name("B.npy");
  cmd->add_option("--mul", o.multiplier, "multiplier (operand) format, e.g. e4m3")->required()->type_name("FMT");
  cmd->add_option("--acc", o.accumulator, "accumulator format, e.g. M7E4,bias=10,round=rtz,ftz")
      ->required()
      ->type_name("FMT");
  cmd->add_option("--prod", o.product, "product format (Q_prod); default: exact products")->type_name("FMT");
  cmd->add_option("--order", o.order,
                  "accumulation order: sequential | chunked:C[:FMT]; default sequential, or with the cycle "
                  "engine the order its dataflow produces")
      ->type_name("ORDER");
  cmd->add_option("--scale", o.scale, "input scaling: none | tensor | channel | pow2")
      ->capture_default_str()
      ->type_name("SCALE");
  cmd->add_option("--threads", o.threads, "worker threads; 0: every hardware thread (results never depend on it)")
      ->capture_default_str()
      ->check(CLI::Range(0u, 4096u));
  // The array (docs/array.md).
  const char* array_group = "Cycle-accurate array (--engine cycle, verify)";
  cmd->add_option("--array", o.array, "array size RxC, e.g. 16x16")->capture_default_str()->group(array_group);
  cmd->add_option("--dataflow", o.dataflow, "ws (weight-stationary) | os (output-stationary)")
      ->capture_default_str()
      ->group(array_group);
  cmd->add_option("--ws-psum", o.ws_partial_sums,
                  "WS partial sums: merge (column chunks merged in the output buffer) | feedback (fed in at the top)")
      ->capture_default_str()
      ->group(array_group);
  cmd->add_option("--merge-format", o.merge_format, "WS merge: output buffer format; default the accumulator's")
      ->type_name("FMT")
      ->group(array_group);
  cmd->add_option("--mul-latency", o.mul_latency, "multiplier pipeline stages (0..32)")
      ->capture_default_str()
      ->group(array_group);
  cmd->add_option("--add-latency", o.add_latency, "adder pipeline stages (1..32)")->capture_default_str()->group(array_group);
  cmd->add_option("--ibuf", o.input_buffer, "input buffer capacity, e.g. 64KiB")->capture_default_str()->group(array_group);
  cmd->add_option("--wbuf", o.weight_buffer, "weight buffer capacity")->capture_default_str()->group(array_group);
  cmd->add_option("--obuf", o.output_buffer, "output buffer capacity")->capture_default_str()->group(array_group);
  cmd->add_option("--ibuf-bw", o.input_bandwidth, "input buffer words/cycle/port; 0: unlimited")->group(array_group);
  cmd->add_option("--wbuf-bw", o.weight_bandwidth, "weight buffer words/cycle/port; 0: unlimited")->group(array_group);
  cmd->add_option("--obuf-bw", o.output_bandwidth, "output buffer words/cycle/port; 0: unlimited")->group(array_group);
  cmd->add_option("--ibuf-ports", o.input_ports, "input buffer ports (1 or 2)")->group(array_group);
  cmd->add_option("--wbuf-ports", o.weight_ports, "weight buffer ports (1 or 2)")->group(array_group);
  cmd->add_option("--obuf-ports", o.output_ports, "output buffer ports (1 or 2)")->group(array_group);
  cmd->add_option("--dram-bw", o.dram_bandwidth, "DRAM bytes/cycle; 0: unlimited")->group(array_group);
  cmd->add_option("--vcd", o.vcd_path, "write a VCD waveform of the array")->type_name("FILE")->group(array_group);
}

// Both engines on the same quantized operands, element by element.
int verify_or_throw(const GemmOptions& o, std::ostream& out) {
  ref::GemmConfig config = gemm_config(o);
  const hw::ArrayConfig arr = array_config(o, config);
  configure_order(o, config, &arr);
  config.error_stats = false;
  NpyMatrix a = read_npy(o.a_path);
  NpyMatrix b = read_npy(o.b_path);
  check_operand(a.matrix, o.a_path);
  check_operand(b.matrix, o.b_path);
  if (b.matrix.rows != a.matrix.cols) {
    throw InputError(o.b_path, fmt::format("has {} rows but {} has {} columns (A is MxK, B must be KxN)",
                                           b.matrix.rows, o.a_path, a.matrix.cols));
  }
  // Quantized exactly as ref::gemm does (A by rows with stream 1, B by columns with stream 2).
  const ref::QuantizedOperand qa =
      ref::quantize_operand(a.matrix, config.multiplier, config.scaling, ref::ScaleAxis::rows, 1);
  const ref::QuantizedOperand qb =
      ref::quantize_operand(b.matrix, config.multiplier, config.scaling, ref::ScaleAxis::cols, 2);
  const ref::GemmResult reference = ref::accumulate_products(qa, qb, config);
  hw::CycleResult cycle;
  try {
    cycle = hw::run_cycle_gemm(qa, qb, config, arr);
  } catch (const hw::ConfigError& e) {
    throw InputError("array configuration", e.what());
  }
  const std::size_t n = b.matrix.cols;
  const num::Format& f = reference.c_format;
  for (std::size_t idx = 0; idx < reference.c_bits.size(); ++idx) {
    const std::uint64_t want = reference.c_bits[idx], got = cycle.gemm.c_bits[idx];
    if (want == got) continue;
    const int hex_digits = (num::width(f) + 3) / 4;
    out << fmt::format("mismatch at row {}, col {} ({}): reference {} (0x{:0{}x}), cycle {} (0x{:0{}x})\n", idx / n,
                       idx % n, num::to_string(f), num::to_double(want, f), want, hex_digits,
                       num::to_double(got, f), got, hex_digits);
    return 1;
  }
  const bool same_events = reference.stats.product == cycle.gemm.stats.product &&
                           reference.stats.accumulate == cycle.gemm.stats.accumulate &&
                           reference.stats.merge == cycle.gemm.stats.merge;
  if (!same_events) {
    out << "mismatch in event counts (values are bit-identical)\n";
    return 1;
  }
  out << fmt::format("bit-identical: {}x{} outputs in {}, order {}, {} events equal; {} cycles on {}x{} {}\n",
                     a.matrix.rows, n, num::to_string(f), ref::to_string(config.order),
                     reference.stats.accumulate.ops + reference.stats.product.ops + reference.stats.merge.ops,
                     cycle.stats.cycles, arr.rows, arr.cols, o.dataflow);
  return kExitOk;
}

}  // namespace

CLI::App* setup_gemm(CLI::App& parent, GemmOptions& o) {
  CLI::App* cmd = parent.add_subcommand(
      "gemm",
      "C = A·B: A and B rounded into the multiplier format, products accumulated in the accumulator "
      "format in an explicit order, by the reference path or the cycle-accurate array");
  bind_gemm_flags(cmd, o);
  cmd->add_option("--engine", o.engine, "reference (functional) | cycle (the SystemC array)")->capture_default_str();
  cmd->add_option("--node", o.node, "technology node of the cycle engine's energy estimate, nm: 180, 45 or 7")
      ->capture_default_str()
      ->group("Cycle-accurate array (--engine cycle, verify)");
  cmd->add_option("--out", o.out_path, "write C (float64 .npy)")->type_name("C.npy");
  cmd->add_option("--report", o.report_path, "write a JSON report")->type_name("report.json");
  cmd->add_flag("--timing", o.timing,
                "add wall and CPU time and thread count to the report (it then differs run to run)");
  return cmd;
}

CLI::App* setup_verify(CLI::App& parent, GemmOptions& o) {
  CLI::App* cmd = parent.add_subcommand(
      "verify", "run the reference path and the cycle-accurate array on the same operands; print "
                "bit-identical or the first mismatch (exit code 1)");
  bind_gemm_flags(cmd, o);
  return cmd;
}

int run_verify(const GemmOptions& options, std::ostream& out, std::ostream& err) {
  return guarded(err, [&] { return verify_or_throw(options, out); });
}

int run_verify(const GemmOptions& options) { return run_verify(options, std::cout, std::cerr); }

int run_gemm(const GemmOptions& options, std::ostream& out, std::ostream& err) {
  return guarded(err, [&] { return run_or_throw(options, out); });
}

int run_gemm(const GemmOptions& options) { return run_gemm(options, std::cout, std::cerr); }

}  // namespace accsim::sim
