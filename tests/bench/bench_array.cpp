// Simulated PE-cycles per second of the cycle-accurate array (SystemC, one
// core) on 16x16 and 64x64 arrays running a 256x256x256 GEMM in the paper's
// formats, beside the reference path on the same GEMM on one thread.
//
//   build/release/tests/bench/bench_array --benchmark_counters_tabular=true
//
// Rates are per CPU second of the benchmark thread (Google Benchmark's
// default), so they are per-core figures even on a busy machine.
//   pe_cycles/s  R * C * cycles simulated per second: the issue's target is >= 1e8
//   macs/s       useful MACs per second
//   slowdown     CPU time of one cycle-accurate run / one reference run
//   cycles, util simulated cycles and utilization of one run
#include <benchmark/benchmark.h>

#include <ctime>
#include <random>

#include "models/hw/cycle_gemm.hpp"
#include "models/reference/gemm.hpp"

namespace {

using namespace accsim;

constexpr std::size_t kSize = 256;

ref::Matrix random_matrix(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  ref::Matrix m(rows, cols);
  for (double& x : m.data) x = normal(rng);
  return m;
}

ref::GemmConfig paper_config() {
  ref::GemmConfig cfg;
  cfg.multiplier = num::formats::e4m3();
  cfg.accumulator = num::parse_format("M7E4,bias=10,round=rtz,ftz");
  cfg.product = num::parse_format("M7E4,bias=12,round=rtz,ftz");
  cfg.threads = 1;
  cfg.error_stats = false;
  return cfg;
}

struct Operands {
  ref::QuantizedOperand a, b;
};

const Operands& operands() {
  static const Operands ops = [] {
    const num::Format fmt = num::formats::e4m3();
    return Operands{
        ref::quantize_operand(random_matrix(kSize, kSize, 1), fmt, ref::Scaling::pow2, ref::ScaleAxis::rows, 1),
        ref::quantize_operand(random_matrix(kSize, kSize, 2), fmt, ref::Scaling::pow2, ref::ScaleAxis::cols, 2)};
  }();
  return ops;
}

double thread_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// CPU seconds of one reference run of the same GEMM in the same order
// (best of three).
double reference_seconds(const ref::GemmConfig& cfg) {
  double best = 1e30;
  for (int i = 0; i < 3; ++i) {
    const double t0 = thread_seconds();
    ref::GemmResult r = ref::accumulate_products(operands().a, operands().b, cfg);
    benchmark::DoNotOptimize(r.c_bits.data());
    best = std::min(best, thread_seconds() - t0);
  }
  return best;
}

// args: array size (R = C), dataflow (0: ws, 1: os), multiplier latency.
void BM_CycleArray(benchmark::State& state) {
  hw::ArrayConfig arr;
  arr.rows = arr.cols = static_cast<std::size_t>(state.range(0));
  arr.dataflow = state.range(1) == 0 ? hw::Dataflow::weight_stationary : hw::Dataflow::output_stationary;
  arr.mul_latency = static_cast<unsigned>(state.range(2));
  ref::GemmConfig cfg = paper_config();
  cfg.order = arr.order();
  const Operands& ops = operands();
  hw::CycleStats stats;
  double cpu = 0;
  std::int64_t runs = 0;
  for (auto _ : state) {
    const double t0 = thread_seconds();
    hw::CycleResult r = hw::run_cycle_gemm(ops.a, ops.b, cfg, arr);
    cpu += thread_seconds() - t0;
    ++runs;
    benchmark::DoNotOptimize(r.gemm.c_bits.data());
    stats = r.stats;
  }
  const double ref_cpu = reference_seconds(cfg);
  const auto iterations = static_cast<double>(state.iterations());
  state.counters["pe_cycles/s"] =
      benchmark::Counter(static_cast<double>(stats.pe_cycles()) * iterations, benchmark::Counter::kIsRate);
  state.counters["macs/s"] =
      benchmark::Counter(static_cast<double>(stats.useful_macs) * iterations, benchmark::Counter::kIsRate);
  state.counters["cycles"] = static_cast<double>(stats.cycles);
  state.counters["util"] = stats.utilization();
  state.counters["slowdown"] = cpu / static_cast<double>(runs) / ref_cpu;
  state.SetLabel(std::string(ref::to_string(arr.dataflow)));
}
BENCHMARK(BM_CycleArray)
    ->ArgNames({"RxC", "os", "mul_lat"})
    ->Args({16, 0, 1})
    ->Args({16, 1, 1})
    ->Args({64, 0, 1})
    ->Args({64, 1, 1})
    ->Unit(benchmark::kMillisecond);

// The reference path alone on the same GEMM, one thread: MACs per second.
void BM_ReferenceSameGemm(benchmark::State& state) {
  hw::ArrayConfig arr;
  arr.rows = arr.cols = static_cast<std::size_t>(state.range(0));
  ref::GemmConfig cfg = paper_config();
  cfg.order = arr.order();  // chunked:R, as the WS array sums
  for (auto _ : state) {
    ref::GemmResult r = ref::accumulate_products(operands().a, operands().b, cfg);
    benchmark::DoNotOptimize(r.c_bits.data());
  }
  state.counters["macs/s"] = benchmark::Counter(static_cast<double>(kSize * kSize * kSize) *
                                                    static_cast<double>(state.iterations()),
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ReferenceSameGemm)->ArgName("R")->Arg(16)->Arg(64)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
