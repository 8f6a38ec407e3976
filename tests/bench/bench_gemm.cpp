// Bit-exact emulated MACs per second of the reference GEMM, one row per
// accumulator format, rounding mode and order, beside OpenBLAS FP32 GEMM of
// the same size measured in the same run.
//
//   build/release/tests/bench/bench_gemm --benchmark_counters_tabular=true
//   build/release/tests/bench/bench_gemm --benchmark_filter='fp32|int16'
//
// Items per second = MACs per second (M*N*K per iteration), per CPU second
// of the GEMM's thread in the one-thread rows and per wall-clock second in
// the others. Counters:
//   MAC/s/core  MACs per second and thread
//   x_sgemm     OpenBLAS sgemm's MAC/s per core (same thread count, measured
//               once at start-up in this run) / this row's
//   path        2: the specialized double lanes (plan_fast), 1: the lanes
//               for every other exact format (plan_any_lanes), 0: general
//   overflow/op, underflow/op, swamp/op  the accumulator's event rates
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <chrono>
#include <ctime>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "models/reference/fast_plan.hpp"
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

// Operands of a row: the same two normal(0, 1) matrices, rounded into the
// row's multiplier format.
enum class Operands {
  e4m3_pow2,  // the paper's: pow2 scaling puts the largest in e4m3's top binade
  e4m3,       // unscaled: products near 1, which fp16 and narrow formats hold
  int8,       // tensor scaling to +-127
};
struct OperandPair {
  ref::QuantizedOperand a, b;
};
const OperandPair& operands(Operands kind) {
  static std::map<Operands, OperandPair> cache;
  auto it = cache.find(kind);
  if (it != cache.end()) return it->second;
  const num::Format fmt = kind == Operands::int8 ? num::parse_format("int8") : num::formats::e4m3();
  const ref::Scaling s =
      kind == Operands::e4m3_pow2 ? ref::Scaling::pow2 : kind == Operands::int8 ? ref::Scaling::tensor : ref::Scaling::none;
  OperandPair pair{ref::quantize_operand(random_matrix(kSize, kSize, 1), fmt, s, ref::ScaleAxis::rows, 1),
                   ref::quantize_operand(random_matrix(kSize, kSize, 2), fmt, s, ref::ScaleAxis::cols, 2)};
  return cache.emplace(kind, std::move(pair)).first->second;
}

// Seconds of this thread's CPU time (one thread), or of the wall clock.
double now(bool cpu) {
  if (cpu) {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// OpenBLAS FP32 GEMM of the same size on the e4m3 operands, MAC/s per core,
// measured once per thread count (about half a second): per CPU second on
// one thread, as the rows are.
double sgemm_rate(int threads) {
  static std::map<int, double> rates;
  if (auto it = rates.find(threads); it != rates.end()) return it->second;
  openblas_set_num_threads(threads);
  std::vector<float> a(kSize * kSize), b(kSize * kSize), c(kSize * kSize);
  const OperandPair& ops = operands(Operands::e4m3_pow2);
  for (std::size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<float>(ops.a.values[i]);
    b[i] = static_cast<float>(ops.b.values[i]);
  }
  const int n = static_cast<int>(kSize);
  const auto run = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  };
  run();  // warm up
  const bool cpu = threads == 1;
  const double start = now(cpu);
  std::size_t runs = 0;
  double seconds = 0;
  do {
    run();
    ++runs;
    seconds = now(cpu) - start;
  } while (seconds < 0.5);
  benchmark::DoNotOptimize(c.data());
  const double rate = static_cast<double>(runs * kSize * kSize * kSize) / seconds / threads;
  rates.emplace(threads, rate);
  return rate;
}

struct Row {
  std::string accumulator;
  Operands operands;
};

// Every accumulator a sweep would include, in rne, rtz and sr; the paper's
// configuration first.
std::vector<Row> rows() {
  std::vector<Row> out = {
      {"M7E4,bias=-4,round=rtz,ftz", Operands::e4m3_pow2},  // the paper's (see below)
      {"M7E4,bias=-4", Operands::e4m3_pow2},
  };
  for (const char* base : {"fp32", "bf16", "fp16", "M10E5", "M7E4", "M5E4", "M3E4"}) {
    for (const char* mode : {"", ",round=rtz", ",round=sr"}) out.push_back({std::string(base) + mode, Operands::e4m3});
  }
  for (const char* integer : {"int32", "int32,sat", "int16", "int16,sat"}) out.push_back({integer, Operands::int8});
  return out;
}

// The accumulators' biases of the paper rows. pow2 scaling puts each
// operand's largest magnitude in e4m3's top binade, [256, 448], so products
// reach 448^2 < 2^18. Following the rule of docs/run.md, b_prod is the
// largest bias whose M7E4 still holds every product (top binade
// 2^(15 - b) >= 2^17: b_prod = -2) and the paper's b_acc = b_prod -
// log2(16)/2 = -4. That is the paper's own pair (12, 10) for inputs in
// [2, 4): e4m3's operands here sit 7 binades higher, their products 14.
// The counters report the event rates, so the choice is visible.
void BM_ReferenceGemm(benchmark::State& state, const Row& row, const char* order, unsigned requested_threads) {
  ref::GemmConfig cfg;
  const OperandPair& ops = operands(row.operands);
  cfg.multiplier = row.operands == Operands::int8 ? num::parse_format("int8") : num::formats::e4m3();
  cfg.accumulator = num::parse_format(row.accumulator);
  cfg.order = ref::parse_order(order);
  cfg.threads = requested_threads;
  cfg.error_stats = false;
  const unsigned threads = ref::resolve_threads(cfg.threads);
  const double sgemm = sgemm_rate(static_cast<int>(threads));
  const num::Format c_format = cfg.order.merge(cfg.accumulator);
  const int path = ref::plan_fast(cfg, c_format, ops.a, ops.b)         ? 2
                   : ref::plan_any_lanes(cfg, c_format, ops.a, ops.b) ? 1
                                                                       : 0;
  num::EventCounts acc_events;
  const bool cpu = threads == 1;  // as the rows' own rates (see main)
  const double start = now(cpu);
  for (auto _ : state) {
    ref::GemmResult r = ref::accumulate_products(ops.a, ops.b, cfg);
    acc_events = r.stats.accumulate;
    benchmark::DoNotOptimize(r.c_bits.data());
  }
  const double seconds = now(cpu) - start;
  const auto rate = [&](std::uint64_t n) { return static_cast<double>(n) / static_cast<double>(acc_events.ops); };
  state.counters["overflow/op"] = rate(acc_events.overflow);
  state.counters["underflow/op"] = rate(acc_events.underflow);
  state.counters["swamp/op"] = rate(acc_events.swamp);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kSize * kSize * kSize));
  state.counters["threads"] = threads;
  state.counters["path"] = path;
  state.counters["MAC/s/core"] = benchmark::Counter(static_cast<double>(kSize * kSize * kSize) / threads,
                                                   benchmark::Counter::kIsIterationInvariantRate);
  // sgemm's MAC/s per core over this row's.
  const double row_rate =
      static_cast<double>(state.iterations() * kSize * kSize * kSize) / seconds / static_cast<double>(threads);
  state.counters["x_sgemm"] = sgemm / row_rate;
  state.SetLabel(row.accumulator + " " + order);
}

// The general path (num::mac per step) on the paper's configuration, for
// the lanes' speed-up.
void BM_ReferenceGemmGeneralPath(benchmark::State& state) {
  ref::GemmConfig cfg;
  cfg.accumulator = num::parse_format("M7E4,bias=-4,round=rtz,ftz");
  cfg.order = ref::parse_order("chunked:16");
  cfg.threads = 1;
  cfg.allow_fast_path = false;
  const OperandPair& ops = operands(Operands::e4m3_pow2);
  for (auto _ : state) benchmark::DoNotOptimize(ref::accumulate_products(ops.a, ops.b, cfg).c_bits.data());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kSize * kSize * kSize));
}

// OpenBLAS FP32 GEMM of the same size, as a row of its own.
void BM_OpenBlasSgemm(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0) == 0 ? ref::resolve_threads(0) : state.range(0));
  openblas_set_num_threads(threads);
  std::vector<float> a(kSize * kSize), b(kSize * kSize), c(kSize * kSize);
  const OperandPair& ops = operands(Operands::e4m3_pow2);
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
BENCHMARK(BM_OpenBlasSgemm)->Arg(1)->ArgName("threads")->Unit(benchmark::kMillisecond);
BENCHMARK(BM_OpenBlasSgemm)->Arg(0)->ArgName("threads")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ReferenceGemmGeneralPath)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  static const std::vector<Row> table = rows();
  for (const unsigned threads : {1u, 0u}) {
    for (const Row& row : table) {
      for (const char* order : {"sequential", "chunked:16"}) {
        const std::string name = "BM_ReferenceGemm/" + row.accumulator + "/" + order + "/threads:" +
                                 (threads == 0 ? std::string("all") : std::to_string(threads));
        auto* b = benchmark::RegisterBenchmark(name.c_str(), BM_ReferenceGemm, row, order, threads);
        b->Unit(benchmark::kMillisecond);
        // One thread: per CPU second of the benchmark's thread, which is the
        // GEMM's, so a busy machine does not deflate the figure. More
        // threads: per wall-clock second.
        if (threads != 1) b->UseRealTime();
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
