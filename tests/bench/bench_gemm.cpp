// Bit-exact emulated MACs per second of the reference GEMM, beside OpenBLAS
// FP32 GEMM of the same size measured in the same run.
//
//   build/release/tests/bench/bench_gemm --benchmark_counters_tabular=true
//
// Items per second = MACs per second (M*N*K per iteration).
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <random>

#include "models/reference/gemm.hpp"
#include "models/reference/parallel.hpp"

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

struct Operands {
  ref::QuantizedOperand a, b;
};

const Operands& operands() {
  static const Operands ops = [] {
    const auto fmt = num::formats::e4m3();
    return Operands{
        ref::quantize_operand(random_matrix(kSize, kSize, 1), fmt, ref::Scaling::pow2, ref::ScaleAxis::rows, 1),
        ref::quantize_operand(random_matrix(kSize, kSize, 2), fmt, ref::Scaling::pow2, ref::ScaleAxis::cols, 2)};
  }();
  return ops;
}

// args: accumulator (0: paper's M7E4 rtz ftz, 1: M7E4 rne), order (0:
// sequential, 1: chunked:16), threads (0: all).
void BM_ReferenceGemm(benchmark::State& state) {
  ref::GemmConfig cfg;
  cfg.multiplier = num::formats::e4m3();
  cfg.accumulator = num::parse_format(state.range(0) == 0 ? "M7E4,bias=10,round=rtz,ftz" : "M7E4");
  cfg.order = ref::parse_order(state.range(1) == 0 ? "sequential" : "chunked:16");
  cfg.threads = static_cast<unsigned>(state.range(2));
  cfg.error_stats = false;
  const Operands& ops = operands();
  bool fast = false;
  for (auto _ : state) {
    ref::GemmResult r = ref::accumulate_products(ops.a, ops.b, cfg);
    fast = r.stats.fast_path;
    benchmark::DoNotOptimize(r.c_bits.data());
  }
  const unsigned threads = ref::resolve_threads(cfg.threads);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kSize * kSize * kSize));
  state.counters["threads"] = threads;
  state.counters["fast_path"] = fast;
  state.counters["MAC/s/core"] = benchmark::Counter(static_cast<double>(kSize * kSize * kSize) / threads,
                                                   benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(num::to_string(cfg.accumulator) + " " + ref::to_string(cfg.order));
}
BENCHMARK(BM_ReferenceGemm)
    ->ArgsProduct({{0, 1}, {0, 1}, {1, 0}})
    ->ArgNames({"acc", "chunked", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The general path (num::mac per step), for the fast path's speed-up.
void BM_ReferenceGemmGeneralPath(benchmark::State& state) {
  ref::GemmConfig cfg;
  cfg.accumulator = num::parse_format("M7E4,bias=10,round=rtz,ftz");
  cfg.order = ref::parse_order("chunked:16");
  cfg.threads = 1;
  cfg.allow_fast_path = false;
  const Operands& ops = operands();
  for (auto _ : state) benchmark::DoNotOptimize(ref::accumulate_products(ops.a, ops.b, cfg).c_bits.data());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kSize * kSize * kSize));
}
BENCHMARK(BM_ReferenceGemmGeneralPath)->Unit(benchmark::kMillisecond)->UseRealTime();

// OpenBLAS FP32 GEMM of the same size: the ratio that matters.
void BM_OpenBlasSgemm(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0) == 0 ? ref::resolve_threads(0) : state.range(0));
  openblas_set_num_threads(threads);
  std::vector<float> a(kSize * kSize), b(kSize * kSize), c(kSize * kSize);
  const Operands& ops = operands();
  for (std::size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<float>(ops.a.values[i]);
    b[i] = static_cast<float>(ops.b.values[i]);
  }
  const int n = static_cast<int>(kSize);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    benchmark::DoNotOptimize(c.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kSize * kSize * kSize));
  state.counters["threads"] = threads;
  state.counters["MAC/s/core"] = benchmark::Counter(static_cast<double>(kSize * kSize * kSize) / threads,
                                                   benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_OpenBlasSgemm)->Arg(1)->Arg(0)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
