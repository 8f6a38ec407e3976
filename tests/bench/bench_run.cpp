// `accsim run`'s low-bit pass beside the reference GEMM alone, with the same
// formats (the run's defaults), measured in the same run: the ratio of their
// MACs per CPU second is what the run's lowering, quantization and
// statistics cost on top of the arithmetic.
//
//   build/release/tests/bench/bench_run --benchmark_counters_tabular=true
//
// Items per second = MACs per CPU second of the benchmark's thread.
#include <benchmark/benchmark.h>

#include <random>
#include <span>

#include "models/reference/gemm.hpp"
#include "sim/network/executor.hpp"
#include "sim/network/float_gemm.hpp"
#include "sim/network/layer_config.hpp"
#include "sim/network/trace.hpp"
#include "sim/run_command.hpp"

namespace {

using namespace accsim;

// accsim run's default arithmetic for every GEMM layer, through the same
// parser the command line uses.
net::LayerArithmetic run_defaults() {
  net::LayerArithmetic a;
  a.engine = net::Engine::reference;
  net::apply_setting(a, "mul", sim::kDefaultMultiplier, "bench");
  net::apply_setting(a, "prod", sim::kDefaultProduct, "bench");
  net::apply_setting(a, "acc", sim::kDefaultAccumulator, "bench");
  net::apply_setting(a, "order", sim::kDefaultOrder, "bench");
  net::apply_setting(a, "scale", sim::kDefaultScale, "bench");
  a.config.threads = 1;
  a.config.error_stats = false;
  return a;
}

ref::Matrix random_matrix(std::size_t rows, std::size_t cols, std::uint64_t seed, bool relu) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  ref::Matrix m(rows, cols);
  for (double& x : m.data) x = relu ? std::max(0.0, normal(rng)) : normal(rng);
  return m;
}

// The reference GEMM alone on a 256-cube, operands rounded into the run's
// multiplier format with its scaling. arg: 0 normal operands, 1 the second
// operand ReLU'd (half zeros, like the activations a Conv lowers).
void BM_RunFormatsGemm(benchmark::State& state) {
  constexpr std::size_t kSize = 256;
  const net::LayerArithmetic arith = run_defaults();
  const ref::GemmConfig& cfg = arith.config;
  const auto qa = ref::quantize_operand(random_matrix(kSize, kSize, 1, false), cfg.multiplier, cfg.scaling,
                                        ref::ScaleAxis::rows, 1);
  const auto qb = ref::quantize_operand(random_matrix(kSize, kSize, 2, state.range(0) == 1), cfg.multiplier,
                                        cfg.scaling, ref::ScaleAxis::cols, 2);
  bool fast = false;
  for (auto _ : state) {
    ref::GemmResult r = ref::accumulate_products(qa, qb, cfg);
    fast = r.stats.fast_path;
    benchmark::DoNotOptimize(r.c_bits.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kSize * kSize * kSize));
  state.counters["fast_path"] = fast;
  state.SetLabel(net::describe(arith));
}
BENCHMARK(BM_RunFormatsGemm)->Arg(0)->Arg(1)->ArgName("relu_b")->Unit(benchmark::kMillisecond);

// The statistics' yardsticks at the shapes of the ResNet's convolutions
// (weights [m x k] times lowered activations [k x n], and the transpose the
// executor picks for the 64-channel layers). route: 0 `acc`'s exact sums
// on the run's multiplier grid through OpenBLAS dgemm, 1 the same through
// the int16 kernel, 2 `layer`'s double GEMM of unrounded operands; as the
// run calls them, on floats: 3 the int16 kernel reading the float lanes'
// layout, 4 `layer`'s GEMM of float operands.
void BM_RunYardstick(benchmark::State& state) {
  const auto m = static_cast<std::size_t>(state.range(0)), k = static_cast<std::size_t>(state.range(1)),
             n = static_cast<std::size_t>(state.range(2));
  const net::LayerArithmetic arith = run_defaults();
  const ref::GemmConfig& cfg = arith.config;
  const ref::Matrix a = random_matrix(m, k, 3, false), b = random_matrix(k, n, 4, true);
  const auto qa = ref::quantize_operand(a, cfg.multiplier, cfg.scaling, ref::ScaleAxis::rows, 1);
  const auto qb = ref::quantize_operand(b, cfg.multiplier, cfg.scaling, ref::ScaleAxis::cols, 2);
  std::vector<double> c(m * n);
  const std::vector<float> a_f(a.data.begin(), a.data.end()), b_f(b.data.begin(), b.data.end());
  const std::vector<float> qa_f(qa.values.begin(), qa.values.end());
  std::vector<float> qb_panels(ref::f32_b_size(k, n), 0.0f);
  for (std::size_t kk = 0; kk < k; ++kk) {
    for (std::size_t j = 0; j < n; ++j) {
      qb_panels[ref::f32_b_index(k, kk, j)] = static_cast<float>(qb.values[kk * n + j]);
    }
  }
  for (auto _ : state) {
    switch (state.range(3)) {
      case 0: net::gemm_f64_exact_sums(qa.values.data(), qb.values.data(), c.data(), m, k, n); break;
      case 1: net::gemm_exact_sums(cfg.multiplier, qa.values.data(), qb.values.data(), c.data(), m, k, n); break;
      case 2: net::gemm_f64(a.data.data(), b.data.data(), c.data(), m, k, n, /*exact_products=*/true); break;
      case 3:
        net::gemm_exact_sums(cfg.multiplier, ref::F32Operands{qa_f.data(), qb_panels.data(), m, k, n}, c.data());
        break;
      default: net::gemm_f64(a_f.data(), b_f.data(), c.data(), m, k, n); break;
    }
    benchmark::DoNotOptimize(c.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * m * k * n));
}
BENCHMARK(BM_RunYardstick)
    ->ArgsProduct({{16}, {144}, {784}, {0, 1, 2, 3, 4}})
    ->ArgsProduct({{32}, {288}, {196}, {0, 1, 2, 3, 4}})
    ->ArgsProduct({{49}, {576}, {64}, {0, 1, 2, 3, 4}})
    ->ArgsProduct({{64}, {576}, {49}, {2, 4}})  // `layer` keeps the canonical orientation
    ->ArgNames({"m", "k", "n", "route"});

// The low-bit pass of `accsim run` on the shipped ResNet trace, statistics
// included (as `accsim run` does it per sample: events, errors against the
// double yardsticks and against the FP32 run's layer outputs).
void BM_RunLowbitPass(benchmark::State& state) {
  constexpr std::size_t kSamples = 16;
  const net::Trace trace = net::load_trace(net::default_trace_dir(), kSamples);
  const net::Network& network = trace.network;
  const net::Executor fp32(network, std::vector<net::LayerArithmetic>(network.gemm_layers.size()));
  const net::Executor lowbit(network, net::resolve_layers(network, run_defaults(), {}));
  auto ws_fp32 = fp32.make_workspace();
  auto ws = lowbit.make_workspace();
  // The FP32 run's layer outputs, computed once: not part of the low-bit pass.
  std::vector<std::vector<std::vector<float>>> fp32_layers(kSamples);
  for (std::size_t s = 0; s < kSamples; ++s) {
    (void)fp32.run(std::span<const float>(trace.inputs).subspan(s * trace.sample_size, trace.sample_size), *ws_fp32);
    for (std::size_t l = 0; l < network.gemm_layers.size(); ++l) {
      const auto out = fp32.layer_output(*ws_fp32, l);
      fp32_layers[s].emplace_back(out.begin(), out.end());
    }
  }
  std::vector<net::LayerStats> stats(network.gemm_layers.size());
  for (auto _ : state) {
    for (std::size_t s = 0; s < kSamples; ++s) {
      const auto logits = lowbit.run(
          std::span<const float>(trace.inputs).subspan(s * trace.sample_size, trace.sample_size), *ws, stats,
          &fp32_layers[s]);
      benchmark::DoNotOptimize(logits.data());
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kSamples * network.macs_per_sample()));
  state.SetLabel(trace.name + ", " + net::describe(run_defaults()));
}
BENCHMARK(BM_RunLowbitPass)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
