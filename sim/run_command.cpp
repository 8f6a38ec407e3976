#include "sim/run_command.hpp"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <new>
#include <span>
#include <stdexcept>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "models/hw/array_config.hpp"
#include "models/hw/cycle_gemm.hpp"
#include "models/numerics/format.hpp"
#include "models/numerics/identity.hpp"
#include "models/reference/order.hpp"
#include "models/reference/parallel.hpp"
#include "sim/cost_command.hpp"
#include "sim/errors.hpp"
#include "sim/gemm_command.hpp"
#include "sim/network/digest.hpp"
#include "sim/network/evaluate.hpp"
#include "sim/network/layer_config.hpp"
#include "sim/network/trace.hpp"
#include "sim/output_file.hpp"

namespace accsim::sim {
namespace {

using nlohmann::ordered_json;

}  // namespace

bool is_exactly_fp32(const net::LayerArithmetic& a) {
  const ref::GemmConfig& c = a.config;
  const num::Format fp32 = num::formats::fp32();
  return c.multiplier == fp32 && c.product && *c.product == fp32 && c.accumulator == fp32 && c.order.sequential() &&
         c.scaling == ref::Scaling::none;
}

namespace {

struct Setup {
  net::LayerArithmetic base;
  std::vector<net::LayerOverride> overrides;
  bool auto_engine = true;
};

Setup parse_flags(const RunOptions& o) {
  Setup s;
  s.base.engine = net::Engine::reference;
  // The flags go through the same parser as per-layer settings, so both
  // accept the same spellings and report errors the same way.
  net::apply_setting(s.base, "mul", o.multiplier, "--mul");
  net::apply_setting(s.base, "prod", o.product, "--prod");
  net::apply_setting(s.base, "acc", o.accumulator, "--acc");
  net::apply_setting(s.base, "order", o.order, "--order");
  net::apply_setting(s.base, "scale", o.scale, "--scale");
  if (o.engine != "auto" && o.engine != "reference") {
    throw InputError("--engine", "'" + o.engine + "' is not one of auto, reference");
  }
  s.auto_engine = o.engine == "auto";
  if (!o.layer_config.empty()) s.overrides = net::read_layer_config(o.layer_config);
  for (const std::string& flag : o.layer_overrides) s.overrides.push_back(net::parse_layer_flag(flag));
  return s;
}

std::string percent(std::size_t count, std::size_t total) {
  return total == 0 ? "-" : fmt::format("{:.2f}%", 100.0 * static_cast<double>(count) / static_cast<double>(total));
}

std::string rate(std::uint64_t count, std::uint64_t ops) {
  if (ops == 0) return "-";
  if (count == 0) return "0";
  const double percent = 100.0 * static_cast<double>(count) / static_cast<double>(ops);
  return percent < 0.01 ? fmt::format("{:.1e}%", percent) : fmt::format("{:.3g}%", percent);
}

std::string db(double x) {
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  return fmt::format("{:.1f}", x);
}

std::string sci(double x) { return x == 0 ? "0" : fmt::format("{:.2e}", x); }

std::string macs_text(std::uint64_t macs) {
  if (macs >= 1000000) return fmt::format("{:.2f} M", static_cast<double>(macs) / 1e6);
  if (macs >= 1000) return fmt::format("{:.1f} k", static_cast<double>(macs) / 1e3);
  return std::to_string(macs);
}

}  // namespace

// The array that produces a layer's order: chunked:C[:FMT] is a
// weight-stationary array of C rows merging column chunks in FMT; sequential
// is output-stationary (each PE sums all of K).
hw::ArrayConfig array_for(const ref::AccumulationOrder& order, std::size_t cols) {
  hw::ArrayConfig arr;
  arr.cols = cols;
  if (order.sequential()) {
    arr.dataflow = hw::Dataflow::output_stationary;
    arr.rows = cols;
  } else {
    arr.dataflow = hw::Dataflow::weight_stationary;
    arr.ws_partial_sums = hw::WsPartialSums::merge;
    arr.rows = static_cast<std::size_t>(order.chunk);
    arr.merge_format = order.merge_format;
  }
  return arr;
}

Energy measure_energy(const net::Trace& trace, const net::Executor& lowbit, std::size_t samples,
                      const EnergyMeter& meter, const std::function<hw::ArrayConfig(const ref::GemmConfig&)>& array_of) {
  const net::Network& net = trace.network;
  const std::size_t n_layers = net.gemm_layers.size();
  Energy e;
  e.samples = std::min(samples, trace.samples);
  e.layers.resize(n_layers);
  e.arrays.resize(n_layers);
  e.cycles.resize(n_layers);
  e.costed.assign(n_layers, false);
  e.dram_read_bytes.assign(n_layers, 0.0);
  std::unique_ptr<net::Executor::Workspace> ws = lowbit.make_workspace(/*keep_layer_outputs=*/false);
  ws->engine = [&](std::size_t layer, const ref::QuantizedOperand& a, const ref::QuantizedOperand& b,
                   const ref::GemmConfig& c) {
    ref::GemmResult want = ref::accumulate_products(a, b, c);
    e.costed[layer] = true;
    e.arrays[layer] = array_of(c);
    // The array sums in its own order; where that is not the layer's, the
    // reference path runs again in the array's order for the check.
    ref::GemmConfig on_array = c;
    on_array.order = e.arrays[layer].order();
    EnergyReport layer_energy;
    try {
      hw::CycleResult r = hw::run_cycle_gemm(a, b, on_array, e.arrays[layer]);
      const bool same_order = on_array.order == c.order;
      if (!same_order) ++e.reordered_gemms;
      const std::vector<std::uint64_t>& check = same_order ? want.c_bits : ref::accumulate_products(a, b, on_array).c_bits;
      if (r.gemm.c_bits != check) {
        throw std::logic_error("layer " + net.nodes[net.gemm_layers[layer]].name +
                               ": the cycle-accurate array's result differs from the reference path's");
      }
      e.cycles[layer] += r.stats.cycles;
      e.dram_read_bytes[layer] += r.stats.input.bytes(r.stats.input.dram_reads) + r.stats.weight.bytes(r.stats.weight.dram_reads);
      ++e.gemms;
      layer_energy = meter.measure(on_array, r.stats);
    } catch (const hw::ConfigError& err) {
      layer_energy.node_nm = meter.node_nm();
      layer_energy.unavailable = std::string("no array computes this layer's order: ") + err.what();
    }
    e.layers[layer].add(layer_energy);
    return want;
  };
  for (std::size_t s = 0; s < e.samples; ++s) {
    (void)lowbit.run(std::span<const float>(trace.inputs).subspan(s * trace.sample_size, trace.sample_size), *ws);
  }
  for (std::size_t l = 0; l < n_layers; ++l) {
    if (e.costed[l]) e.total.add(e.layers[l]);
  }
  e.total.node_nm = meter.node_nm();
  return e;
}

namespace {

struct Run {
  const RunOptions& options;
  const net::Trace& trace;
  const std::vector<net::LayerArithmetic>& layers;
  const Setup& setup;
  const net::Evaluation& eval;
  const std::optional<Energy>& energy;
  const net::Executor& lowbit;  // its weight_events
  double load_seconds = 0, energy_seconds = 0;  // wall clock
  double energy_cpu_seconds = 0;                 // the energy measurement's thread CPU time
};

// CPU time of the calling thread, and of the whole process (every thread so far).
double cpu_seconds(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Accumulator additions (chunk sums and merges) and their events.
num::EventCounts accumulator_events(const net::LayerStats& s) {
  num::EventCounts e = s.accumulate;
  e += s.merge;
  return e;
}

std::string energy_table(const Energy& en, const net::Network& net, std::size_t name_width) {
  std::string s;
  auto line = [&s](const std::string& text) {
    s += text;
    s += '\n';
  };
  line("");
  line(fmt::format("  energy per inference, measured on {} with every low-bit layer on the cycle-accurate array",
                   en.samples == 1 ? std::string("the first sample") : fmt::format("the first {} samples", en.samples)));
  line(fmt::format("  ({} GEMMs, each bit-identical to the reference path; docs/cost.md):", en.gemms));
  s += energy_summary(en.total.per(en.samples), "per inference");
  // Energy the cost model cannot give (a unit it lacks, no data) has one
  // reason for the whole network: said once above, not again per layer.
  if (!en.total.energy) return s;
  line(fmt::format("  PE energy    {}", en.total.source));
  line(fmt::format("  {:<{}}  {:>9}{:>11}{:>12}{:>9}{:>7}{:>7}{:>7}", "layer", name_width, "array", "cycles", "energy nJ",
                   "pJ/MAC", "PE", "SRAM", "DRAM"));
  for (std::size_t l = 0; l < net.gemm_layers.size(); ++l) {
    std::string name = net.nodes[net.gemm_layers[l]].name;
    if (name.size() > name_width) name = "..." + name.substr(name.size() - name_width + 3);
    if (!en.costed[l]) {
      line(fmt::format("  {:<{}}  {:>9}   (fp32 engine: not on the array)", name, name_width, "-"));
      continue;
    }
    const EnergyReport per = en.layers[l].per(en.samples);
    const hw::ArrayConfig& a = en.arrays[l];
    const std::string array = fmt::format("{}x{} {}", a.rows, a.cols,
                                          a.dataflow == hw::Dataflow::weight_stationary ? "WS" : "OS");
    if (!per.energy) {
      line(fmt::format("  {:<{}}  {:>9}   unavailable: {}", name, name_width, array, per.unavailable));
      continue;
    }
    const cost::EnergyBreakdown& b = *per.energy;
    const double t = b.total();
    auto pct = [t](double x) { return t > 0 ? fmt::format("{:.0f}%", 100 * x / t) : std::string("-"); };
    line(fmt::format("  {:<{}}  {:>9}{:>11}{:>12.2f}{:>9.3f}{:>7}{:>7}{:>7}{}", name, name_width, array,
                     en.cycles[l] / en.samples, t * 1e-3, per.macs ? t / static_cast<double>(per.macs) : 0.0,
                     pct(b.pe()), pct(b.input_sram + b.weight_sram + b.output_sram), pct(b.dram),
                     net.operands_are_activations(net.nodes[net.gemm_layers[l]])
                         ? "  (act x act: the weight buffer holds activations)"
                         : ""));
  }
  return s;
}

std::string table(const Run& r) {
  const net::Trace& t = r.trace;
  const net::Network& net = t.network;
  const net::Evaluation& e = r.eval;
  std::string s;
  auto line = [&s](const std::string& text) {
    s += text;
    s += '\n';
  };
  line(fmt::format("accsim run: {} ({}), {} of {} samples, {} classes{}", t.name, t.dir.string(), e.samples,
                   t.available, t.classes, t.dataset.empty() ? "" : ", " + t.dataset));
  line(fmt::format("  model       {}: {} nodes, {} GEMM layers, {} MACs per sample", t.model_path.string(),
                   net.nodes.size(), net.gemm_layers.size(), macs_text(net.macs_per_sample())));
  line("  FP32        native float, sequential, no FMA (= --mul fp32 --prod fp32 --acc fp32 --order sequential "
       "--scale none)");
  line(fmt::format("  low-bit     {}", net::describe(r.setup.base)));
  for (const net::LayerOverride& o : r.setup.overrides) {
    line(fmt::format("  override    {}:{}={} ({})", o.selector, o.key, o.value, o.source));
  }

  line("");
  line(fmt::format("  {:<16}{:>9}{:>13}", "accuracy", "top-1", "correct"));
  auto acc_row = [&](std::string_view label, std::size_t correct, const std::string& note) {
    line(fmt::format("    {:<14}{:>9}{:>13}   {}", label, percent(correct, e.samples),
                     fmt::format("{}/{}", correct, e.samples), note));
  };
  std::string fw_note = "framework's own (argmax of golden.npy)";
  if (t.framework_top1 && e.samples == t.available) {
    fw_note += fmt::format("; trace.json: {:.2f}%", 100.0 * *t.framework_top1);
    if (t.framework_correct && static_cast<std::size_t>(*t.framework_correct) != e.framework_correct) {
      fw_note += fmt::format(" ({} correct: DIFFERS)", *t.framework_correct);
    }
  }
  acc_row(t.framework.empty() ? "framework" : t.framework, e.framework_correct, fw_note);
  acc_row("FP32 (accsim)", e.fp32_correct,
          fmt::format("{}; argmax agrees on {}/{}; logits max rel. dev. {} (abs {})",
                      e.fp32_correct == e.framework_correct ? "equals the framework" : "DIFFERS from the framework",
                      e.fp32_agrees_golden, e.samples, sci(e.max_rel_deviation), sci(e.max_abs_deviation)));
  const double delta = 100.0 * (static_cast<double>(e.lowbit_correct) - static_cast<double>(e.fp32_correct)) /
                       static_cast<double>(std::max<std::size_t>(e.samples, 1));
  acc_row("low-bit", e.lowbit_correct, fmt::format("{:+.2f} points vs FP32", delta));
  line(fmt::format("    low-bit and FP32 predictions agree on {}/{} samples ({})", e.lowbit_agrees_fp32, e.samples,
                   percent(e.lowbit_agrees_fp32, e.samples)));

  std::size_t name_width = 5;
  for (std::size_t i : net.gemm_layers) name_width = std::max(name_width, net.nodes[i].name.size());
  name_width = std::min<std::size_t>(name_width, 48);
  line("");
  line(fmt::format("  per layer, low-bit run over {} samples. SNR (dB) and relative error against exact (double) GEMMs:",
                   e.samples));
  line("  'acc' rounds only the accumulation (vs the exact sum of the same rounded products), 'layer' adds the");
  line("  rounding of the inputs, 'net' compares the node's output with the FP32 run's (all error up to there).");
  line("  Event rates are per accumulator addition (chunk sums and merges); 'prod unfl' per product.");
  line(fmt::format("  {:<{}}  {:<5}{:>6}{:>10}{:>9}{:>11}{:>11}{:>11}{:>10}{:>11}{:>10}{:>11}", "layer", name_width, "op",
                   "K", "MACs", "SNR acc", "SNR layer", "err layer", "err net", "overflow", "underflow", "swamp",
                   "prod unfl"));
  for (std::size_t l = 0; l < net.gemm_layers.size(); ++l) {
    const net::Node& node = net.nodes[net.gemm_layers[l]];
    const net::LayerStats& st = e.layers[l];
    const num::EventCounts acc = accumulator_events(st);
    std::string name = node.name;
    if (name.size() > name_width) name = "..." + name.substr(name.size() - name_width + 3);
    const bool fp32 = r.layers[l].engine == net::Engine::fp32;
    line(fmt::format("  {:<{}}  {:<5}{:>6}{:>10}{:>9}{:>11}{:>11}{:>11}{:>10}{:>11}{:>10}{:>11}{}", name, name_width,
                     net::to_string(node.op), node.gemm.k, macs_text(node.gemm.macs()), db(st.accumulation.snr_db()),
                     db(st.layer.snr_db()), sci(st.layer.rel_error()), sci(st.network.rel_error()),
                     rate(acc.overflow, acc.ops), rate(acc.underflow, acc.ops), rate(acc.swamp, acc.ops),
                     rate(st.product.underflow, st.product.ops),
                     std::string(fp32 ? "  (fp32)" : "") + (net.operands_are_activations(node) ? "  (act x act)" : "")));
  }
  if (std::any_of(net.gemm_layers.begin(), net.gemm_layers.end(),
                  [&](std::size_t i) { return net.operands_are_activations(net.nodes[i]); })) {
    line("  (act x act): both operands are activations (attention's Q·Kᵀ and softmax·V), each rounded per sample");
    line("  with the layer's scaling; on the array the 'weights' are an activation tensor.");
  }
  if (r.energy) s += energy_table(*r.energy, net, name_width);
  return s;
}

ordered_json error_json(const net::ErrorSums& s) {
  return {{"snr_db", json_number(s.snr_db())},
          {"rel_error", json_number(s.rel_error())},
          {"max_abs", json_number(s.max_abs)},
          {"elements", s.count}};
}

ordered_json arithmetic_json(const net::LayerArithmetic& a) {
  ordered_json j;
  j["engine"] = a.engine == net::Engine::fp32 ? "fp32" : "reference";
  if (a.engine == net::Engine::fp32) return j;
  const ref::GemmConfig& c = a.config;
  j["multiplier"] = num::to_string(c.multiplier);
  j["product"] = c.product ? ordered_json(num::to_string(*c.product)) : ordered_json("exact");
  j["accumulator"] = num::to_string(c.accumulator);
  j["order"] = ref::to_string(c.order);
  j["merge_format"] = c.order.sequential() ? ordered_json(nullptr) : ordered_json(num::to_string(c.order.merge(c.accumulator)));
  j["scale"] = ref::to_string(c.scaling);
  return j;
}

double fraction(std::size_t count, std::size_t total) {
  return total == 0 ? 0.0 : static_cast<double>(count) / static_cast<double>(total);
}

ordered_json report(const Run& r) {
  const net::Trace& t = r.trace;
  const net::Network& net = t.network;
  const net::Evaluation& e = r.eval;
  ordered_json j;
  j["accsim_version"] = ACCSIM_VERSION;
  j["command"] = "run";
  j["command_line"] = r.options.command_line;
  j["numerics_identity"] = num::kNumericsIdentity;
  j["trace"] = {{"path", t.dir.string()},
                {"name", t.name},
                {"hash", net::trace_content_hash(t)},
                {"model", t.model_path.string()},
                {"framework", t.framework},
                {"samples", e.samples},
                {"samples_available", t.available},
                {"classes", t.classes},
                {"gemm_layers", net.gemm_layers.size()},
                {"macs_per_sample", net.macs_per_sample()}};
  ordered_json& config = j["config"];
  config["lowbit"] = arithmetic_json(r.setup.base);
  config["engine"] = r.setup.auto_engine ? "auto" : "reference";
  ordered_json overrides = ordered_json::array();
  for (const net::LayerOverride& o : r.setup.overrides) {
    overrides.push_back({{"layer", o.selector}, {"key", o.key}, {"value", o.value}, {"source", o.source}});
  }
  config["overrides"] = overrides;
  config["fp32"] = "native float, sequential, no FMA (= mul fp32, prod fp32, acc fp32, sequential, scale none)";

  ordered_json& acc = j["accuracy"];
  acc["framework"] = {{"top1", fraction(e.framework_correct, e.samples)},
                      {"correct", e.framework_correct},
                      {"source", "argmax of golden.npy"},
                      {"trace_json_top1", t.framework_top1 ? ordered_json(*t.framework_top1) : ordered_json(nullptr)},
                      {"trace_json_correct",
                       t.framework_correct ? ordered_json(*t.framework_correct) : ordered_json(nullptr)},
                      {"trace_json_samples", t.available}};
  acc["fp32"] = {{"top1", fraction(e.fp32_correct, e.samples)},
                 {"correct", e.fp32_correct},
                 {"equals_framework", e.fp32_correct == e.framework_correct},
                 {"argmax_agrees_with_golden", e.fp32_agrees_golden},
                 {"max_rel_logit_deviation", e.max_rel_deviation},
                 {"max_abs_logit_deviation", e.max_abs_deviation}};
  acc["lowbit"] = {{"top1", fraction(e.lowbit_correct, e.samples)},
                   {"correct", e.lowbit_correct},
                   {"delta_top1_vs_fp32", fraction(e.lowbit_correct, e.samples) - fraction(e.fp32_correct, e.samples)},
                   {"agreement_with_fp32", fraction(e.lowbit_agrees_fp32, e.samples)},
                   {"agreeing_samples", e.lowbit_agrees_fp32}};
  ordered_json disagree = ordered_json::array();
  for (std::size_t i = 0; i < e.samples; ++i) {
    if (e.lowbit_pred[i] != e.fp32_pred[i]) disagree.push_back(i);
  }
  acc["lowbit"]["disagreeing_samples"] = disagree;

  ordered_json layers = ordered_json::array();
  for (std::size_t l = 0; l < net.gemm_layers.size(); ++l) {
    const net::Node& node = net.nodes[net.gemm_layers[l]];
    const net::LayerStats& st = e.layers[l];
    const num::EventCounts a = accumulator_events(st);
    ordered_json layer;
    layer["name"] = node.name;
    layer["op"] = net::to_string(node.op);
    layer["operands"] = net.operands_are_activations(node) ? "activations x activations" : "weights x activations";
    layer["arithmetic"] = arithmetic_json(r.layers[l]);
    layer["gemm"] = {{"m", node.gemm.m}, {"k", node.gemm.k}, {"n", node.gemm.n}, {"groups", node.gemm.groups}};
    layer["macs_per_sample"] = node.gemm.macs();
    layer["events"] = {{"weights", events_json(r.lowbit.weight_events(l))},
                       {"quantize", events_json(st.quantize)},
                       {"product", events_json(st.product)},
                       {"accumulate", events_json(st.accumulate)},
                       {"merge", events_json(st.merge)}};
    auto ratio = [](std::uint64_t c, std::uint64_t ops) {
      return ops == 0 ? ordered_json(nullptr) : ordered_json(static_cast<double>(c) / static_cast<double>(ops));
    };
    layer["rates"] = {{"overflow", ratio(a.overflow, a.ops)},
                      {"underflow", ratio(a.underflow, a.ops)},
                      {"swamp", ratio(a.swamp, a.ops)},
                      {"product_underflow", ratio(st.product.underflow, st.product.ops)},
                      {"product_overflow", ratio(st.product.overflow, st.product.ops)}};
    layer["error"] = {{"accumulation", error_json(st.accumulation)},
                      {"layer", error_json(st.layer)},
                      {"network", error_json(st.network)}};
    layers.push_back(layer);
  }
  j["layers"] = layers;
  if (r.energy) {
    const Energy& en = *r.energy;
    ordered_json energy;
    energy["samples"] = en.samples;
    energy["node_nm"] = r.options.node;
    energy["array_cols"] = r.options.array_cols;
    energy["gemms_on_array"] = en.gemms;
    energy["per_inference"] = energy_json(en.total.per(en.samples));
    ordered_json per_layer = ordered_json::array();
    for (std::size_t l = 0; l < net.gemm_layers.size(); ++l) {
      ordered_json layer;
      layer["name"] = net.nodes[net.gemm_layers[l]].name;
      if (en.costed[l]) {
        const hw::ArrayConfig& a = en.arrays[l];
        layer["array"] = {{"rows", a.rows},
                          {"cols", a.cols},
                          {"dataflow", a.dataflow == hw::Dataflow::weight_stationary ? "ws" : "os"}};
        layer["cycles_per_inference"] = en.cycles[l] / en.samples;
        const net::Node& node = net.nodes[net.gemm_layers[l]];
        // Attention's GEMMs: the weight buffer holds an activation (Kᵀ or V),
        // fetched anew for every inference, so its traffic is activation traffic.
        layer["weight_buffer_holds"] = net.operands_are_activations(node) ? "activations" : "weights";
        layer["operand_dram_read_bytes_per_inference"] = en.dram_read_bytes[l] / static_cast<double>(en.samples);
        layer["per_inference"] = energy_json(en.layers[l].per(en.samples));
      } else {
        layer["array"] = nullptr;  // fp32 engine
      }
      per_layer.push_back(layer);
    }
    energy["layers"] = per_layer;
    j["energy"] = energy;
  }
  if (r.options.timing) {
    const double lowbit_macs = static_cast<double>(net.macs_per_sample()) * static_cast<double>(e.samples);
    j["timing"] = {{"threads", e.threads},
                   {"wall_seconds", e.wall_seconds},
                   {"fp32_cpu_seconds", e.fp32_seconds},
                   {"lowbit_cpu_seconds", e.lowbit_seconds},
                   {"lowbit_macs_per_cpu_second", e.lowbit_seconds > 0 ? lowbit_macs / e.lowbit_seconds : 0.0}};
    ordered_json phases;
    for (std::size_t p = 0; p < net::kPhases; ++p) {
      phases[net::to_string(static_cast<net::Phase>(p))] = e.lowbit_phases.seconds[p];
    }
    j["timing"]["lowbit_phase_cpu_seconds"] = phases;
    const double gemm_seconds = e.lowbit_phases.seconds[static_cast<std::size_t>(net::Phase::gemm)];
    j["timing"]["lowbit_gemm_macs_per_cpu_second"] = gemm_seconds > 0 ? lowbit_macs / gemm_seconds : 0.0;
    j["timing"]["load_seconds"] = r.load_seconds;
    j["timing"]["energy_seconds"] = r.energy_seconds;
    j["timing"]["energy_cpu_seconds"] = r.energy_cpu_seconds;
    j["timing"]["process_cpu_seconds"] = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
  }
  return j;
}

void show_progress(std::size_t done, std::size_t total) {
  constexpr int kWidth = 30;
  const int filled = total == 0 ? kWidth : static_cast<int>(kWidth * done / total);
  std::cerr << fmt::format("\r  [{}{}] {}/{} samples", std::string(static_cast<std::size_t>(filled), '#'),
                           std::string(static_cast<std::size_t>(kWidth - filled), '.'), done, total)
            << std::flush;
}

int run_or_throw(const RunOptions& o, std::ostream& out, bool progress) {
  // Flags first: they are cheap to check and say more than a failed load.
  const Setup setup = parse_flags(o);
  if (!o.report_path.empty()) check_writable_target(o.report_path);
  if (o.energy_samples > 0) {
    check_node(o.node);
    if (o.array_cols < 1 || o.array_cols > hw::kMaxArrayDim) {
      throw InputError("--array-cols", fmt::format("must be 1..{} (got {})", hw::kMaxArrayDim, o.array_cols));
    }
  }

  const auto t_load = std::chrono::steady_clock::now();
  const std::filesystem::path dir = o.trace_dir.empty() ? net::default_trace_dir() : std::filesystem::path(o.trace_dir);
  const net::Trace trace = net::load_trace(dir, o.samples);
  std::vector<net::LayerArithmetic> layers = net::resolve_layers(trace.network, setup.base, setup.overrides);
  if (setup.auto_engine) {
    for (net::LayerArithmetic& a : layers) {
      if (a.engine == net::Engine::reference && is_exactly_fp32(a)) a.engine = net::Engine::fp32;
    }
  }
  const net::Executor fp32(trace.network,
                           std::vector<net::LayerArithmetic>(trace.network.gemm_layers.size(), net::LayerArithmetic{}));
  const net::Executor lowbit(trace.network, layers);

  const auto t_eval = std::chrono::steady_clock::now();
  net::EvalOptions eval_options;
  eval_options.threads = o.threads;
  eval_options.phase_timing = o.timing;
  if (progress) eval_options.progress = show_progress;
  const net::Evaluation eval = net::evaluate(trace, fp32, lowbit, eval_options);
  if (progress) std::cerr << "\r\033[K" << std::flush;
  const auto t_energy = std::chrono::steady_clock::now();
  const double cpu_energy = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
  std::optional<Energy> energy;
  if (o.energy_samples > 0) {
    const EnergyMeter meter(o.node);
    energy = measure_energy(trace, lowbit, o.energy_samples, meter,
                            [&](const ref::GemmConfig& c) { return array_for(c.order, o.array_cols); });
  }
  const auto t_done = std::chrono::steady_clock::now();

  const Run run{o,
                trace,
                layers,
                setup,
                eval,
                energy,
                lowbit,
                std::chrono::duration<double>(t_eval - t_load).count(),
                std::chrono::duration<double>(t_done - t_energy).count(),
                cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu_energy};
  std::optional<StagedFile> report_file;
  if (!o.report_path.empty()) report_file.emplace(o.report_path, report(run).dump(2, ' ', false, ordered_json::error_handler_t::replace) + "\n");
  if (report_file) report_file->commit();
  out << table(run);
  if (report_file) out << "  wrote report " << o.report_path << '\n';
  return kExitOk;
}

}  // namespace

CLI::App* setup_run(CLI::App& parent, RunOptions& o) {
  CLI::App* cmd = parent.add_subcommand(
      "run",
      "Run a trained network's trace (traces/README.md) in FP32 and in a low-bit configuration: accuracy, "
      "agreement, and per-layer errors and events. Without flags: the shipped ResNet trace with the paper's "
      "12-bit configuration (docs/run.md)");
  cmd->add_option("--trace", o.trace_dir, "trace folder (default: traces/fmnist_resnet of the source tree)")
      ->type_name("DIR");
  cmd->add_option("--mul", o.multiplier, "multiplier (input) format")->capture_default_str()->type_name("FMT");
  cmd->add_option("--prod", o.product, "product format, or 'exact' for fused products")
      ->capture_default_str()
      ->type_name("FMT");
  cmd->add_option("--acc", o.accumulator, "accumulator format")->capture_default_str()->type_name("FMT");
  cmd->add_option("--order", o.order, "accumulation order: sequential | chunked:C[:FMT]")
      ->capture_default_str()
      ->type_name("ORDER");
  cmd->add_option("--scale", o.scale, "input scaling: none | tensor | channel | pow2")
      ->capture_default_str()
      ->type_name("SCALE");
  cmd->add_option("--engine", o.engine,
                  "auto: exactly-fp32 layers run on the native float engine (same bits); reference: never")
      ->capture_default_str()
      ->type_name("auto|reference");
  cmd->add_option("--samples", o.samples, "use the first N samples (0: all)")->capture_default_str();
  cmd->add_option("--threads", o.threads, "worker threads; 0: every hardware thread (results never depend on it)")
      ->capture_default_str()
      ->check(CLI::Range(0u, 4096u));
  cmd->add_option("--layer-config", o.layer_config, "YAML file of per-layer overrides (docs/run.md)")
      ->type_name("FILE");
  cmd->add_option("--layer", o.layer_overrides,
                  "per-layer override NAME:key=value (NAME: node name, first, last, * or attention; keys: engine, mul, prod, "
                  "acc, order, scale); repeatable, applied after --layer-config")
      ->type_name("NAME:KEY=VALUE");
  cmd->add_option("--energy-samples", o.energy_samples,
                  "energy per inference: run the first N samples again on the cycle-accurate array (0: no energy)")
      ->capture_default_str();
  cmd->add_option("--array-cols", o.array_cols,
                  "columns of that array; its rows are each layer's chunk size (WS), or equal the columns for a "
                  "sequential layer (OS)")
      ->capture_default_str();
  cmd->add_option("--node", o.node, "technology node of the energy, nm: 180, 45 or 7")->capture_default_str();
  cmd->add_option("--report", o.report_path, "write a JSON report")->type_name("report.json");
  cmd->add_flag("--timing", o.timing, "add timings to the report (it then differs run to run)");
  return cmd;
}

int run_run(const RunOptions& options, std::ostream& out, std::ostream& err) {
  const bool progress = &out == &std::cout && ::isatty(STDOUT_FILENO) == 1;
  return guarded(err, [&] { return run_or_throw(options, out, progress); },
                 [&] {
                   if (progress) std::cerr << "\r\033[K";
                 });
}

int run_run(const RunOptions& options) { return run_run(options, std::cout, std::cerr); }

}  // namespace accsim::sim
