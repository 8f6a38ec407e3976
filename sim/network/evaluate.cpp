#include "sim/network/evaluate.hpp"

#include <time.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <mutex>
#include <thread>

#include "models/reference/parallel.hpp"

namespace accsim::net {
namespace {

using Clock = std::chrono::steady_clock;

// CPU time of the calling thread: what a phase costs, whatever else the
// machine is doing.
double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct SampleResult {
  std::uint32_t fp32_pred = 0, lowbit_pred = 0;
  double rel_deviation = 0, abs_deviation = 0;
};

}  // namespace

Evaluation evaluate(const Trace& trace, const Executor& fp32, const Executor& lowbit, const EvalOptions& options) {
  const std::size_t n = trace.samples;
  const std::size_t layers = trace.network.gemm_layers.size();
  std::vector<SampleResult> results(n);
  std::vector<LayerStats> sample_stats(n * layers);
  const unsigned threads = static_cast<unsigned>(std::min<std::size_t>(ref::resolve_threads(options.threads), std::max<std::size_t>(n, 1)));

  std::atomic<std::size_t> next{0}, done{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  std::vector<double> fp32_time(threads, 0.0), lowbit_time(threads, 0.0);
  std::vector<PhaseTimes> phases(threads);

  auto worker = [&](unsigned t) {
    try {
      auto ws_fp32 = fp32.make_workspace(/*keep_layer_outputs=*/false);  // run() records them
      auto ws_lowbit = lowbit.make_workspace(/*keep_layer_outputs=*/false);
      if (options.phase_timing) ws_lowbit->phase_times = &phases[t];
      std::vector<std::vector<float>> fp32_layers(layers);
      for (std::size_t i = next++; i < n && !failed; i = next++) {
        const std::span<const float> input(trace.inputs.data() + i * trace.sample_size, trace.sample_size);
        const float* golden = trace.golden.data() + i * trace.classes;
        SampleResult& r = results[i];

        const double t0 = thread_cpu_seconds();
        const std::span<const float> ref_logits = fp32.run(input, *ws_fp32, {}, nullptr, &fp32_layers);
        r.fp32_pred = static_cast<std::uint32_t>(argmax(ref_logits.data(), ref_logits.size()));
        double golden_max = 0;
        for (std::size_t c = 0; c < trace.classes; ++c) {
          golden_max = std::max(golden_max, std::fabs(static_cast<double>(golden[c])));
          r.abs_deviation = std::max(r.abs_deviation, std::fabs(static_cast<double>(ref_logits[c]) - golden[c]));
        }
        r.rel_deviation = golden_max > 0 ? r.abs_deviation / golden_max : r.abs_deviation;
        const double t1 = thread_cpu_seconds();
        const std::span<LayerStats> stats(sample_stats.data() + i * layers, layers);
        const std::span<const float> logits = lowbit.run(input, *ws_lowbit, stats, &fp32_layers);
        r.lowbit_pred = static_cast<std::uint32_t>(argmax(logits.data(), logits.size()));
        const double t2 = thread_cpu_seconds();
        fp32_time[t] += t1 - t0;
        lowbit_time[t] += t2 - t1;
        ++done;
      }
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!error) error = std::current_exception();
      failed = true;
    }
  };

  const auto start = Clock::now();
  {
    std::vector<std::jthread> pool;
    for (unsigned t = 0; t < threads; ++t) pool.emplace_back(worker, t);
    if (options.progress) {
      while (done < n && !failed) {
        options.progress(done, n);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }  // joins
  if (error) std::rethrow_exception(error);
  if (options.progress) options.progress(n, n);

  Evaluation e;
  e.samples = n;
  e.threads = threads;
  e.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (unsigned t = 0; t < threads; ++t) {
    e.fp32_seconds += fp32_time[t];
    e.lowbit_seconds += lowbit_time[t];
    e.lowbit_phases += phases[t];
  }
  e.layers.assign(layers, LayerStats{});
  for (std::size_t i = 0; i < n; ++i) {
    const SampleResult& r = results[i];
    const auto label = static_cast<std::uint32_t>(trace.labels[i]);
    const auto golden = static_cast<std::uint32_t>(argmax(trace.golden.data() + i * trace.classes, trace.classes));
    e.golden_pred.push_back(golden);
    e.fp32_pred.push_back(r.fp32_pred);
    e.lowbit_pred.push_back(r.lowbit_pred);
    e.framework_correct += golden == label;
    e.fp32_correct += r.fp32_pred == label;
    e.lowbit_correct += r.lowbit_pred == label;
    e.fp32_agrees_golden += r.fp32_pred == golden;
    e.lowbit_agrees_fp32 += r.lowbit_pred == r.fp32_pred;
    e.max_rel_deviation = std::max(e.max_rel_deviation, r.rel_deviation);
    e.max_abs_deviation = std::max(e.max_abs_deviation, r.abs_deviation);
    for (std::size_t l = 0; l < layers; ++l) e.layers[l] += sample_stats[i * layers + l];
  }
  return e;
}

}  // namespace accsim::net
