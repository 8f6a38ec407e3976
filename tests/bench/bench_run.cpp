// `accsim run`'s low-bit pass beside the reference GEMM alone, with the same
// formats (the run's defaults), measured in the same run: the ratio of their
// MACs per CPU second is what the run's lowering, quantization and
// statistics cost on top of the arithmetic. BM_RunPassOverGemm measures the
// two in turns and reports that ratio, against the engine alone and against
// the GEMM as bench_gemm's row times it:
//
//   build/release/tests/bench/bench_run --benchmark_counters_tabular=true
//   build/release/tests/bench/bench_run --benchmark_filter=PassOverGemm --benchmark_repetitions=5
//
// Items per second = MACs per CPU second of the benchmark's thread.
#include <benchmark/benchmark.h>

#include <time.h>

#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>

#include "models/reference/gemm.hpp"
#include "models/reference/lanes_f32.hpp"
#include "sim/network/executor.hpp"
#include "sim/network/float_gemm.hpp"
#include "sim/network/kernels.hpp"
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
// layout, 4 `layer`'s GEMM of float operands; 5 route 3 on the AVX-512BW
// kernel where the run takes VNNI's (net::set_int16_vnni), for its gain.
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
      case 5:
        net::set_int16_vnni(state.range(3) == 3 ? std::nullopt : std::optional(false));
        net::gemm_exact_sums(cfg.multiplier, ref::F32Operands{qa_f.data(), qb_panels.data(), m, k, n}, c.data());
        break;
      default: net::gemm_f64(a_f.data(), b_f.data(), c.data(), m, k, n); break;
    }
    benchmark::DoNotOptimize(c.data());
  }
  net::set_int16_vnni(std::nullopt);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * m * k * n));
}
BENCHMARK(BM_RunYardstick)
    ->ArgsProduct({{16}, {144}, {784}, {0, 1, 2, 3, 4, 5}})
    ->ArgsProduct({{32}, {288}, {196}, {0, 1, 2, 3, 4, 5}})
    ->ArgsProduct({{49}, {576}, {64}, {0, 1, 2, 3, 4, 5}})
    ->ArgsProduct({{64}, {576}, {49}, {2, 4}})  // `layer` keeps the canonical orientation
    ->ArgNames({"m", "k", "n", "route"});

// The lowering of a 3x3 convolution's activations as the run does it, per
// sample: channels x size x size, stride 1 or 2, padding 1. layout: 0
// im2col row-major (the `layer` yardstick's operand), 1 im2col into the
// float lanes' panels, 2 im2row (a transposed layer's). Items: elements
// written.
void BM_RunLowering(benchmark::State& state) {
  const std::int64_t channels = state.range(0), size = state.range(1), stride = state.range(2);
  net::Window2d w;
  w.kernel_h = w.kernel_w = 3;
  w.stride_h = w.stride_w = stride;
  w.pad_top = w.pad_left = w.pad_bottom = w.pad_right = 1;
  const std::int64_t out = (size + 2 - 3) / stride + 1, k = channels * 9, n = out * out;
  std::vector<float> x(static_cast<std::size_t>(channels * size * size));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 251) - 125.0f;
  std::vector<float> dst(ref::f32_b_size(static_cast<std::size_t>(k), static_cast<std::size_t>(n)));
  constexpr auto kPanel = static_cast<std::int64_t>(ref::kF32PanelCols);
  for (auto _ : state) {
    switch (state.range(3)) {
      case 0: net::im2col(x.data(), channels, size, size, w, out, out, 0.0f, dst.data()); break;
      case 1: net::im2col(x.data(), channels, size, size, w, out, out, 0.0f, dst.data(), kPanel, kPanel, k * kPanel); break;
      default: net::im2row(x.data(), channels, size, size, w, out, out, 0.0f, dst.data()); break;
    }
    benchmark::DoNotOptimize(dst.data());
  }
  state.SetItemsProcessed(state.iterations() * k * n);
}
BENCHMARK(BM_RunLowering)
    ->ArgsProduct({{16}, {28}, {1}, {0, 1}})
    ->ArgsProduct({{16}, {28}, {2}, {0, 1}})
    ->ArgsProduct({{32}, {14}, {1}, {0, 1}})
    ->ArgsProduct({{64}, {7}, {1}, {0, 2}})
    ->ArgNames({"c", "size", "stride", "layout"});

// The low-bit pass of `accsim run` on the shipped ResNet trace, statistics
// included (as `accsim run` does it per sample: events, errors against the
// double yardsticks and against the FP32 run's layer outputs).
class LowbitPass {
 public:
  static constexpr std::size_t kSamples = 16;
  LowbitPass()
      : trace_(net::load_trace(net::default_trace_dir(), kSamples)),
        fp32_(trace_.network, std::vector<net::LayerArithmetic>(trace_.network.gemm_layers.size())),
        lowbit_(trace_.network, net::resolve_layers(trace_.network, run_defaults(), {})),
        ws_(lowbit_.make_workspace()),
        stats_(trace_.network.gemm_layers.size()) {
    // The FP32 run's layer outputs, computed once: not part of the low-bit pass.
    auto ws_fp32 = fp32_.make_workspace();
    fp32_layers_.resize(kSamples);
    for (std::size_t s = 0; s < kSamples; ++s) {
      (void)fp32_.run(input(s), *ws_fp32);
      for (std::size_t l = 0; l < trace_.network.gemm_layers.size(); ++l) {
        const auto out = fp32_.layer_output(*ws_fp32, l);
        fp32_layers_[s].emplace_back(out.begin(), out.end());
      }
    }
  }
  void run() {
    for (std::size_t s = 0; s < kSamples; ++s) {
      const auto logits = lowbit_.run(input(s), *ws_, stats_, &fp32_layers_[s]);
      benchmark::DoNotOptimize(logits.data());
    }
  }
  std::int64_t macs() const { return static_cast<std::int64_t>(kSamples * trace_.network.macs_per_sample()); }
  std::string label() const { return trace_.name + ", " + net::describe(run_defaults()); }

 private:
  std::span<const float> input(std::size_t s) const {
    return std::span<const float>(trace_.inputs).subspan(s * trace_.sample_size, trace_.sample_size);
  }
  net::Trace trace_;
  net::Executor fp32_, lowbit_;
  std::unique_ptr<net::Executor::Workspace> ws_;
  std::vector<std::vector<std::vector<float>>> fp32_layers_;
  std::vector<net::LayerStats> stats_;
};

void BM_RunLowbitPass(benchmark::State& state) {
  LowbitPass pass;
  for (auto _ : state) pass.run();
  state.SetItemsProcessed(state.iterations() * pass.macs());
  state.SetLabel(pass.label());
}
BENCHMARK(BM_RunLowbitPass)->Unit(benchmark::kMillisecond);

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// The pass and the GEMM interleaved: each iteration one pass, then as many
// MACs of each of two GEMMs of the run's formats on a 256-cube, in this
// order, each timed on the thread's CPU clock. On a shared machine whose
// speed drifts from one second to the next, the two measured apart can land
// on different speeds; measured in turns they share them. The GEMMs:
//   engine      BM_RunFormatsGemm/relu_b:1's operands into a result reused
//               from call to call, values only: the engine alone, as the
//               pass calls it;
//   bench_gemm  as bench_gemm's row of the run's formats measures itself:
//               normal operands, a fresh result with its encodings each call
//               (5-9% slower here).
// `ratio_bench_gemm` and `ratio` are the pass's MACs per CPU second over
// each: the figure and the stricter one.
void BM_RunPassOverGemm(benchmark::State& state) {
  constexpr std::size_t kSize = 256;
  LowbitPass pass;
  const ref::GemmConfig cfg = run_defaults().config;
  const auto quantize = [&](std::uint64_t seed, bool relu, ref::ScaleAxis axis) {
    return ref::quantize_operand(random_matrix(kSize, kSize, seed, relu), cfg.multiplier, cfg.scaling, axis, seed);
  };
  const auto qa = quantize(1, false, ref::ScaleAxis::rows);
  const auto qb = quantize(2, false, ref::ScaleAxis::cols), qb_relu = quantize(2, true, ref::ScaleAxis::cols);
  constexpr auto kGemmMacs = static_cast<std::int64_t>(kSize * kSize * kSize);
  const std::int64_t gemms = (pass.macs() + kGemmMacs / 2) / kGemmMacs;
  ref::GemmResult reused;
  double pass_seconds = 0, bench_gemm_seconds = 0, engine_seconds = 0;
  for (auto _ : state) {
    const double t0 = thread_cpu_seconds();
    pass.run();
    const double t1 = thread_cpu_seconds();
    for (std::int64_t g = 0; g < gemms; ++g) {
      ref::accumulate_products(qa, qb_relu, cfg, reused, /*encodings=*/false);
      benchmark::DoNotOptimize(reused.c.data.data());
    }
    const double t2 = thread_cpu_seconds();
    for (std::int64_t g = 0; g < gemms; ++g) {
      const ref::GemmResult r = ref::accumulate_products(qa, qb, cfg);
      benchmark::DoNotOptimize(r.c_bits.data());
    }
    pass_seconds += t1 - t0;
    engine_seconds += t2 - t1;
    bench_gemm_seconds += thread_cpu_seconds() - t2;
  }
  const auto n = static_cast<double>(state.iterations());
  const double pass_rate = n * static_cast<double>(pass.macs()) / pass_seconds;
  const double gemm_macs = n * static_cast<double>(gemms * kGemmMacs);
  const double bench_gemm_rate = gemm_macs / bench_gemm_seconds, engine_rate = gemm_macs / engine_seconds;
  state.counters["pass_macs_per_s"] = pass_rate;
  state.counters["bench_gemm_macs_per_s"] = bench_gemm_rate;
  state.counters["engine_macs_per_s"] = engine_rate;
  state.counters["ratio_bench_gemm"] = pass_rate / bench_gemm_rate;
  state.counters["ratio"] = pass_rate / engine_rate;
  state.SetLabel(pass.label());
}
BENCHMARK(BM_RunPassOverGemm)->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
