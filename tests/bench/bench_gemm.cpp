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
//   path        3: plan_f32's float lanes, 2: the specialized double lanes
//               (plan_fast), 1: the lanes for every other exact format
//               (plan_any_lanes), 0: general
//   overflow/op, underflow/op, swamp/op  the accumulator's event rates
//
// Rows named .../f32:<isa> force the float lanes' ISA (set_lane_isa);
// .../f64 keep plan_fast's route in double lanes (allow_f32_lanes off), the
// baseline of the float lanes measured in the same run. Rows named
// .../MxKxN are other shapes: the ResNet-8 of traces/fmnist_resnet's
// convolutions as W x im2col(X) (M output channels, K = 9 x input
// channels, N output positions), with accsim run's default formats; their
// x_sgemm is against sgemm of the same shape. The closing note prints the
// paper rows beside sgemm, the core count and the CPU's vector ISAs.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <map>
#include <optional>
#include <thread>
#include <tuple>
#include <random>
#include <string>
#include <vector>

#include "models/reference/fast_plan.hpp"
#include "models/reference/gemm.hpp"
#include "models/reference/lanes_f32.hpp"
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
  e3m4_pow2,  // accsim run's default multiplier, pow2 scaled as its activations are
};
struct OperandPair {
  ref::QuantizedOperand a, b;
};
struct Shape {
  std::size_t m = kSize, k = kSize, n = kSize;
  auto operator<=>(const Shape&) const = default;
  [[nodiscard]] double macs() const { return static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n); }
};
num::Format multiplier_of(Operands kind) {
  switch (kind) {
    case Operands::int8: return num::parse_format("int8");
    case Operands::e3m4_pow2: return num::formats::e3m4();
    case Operands::e4m3_pow2:
    case Operands::e4m3: break;
  }
  return num::formats::e4m3();
}
const OperandPair& operands(Operands kind, Shape shape = {}) {
  static std::map<std::pair<Operands, Shape>, OperandPair> cache;
  auto it = cache.find({kind, shape});
  if (it != cache.end()) return it->second;
  const num::Format fmt = multiplier_of(kind);
  const ref::Scaling s = kind == Operands::e4m3_pow2 || kind == Operands::e3m4_pow2 ? ref::Scaling::pow2
                         : kind == Operands::int8                                   ? ref::Scaling::tensor
                                                                                    : ref::Scaling::none;
  OperandPair pair{ref::quantize_operand(random_matrix(shape.m, shape.k, 1), fmt, s, ref::ScaleAxis::rows, 1),
                   ref::quantize_operand(random_matrix(shape.k, shape.n, 2), fmt, s, ref::ScaleAxis::cols, 2)};
  return cache.emplace(std::pair{kind, shape}, std::move(pair)).first->second;
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

// OpenBLAS FP32 GEMM of the same shape on the e4m3 operands, MAC/s per
// core, measured once per thread count and shape (about half a second):
// per CPU second on one thread, as the rows are.
double sgemm_rate(int threads, Shape shape = {}) {
  static std::map<std::pair<int, Shape>, double> rates;
  if (auto it = rates.find({threads, shape}); it != rates.end()) return it->second;
  openblas_set_num_threads(threads);
  std::vector<float> a(shape.m * shape.k), b(shape.k * shape.n), c(shape.m * shape.n);
  const OperandPair& ops = operands(Operands::e4m3_pow2, shape);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(ops.a.values[i]);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(ops.b.values[i]);
  const int m = static_cast<int>(shape.m), k = static_cast<int>(shape.k), n = static_cast<int>(shape.n);
  const auto run = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
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
  const double rate = static_cast<double>(runs) * shape.macs() / seconds / threads;
  rates.emplace(std::pair{threads, shape}, rate);
  return rate;
}

struct Row {
  std::string accumulator;
  Operands operands = Operands::e4m3;
  std::string product;                // empty: exact products
  std::optional<ref::LaneIsa> isa;    // force the float lanes' ISA
  bool f32 = true;                    // false: plan_fast's route in double lanes only
  Shape shape;
  std::optional<std::string> order;   // only this order (else sequential and chunked:16)
  [[nodiscard]] std::string variant() const {
    std::string out;
    if (isa) out += "/f32:" + std::string(ref::to_string(*isa));
    if (!f32) out += "/f64";
    if (shape != Shape{}) {
      out += "/" + std::to_string(shape.m) + "x" + std::to_string(shape.k) + "x" + std::to_string(shape.n);
    }
    return out;
  }
};

constexpr const char* kPaper = "M7E4,bias=-4,round=rtz,ftz";
constexpr const char* kRunAccumulator = "M7E4,bias=4,round=rtz,ftz";  // accsim run's defaults
constexpr const char* kRunProduct = "M7E4,bias=6,round=rtz,ftz";

// Every accumulator a sweep would include, in rne, rtz and sr; the paper's
// configuration first, then the float lanes per ISA and accsim run's
// configuration on the network's shapes.
Row row(std::string accumulator, Operands kind) {
  Row r;
  r.accumulator = std::move(accumulator);
  r.operands = kind;
  return r;
}

std::vector<Row> rows() {
  std::vector<Row> out = {
      row(kPaper, Operands::e4m3_pow2),  // the paper's (see below)
      row("M7E4,bias=-4", Operands::e4m3_pow2),
  };
  for (const char* base : {"fp32", "bf16", "fp16", "M10E5", "M7E4", "M5E4", "M3E4"}) {
    for (const char* mode : {"", ",round=rtz", ",round=sr"}) out.push_back(row(std::string(base) + mode, Operands::e4m3));
  }
  for (const char* integer : {"int32", "int32,sat", "int16", "int16,sat"}) out.push_back(row(integer, Operands::int8));
  // The float lanes forced to each ISA, and the double lanes they replace.
  for (ref::LaneIsa isa : {ref::LaneIsa::avx512, ref::LaneIsa::avx2, ref::LaneIsa::baseline}) {
    out.push_back(row(kPaper, Operands::e4m3_pow2));
    out.back().isa = isa;
  }
  out.push_back(row(kPaper, Operands::e4m3_pow2));
  out.back().f32 = false;
  // accsim run's configuration, on the cube and on ResNet-8's convolutions
  // (stem; stage 1, 2 and 3's 3x3 convolutions; stage 2's and 3's also as
  // im2row(X) x W^T, the orientation accsim run picks when it takes fewer
  // passes of the kernel's panels, ref::lane_passes), in float and double lanes.
  for (const Shape shape : {Shape{}, Shape{16, 9, 784}, Shape{16, 144, 784}, Shape{32, 288, 196}, Shape{196, 288, 32},
                            Shape{64, 576, 49}, Shape{49, 576, 64}}) {
    for (bool f32 : {true, false}) {
      Row r = row(kRunAccumulator, Operands::e3m4_pow2);
      r.product = kRunProduct;
      r.order = "chunked:16";
      r.shape = shape;
      r.f32 = f32;
      out.push_back(r);
    }
  }
  return out;
}

// Each one-thread row's MAC/s per core and x_sgemm, for the closing note.
std::map<std::string, std::pair<double, double>>& measured() {
  static std::map<std::string, std::pair<double, double>> rates;
  return rates;
}

// The accumulators' biases of the paper rows. pow2 scaling puts each
// operand's largest magnitude in e4m3's top binade, [256, 448], so products
// reach 448^2 < 2^18. Following the rule of docs/run.md, b_prod is the
// largest bias whose M7E4 still holds every product (top binade
// 2^(15 - b) >= 2^17: b_prod = -2) and the paper's b_acc = b_prod -
// log2(16)/2 = -4. That is the paper's own pair (12, 10) for inputs in
// [2, 4): e4m3's operands here sit 7 binades higher, their products 14.
// The counters report the event rates, so the choice is visible.
void BM_ReferenceGemm(benchmark::State& state, const Row& row, const std::string& name, const char* order,
                      unsigned requested_threads) {
  ref::GemmConfig cfg;
  const OperandPair& ops = operands(row.operands, row.shape);
  cfg.multiplier = multiplier_of(row.operands);
  if (!row.product.empty()) cfg.product = num::parse_format(row.product);
  cfg.accumulator = num::parse_format(row.accumulator);
  cfg.order = ref::parse_order(order);
  cfg.threads = requested_threads;
  cfg.error_stats = false;
  cfg.allow_f32_lanes = row.f32;
  const unsigned threads = ref::resolve_threads(cfg.threads);
  const double sgemm = sgemm_rate(static_cast<int>(threads), row.shape);
  const num::Format c_format = cfg.order.merge(cfg.accumulator);
  ref::set_lane_isa(row.isa);
  const std::optional<ref::F32Plan> f32 = ref::plan_f32(cfg, c_format, ops.a, ops.b);
  const int path = row.f32 && f32 && ref::use_f32_lanes(*f32)       ? 3
                   : ref::plan_fast(cfg, c_format, ops.a, ops.b)      ? 2
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
  ref::set_lane_isa(std::nullopt);
  const double macs = row.shape.macs();
  const auto rate = [&](std::uint64_t n) { return static_cast<double>(n) / static_cast<double>(acc_events.ops); };
  state.counters["overflow/op"] = rate(acc_events.overflow);
  state.counters["underflow/op"] = rate(acc_events.underflow);
  state.counters["swamp/op"] = rate(acc_events.swamp);
  state.SetItemsProcessed(static_cast<std::int64_t>(static_cast<double>(state.iterations()) * macs));
  state.counters["threads"] = threads;
  state.counters["path"] = path;
  state.counters["MAC/s/core"] =
      benchmark::Counter(macs / threads, benchmark::Counter::kIsIterationInvariantRate);
  // sgemm's MAC/s per core over this row's.
  const double row_rate = static_cast<double>(state.iterations()) * macs / seconds / static_cast<double>(threads);
  state.counters["x_sgemm"] = sgemm / row_rate;
  state.SetLabel(row.accumulator + (row.product.empty() ? "" : " prod " + row.product) + " " + order);
  if (threads == 1) measured()[name] = {row_rate, sgemm / row_rate};
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

// The closing note: the paper's configuration and accsim run's beside
// sgemm measured in this run, the core count and the CPU's vector ISAs. On
// stderr, so that --benchmark_format=json keeps stdout one JSON document.
void closing_note() {
  std::fprintf(stderr, "\nOne thread, 256x256x256 unless named; MAC/s per CPU second of the GEMM's thread.\n");
  std::fprintf(stderr, "OpenBLAS sgemm: %.3g MAC/s per core; cores: %u; float lanes: %s (best this CPU runs: %s)\n",
              sgemm_rate(1), std::thread::hardware_concurrency(), std::string(ref::to_string(ref::lane_isa())).c_str(),
              std::string(ref::to_string(ref::cpu_lane_isa())).c_str());
  std::fprintf(stderr, "CPU:%s%s%s%s\n", __builtin_cpu_supports("avx512f") ? " avx512f" : "",
              __builtin_cpu_supports("avx512bw") ? " avx512bw" : "", __builtin_cpu_supports("avx2") ? " avx2" : "",
              __builtin_cpu_supports("fma") ? " fma" : "");
  std::fprintf(stderr, "%-72s %12s %8s\n", "row", "MAC/s/core", "x_sgemm");
  for (const auto& [name, figures] : measured()) {
    std::fprintf(stderr, "%-72s %12.3g %8.1f\n", name.c_str(), figures.first, figures.second);
  }
}

}  // namespace

int main(int argc, char** argv) {
  static const std::vector<Row> table = rows();
  static std::vector<std::string> names;  // BM_ReferenceGemm holds a reference
  names.reserve(table.size() * 4);
  for (const unsigned threads : {1u, 0u}) {
    for (const Row& row : table) {
      for (const char* order : {"sequential", "chunked:16"}) {
        if (row.order && *row.order != order) continue;
        names.push_back("BM_ReferenceGemm/" + row.accumulator + (row.product.empty() ? "" : "/prod:" + row.product) +
                        "/" + order + row.variant() + "/threads:" +
                        (threads == 0 ? std::string("all") : std::to_string(threads)));
        const std::string& name = names.back();
        auto* b = benchmark::RegisterBenchmark(name.c_str(), BM_ReferenceGemm, row, name, order, threads);
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
  closing_note();
  return 0;
}
