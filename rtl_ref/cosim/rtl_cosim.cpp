// Co-simulation of the reference RTL inside the SystemC array: GEMMs on a
// 4x4 output-stationary array whose PEs are rtl_ref/rtl/pe.sv Verilated as
// SystemC modules (RtlPeArray), run by accsim's own controller and buffers,
// against the pure SystemC model's run of the same GEMM (hw::run_cycle_gemm)
// and against ref::accumulate_products: every result bit, every event count,
// and the cycle count with its phases and stalls.
//
// It also shows that the comparison fails when it should: the same RTL under
// a model one cycle faster or slower (mul_latency 1 or 3) must be reported,
// and so must a PE Verilated with one parameter wrong (a mutant).
//
//   rtl_cosim --config NAME [--seed S] [--random N]
//   rtl_cosim --list
// One configuration per process: SystemC elaborates only once. N GEMMs of
// random shape (default 40) follow the fixed ones.
//
// The seed also comes from ACCSIM_TEST_SEED and is printed with every
// failure. Exit status: 0 all equal, 1 a mismatch, 2 bad usage.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "Vpe_e4m3_fp32.h"
#include "Vpe_paper.h"
#include "Vpe_paper_acc_rne.h"
#include "models/hw/array_config.hpp"
#include "models/hw/cycle_gemm.hpp"
#include "models/hw/modules.hpp"
#include "models/numerics/arith.hpp"
#include "models/numerics/format.hpp"
#include "models/reference/gemm.hpp"
#include "rtl_ref/cosim/rtl_pe_array.hpp"

namespace {

namespace hw = accsim::hw;
namespace num = accsim::num;
namespace ref = accsim::ref;
using accsim::cosim::make_verilated_pe;
using accsim::cosim::PeFactory;
using accsim::cosim::RtlPeArray;

constexpr std::size_t kRows = 4, kCols = 4;
// pe.sv has operand, product and accumulator registers. The model's PE
// multiplies what arrives and forwards it in parallel, so the RTL's operand
// register is a multiplier pipeline stage there: Lm = 2, and the
// accumulator loop is one cycle: La = 1.
constexpr unsigned kRtlMulLatency = 2, kRtlAddLatency = 1;

struct Configuration {
  const char* name;
  const char* operand;
  const char* product;  // "": fused (the exact product is accumulated)
  const char* accumulator;
  // The -G parameters CMake gave Verilator for this configuration; they
  // must be what the formats ask for (pe_parameters).
  const char* verilated_with;
  PeFactory make_pe;
  // Its accumulator is narrow enough for GEMMs to overflow and underflow it
  // (and its product format too): the runs must show those events.
  bool narrow;
  // A PE Verilated with one parameter changed, which the comparison must
  // catch when it runs against this configuration's model (null: none).
  PeFactory mutant;
  const char* mutant_change;
};

const Configuration kConfigurations[] = {
    {"paper", "e4m3", "M7E4,bias=12,round=rtz,ftz", "M7E4,bias=10,round=rtz,ftz", ACCSIM_COSIM_PARAMS_PAPER,
     make_verilated_pe<Vpe_paper>, true, make_verilated_pe<Vpe_paper_acc_rne>,
     "ACC_ROUND=0: the accumulator rounds to nearest-even instead of toward zero"},
    {"e4m3_fp32", "e4m3", "", "fp32", ACCSIM_COSIM_PARAMS_E4M3_FP32, make_verilated_pe<Vpe_e4m3_fp32>, false, nullptr,
     nullptr},
};

ref::GemmConfig formats_of(const Configuration& c) {
  ref::GemmConfig g;
  g.multiplier = num::parse_format(c.operand);
  if (*c.product != 0) g.product = num::parse_format(c.product);
  g.accumulator = num::parse_format(c.accumulator);
  g.threads = 1;
  g.error_stats = false;
  return g;
}

// pe.sv's parameters for these formats, as rtl_format_params spells them,
// in the order rtl_ref/CMakeLists.txt lists them.
std::string pe_parameters(const ref::GemmConfig& g) {
  std::string p;
  const auto add = [&](const std::string& name, long value) {
    p += (p.empty() ? "" : " ") + name + "=" + std::to_string(value);
  };
  const auto add_format = [&](const std::string& prefix, const num::FloatFormat& f, bool rounding) {
    add(prefix + "EXP_W", f.exp_bits);
    add(prefix + "MAN_W", f.man_bits);
    add(prefix + "BIAS", f.bias);
    if (rounding) add(prefix + "ROUND", static_cast<int>(f.rounding));
    if (rounding) add(prefix + "SUBNORMALS", f.subnormals ? 1 : 0);
    add(prefix + "SPECIALS", static_cast<int>(f.specials));
    if (rounding) add(prefix + "SATURATE", f.saturate ? 1 : 0);
  };
  add_format("A_", std::get<num::FloatFormat>(g.multiplier), false);
  add("PRODUCT_ROUNDED", g.product ? 1 : 0);
  if (g.product) add_format("P_", std::get<num::FloatFormat>(*g.product), true);
  add_format("ACC_", std::get<num::FloatFormat>(g.accumulator), true);
  return p;
}

// --- operands -----------------------------------------------------------------

enum class Style {
  quantized,  // values over many binades with exact zeros, rounded into the format (pow2 scaling)
  encodings,  // every element a uniformly random encoding: NaN, zeros, subnormals, the largest values
};

ref::QuantizedOperand make_operand(std::size_t rows, std::size_t cols, const num::Format& format, Style style,
                                   std::mt19937_64& rng, ref::ScaleAxis axis, std::uint64_t sr_stream) {
  if (style == Style::quantized) {
    ref::Matrix m(rows, cols);
    std::uniform_real_distribution<double> unit(-1, 1), binade(-8, 8);
    for (double& x : m.data) x = rng() % 16 == 0 ? 0.0 : unit(rng) * std::exp2(binade(rng));
    return ref::quantize_operand(m, format, ref::Scaling::pow2, axis, sr_stream);
  }
  ref::QuantizedOperand q;
  q.rows = rows;
  q.cols = cols;
  q.scale = {1.0};
  q.axis = axis;
  const std::uint64_t codes = std::uint64_t{1} << num::width(format);
  for (std::size_t i = 0; i < rows * cols; ++i) {
    q.bits.push_back(rng() % codes);
    q.values.push_back(num::to_double(q.bits.back(), format));
  }
  return q;
}

struct GemmCase {
  std::size_t m, k, n;
  Style style;
  double dram_bytes_per_cycle;  // 0: unlimited; otherwise the array stalls and its clock is gated
};

// Shapes not multiples of the array (ragged tiles), one tile, one MAC, K up
// to a few hundred, many tiles, and two DRAM-limited runs with stalls.
const GemmCase kCases[] = {
    {4, 4, 4, Style::quantized, 0},     {1, 1, 1, Style::encodings, 0},    {5, 3, 7, Style::encodings, 0},
    {13, 37, 19, Style::quantized, 0},  {16, 64, 16, Style::encodings, 0}, {7, 300, 9, Style::quantized, 0},
    {33, 130, 37, Style::quantized, 0}, {9, 257, 6, Style::quantized, 2},  {6, 50, 10, Style::encodings, 1},
};

const char* to_string(Style s) { return s == Style::quantized ? "quantized" : "encodings"; }

hw::ArrayConfig array_config(unsigned mul_latency, double dram_bytes_per_cycle) {
  hw::ArrayConfig a;
  a.rows = kRows;
  a.cols = kCols;
  a.dataflow = hw::Dataflow::output_stationary;
  a.mul_latency = mul_latency;
  a.add_latency = kRtlAddLatency;
  a.dram_bytes_per_cycle = dram_bytes_per_cycle;
  return a;
}

// --- comparison -----------------------------------------------------------------

class Checker {
 public:
  explicit Checker(std::uint64_t seed) : seed_(seed) {}
  void expect(bool ok, const std::string& what) {
    if (ok) return;
    std::printf("  FAIL: %s (seed %llu)\n", what.c_str(), static_cast<unsigned long long>(seed_));
    ++failures_;
  }
  [[nodiscard]] int failures() const { return failures_; }

 private:
  std::uint64_t seed_;
  int failures_ = 0;
};

std::size_t bit_mismatches(const std::vector<std::uint64_t>& x, const std::vector<std::uint64_t>& y, std::string* first,
                           std::size_t n) {
  if (x.size() != y.size()) return std::max(x.size(), y.size());
  std::size_t count = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (x[i] == y[i]) continue;
    if (count++ == 0 && first != nullptr) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "C[%zu][%zu] 0x%llx vs 0x%llx", i / n, i % n,
                    static_cast<unsigned long long>(x[i]), static_cast<unsigned long long>(y[i]));
      *first = buf;
    }
  }
  return count;
}

std::string counts(const num::EventCounts& e) {
  return "ops " + std::to_string(e.ops) + " ovf " + std::to_string(e.overflow) + " unf " + std::to_string(e.underflow) +
         " swamp " + std::to_string(e.swamp) + " inexact " + std::to_string(e.inexact) + " invalid " +
         std::to_string(e.invalid);
}

void expect_same(Checker& check, const char* what, const ref::GemmResult& x, const ref::GemmResult& y, std::size_t n) {
  std::string first;
  const std::size_t bad = bit_mismatches(x.c_bits, y.c_bits, &first, n);
  check.expect(bad == 0, std::string(what) + ": " + std::to_string(bad) + " of " + std::to_string(y.c_bits.size()) +
                             " results differ, first " + first);
  check.expect(x.c_format == y.c_format, std::string(what) + ": result formats differ");
  check.expect(
      x.stats.accumulate == y.stats.accumulate,
      std::string(what) + ": accumulate events " + counts(x.stats.accumulate) + " vs " + counts(y.stats.accumulate));
  check.expect(x.stats.product == y.stats.product,
               std::string(what) + ": product events " + counts(x.stats.product) + " vs " + counts(y.stats.product));
}

void expect_no_deviations(Checker& check, const RtlPeArray& rtl) {
  const accsim::cosim::Deviations& d = rtl.deviations();
  check.expect(d.count == 0, "the RTL departed from the model's timing " + std::to_string(d.count) + " times");
  for (const std::string& what : d.first) std::printf("    %s\n", what.c_str());
}

bool same_stalls(const hw::StallCycles& x, const hw::StallCycles& y) {
  return x.dram == y.dram && x.input_port == y.input_port && x.weight_port == y.weight_port &&
         x.output_port == y.output_port;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Operands {
  ref::QuantizedOperand a, b;
};

Operands make_operands(const GemmCase& g, const num::Format& format, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Operands o;
  o.a = make_operand(g.m, g.k, format, g.style, rng, ref::ScaleAxis::rows, 1);
  o.b = make_operand(g.k, g.n, format, g.style, rng, ref::ScaleAxis::cols, 2);
  return o;
}

// A GEMM of random shape: M and N up to ten tiles, K up to 300, a quarter
// of them DRAM-limited.
GemmCase random_case(std::mt19937_64& rng) {
  const auto between = [&](std::size_t lo, std::size_t hi) { return lo + rng() % (hi - lo + 1); };
  const double dram[] = {0.5, 1, 2, 4};
  return {between(1, 40), between(1, 300), between(1, 40), rng() % 2 == 0 ? Style::quantized : Style::encodings,
          rng() % 4 == 0 ? dram[rng() % 4] : 0.0};
}

// Runs GEMMs three ways (the RTL array, the model, the reference) and
// compares them.
class Session {
 public:
  Session(RtlPeArray& rtl, ref::GemmConfig formats, std::uint64_t seed)
      : rtl_(rtl), formats_(std::move(formats)), check_(seed) {}

  void run(const GemmCase& g, std::uint64_t seed, bool verbose) {
    const Operands ops = make_operands(g, formats_.multiplier, seed);
    const hw::ArrayConfig array = array_config(kRtlMulLatency, g.dram_bytes_per_cycle);
    formats_.order = array.order();
    const ref::GemmResult want = ref::accumulate_products(ops.a, ops.b, formats_);
    auto t0 = std::chrono::steady_clock::now();
    const hw::CycleResult model = hw::run_cycle_gemm(ops.a, ops.b, formats_, array);
    model_seconds_ += seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    const hw::CycleResult got = hw::run_cycle_gemm(ops.a, ops.b, formats_, array, rtl_);
    const double t = seconds_since(t0);
    rtl_seconds_ += t;
    rtl_cycles_ += got.stats.cycles;
    ++gemms_;

    const int failures_before = check_.failures();
    expect_no_deviations(check_, rtl_);
    expect_same(check_, "RTL vs model", got.gemm, model.gemm, g.n);
    expect_same(check_, "RTL vs reference", got.gemm, want, g.n);
    check_.expect(got.stats.cycles == model.stats.cycles, "cycles differ from the model's");
    check_.expect(got.stats.phases == model.stats.phases, "phases differ from the model's");
    check_.expect(same_stalls(got.stats.stalls, model.stats.stalls), "stall causes differ from the model's");
    check_.expect(got.stats.cycles == got.stats.formula_cycles + got.stats.phases.stall,
                  "cycles are not the closed form plus the stalls");
    check_.expect((g.dram_bytes_per_cycle > 0) == (got.stats.phases.stall > 0),
                  "a DRAM-limited case must stall, an unlimited one must not");
    if (verbose || check_.failures() != failures_before) {
      std::printf(
          "  %3zux%3zux%3zu %-9s dram %-3g: %6llu cycles (model %6llu, stalls %llu), %4zu results, %.3f s%s\n", g.m,
          g.k, g.n, to_string(g.style), g.dram_bytes_per_cycle, static_cast<unsigned long long>(got.stats.cycles),
          static_cast<unsigned long long>(model.stats.cycles), static_cast<unsigned long long>(got.stats.phases.stall),
          got.gemm.c_bits.size(), t, check_.failures() != failures_before ? "  (the FAILs above)" : "");
    }
    seen_accumulate_ += got.gemm.stats.accumulate;
    seen_product_ += got.gemm.stats.product;
  }

  // The GEMMs must have provoked what the comparison is about: rounding,
  // swamping and NaNs everywhere; overflow and underflow of a narrow
  // accumulator and of a product format.
  void expect_events(bool narrow) {
    std::printf("  accumulate events: %s\n", counts(seen_accumulate_).c_str());
    check_.expect(seen_accumulate_.inexact > 0 && seen_accumulate_.swamp > 0, "the sums never rounded or swamped");
    check_.expect(seen_accumulate_.invalid + seen_product_.invalid > 0, "no NaN ever met the PE");
    if (formats_.product) {
      std::printf("  product events:    %s\n", counts(seen_product_).c_str());
      check_.expect(seen_product_.inexact > 0 && seen_product_.overflow > 0 && seen_product_.underflow > 0,
                    "the products never rounded, overflowed or underflowed");
    }
    if (narrow) {
      check_.expect(seen_accumulate_.overflow > 0 && seen_accumulate_.underflow > 0,
                    "the sums never overflowed or underflowed the accumulator");
    }
  }

  // The same RTL under a model one cycle faster (mul_latency 1: the RTL is a
  // cycle late, so results are drained early) or slower (mul_latency 3: the
  // RTL is a cycle early, and its results are still right) must be
  // reported.
  void expect_latency_caught(const GemmCase& g, std::uint64_t seed) {
    const Operands ops = make_operands(g, formats_.multiplier, seed);
    for (const unsigned mul_latency : {kRtlMulLatency - 1, kRtlMulLatency + 1}) {
      const hw::ArrayConfig array = array_config(mul_latency, 0);
      formats_.order = array.order();
      const hw::CycleResult model = hw::run_cycle_gemm(ops.a, ops.b, formats_, array);
      const hw::CycleResult got = hw::run_cycle_gemm(ops.a, ops.b, formats_, array, rtl_);
      const accsim::cosim::Deviations& d = rtl_.deviations();
      std::printf(
          "  negative: under a model with mul_latency %u: %llu timing deviations (first: %s), %zu results differ\n",
          mul_latency, static_cast<unsigned long long>(d.count), d.first.empty() ? "none" : d.first[0].c_str(),
          bit_mismatches(got.gemm.c_bits, model.gemm.c_bits, nullptr, g.n));
      check_.expect(d.count > 0, "a one-cycle latency difference went unnoticed");
    }
  }

  // A PE Verilated with a wrong parameter, against this configuration's model.
  void expect_mutant_caught(RtlPeArray& mutant, const char* change, const GemmCase& g, std::uint64_t seed) {
    const Operands ops = make_operands(g, formats_.multiplier, seed);
    const hw::ArrayConfig array = array_config(kRtlMulLatency, 0);
    formats_.order = array.order();
    const hw::CycleResult model = hw::run_cycle_gemm(ops.a, ops.b, formats_, array);
    const hw::CycleResult got = hw::run_cycle_gemm(ops.a, ops.b, formats_, array, mutant);
    const std::size_t bad = bit_mismatches(got.gemm.c_bits, model.gemm.c_bits, nullptr, g.n);
    std::printf("  negative: mutant PE (%s): %zu of %zu results differ, accumulate events %s\n", change, bad,
                got.gemm.c_bits.size(), got.gemm.stats.accumulate == model.gemm.stats.accumulate ? "equal" : "differ");
    check_.expect(bad > 0, "a mis-parameterized PE went unnoticed");
  }

  [[nodiscard]] int failures() const { return check_.failures(); }
  void summary(const char* name) const {
    std::printf("%s: %zu GEMMs, %llu RTL array cycles in %.2f s (%.0f cycles/s; the model took %.3f s): %s\n", name,
                gemms_, static_cast<unsigned long long>(rtl_cycles_), rtl_seconds_,
                rtl_seconds_ > 0 ? static_cast<double>(rtl_cycles_) / rtl_seconds_ : 0.0, model_seconds_,
                check_.failures() == 0 ? "every bit, event and cycle equal" : "MISMATCH");
  }

 private:
  RtlPeArray& rtl_;
  ref::GemmConfig formats_;
  Checker check_;
  std::size_t gemms_ = 0;
  double rtl_seconds_ = 0, model_seconds_ = 0;
  std::uint64_t rtl_cycles_ = 0;
  num::EventCounts seen_accumulate_, seen_product_;
};

int usage(const char* why) {
  std::fprintf(stderr, "rtl_cosim: %s\nusage: rtl_cosim --config NAME [--seed S] [--random N] | --list\n", why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_name;
  const char* env_seed = std::getenv("ACCSIM_TEST_SEED");
  std::uint64_t seed = env_seed != nullptr ? std::strtoull(env_seed, nullptr, 10) : 20240125;
  std::size_t random_gemms = 40;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--list") {
      for (const Configuration& c : kConfigurations) std::printf("%s\n", c.name);
      return 0;
    }
    if (i + 1 >= argc) return usage(("missing value after " + std::string(arg)).c_str());
    if (arg == "--config") {
      config_name = argv[++i];
    } else if (arg == "--seed") {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--random") {
      random_gemms = std::strtoull(argv[++i], nullptr, 10);
    } else {
      return usage(("unknown option " + std::string(arg)).c_str());
    }
  }
  const Configuration* config = nullptr;
  for (const Configuration& c : kConfigurations) {
    if (config_name == c.name) config = &c;
  }
  if (config == nullptr) return usage(("no configuration '" + config_name + "' (see --list)").c_str());

  ref::GemmConfig formats = formats_of(*config);
  const std::string wanted = pe_parameters(formats);
  if (wanted != config->verilated_with) {
    std::printf("FAIL: %s was Verilated with\n  %s\nbut its formats ask for\n  %s\n(rtl_ref/CMakeLists.txt)\n",
                config->name, config->verilated_with, wanted.c_str());
    return 1;
  }
  std::printf("%s: %s x %s -> %s -> %s on a %zux%zu output-stationary array of Verilated pe (%s), seed %llu\n",
              config->name, config->operand, config->operand, *config->product != 0 ? config->product : "exact",
              config->accumulator, kRows, kCols, config->verilated_with, static_cast<unsigned long long>(seed));

  // The RTL arrays join the accelerator's hierarchy before the first run
  // completes elaboration. Never destroyed, like the accelerator: SystemC's
  // kernel outlives no module it knows of.
  hw::Accelerator& accelerator = hw::accelerator();
  auto* rtl = new RtlPeArray("rtl_array", kRows, kCols, formats, config->make_pe);
  rtl->clk(accelerator.clk);
  RtlPeArray* mutant = nullptr;
  if (config->mutant) {
    mutant = new RtlPeArray("mutant_array", kRows, kCols, formats, config->mutant);
    mutant->clk(accelerator.clk);
  }

  Session session(*rtl, formats, seed);
  for (std::size_t i = 0; i < std::size(kCases); ++i) session.run(kCases[i], seed + i, true);
  std::mt19937_64 rng(seed);
  for (std::size_t i = 0; i < random_gemms; ++i) session.run(random_case(rng), seed + 1000 + i, false);
  std::printf("  and %zu GEMMs of random shape, operands and DRAM bandwidth\n", random_gemms);
  session.expect_events(config->narrow);
  session.expect_latency_caught(kCases[3], seed + 3);
  if (mutant != nullptr) session.expect_mutant_caught(*mutant, config->mutant_change, kCases[3], seed + 3);
  session.summary(config->name);
  return session.failures() == 0 ? 0 : 1;
}
