// Runs a trace twice per sample, in the FP32 baseline and in the low-bit
// configuration, and gathers accuracy, agreement and per-layer statistics.
// Samples are spread over threads; everything is summed in sample order
// afterwards, so results are identical for any thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "sim/network/executor.hpp"
#include "sim/network/trace.hpp"

namespace accsim::net {

struct EvalOptions {
  unsigned threads = 0;  // 0: every hardware thread
  // Called now and then from the calling thread with the number of samples
  // done so far; may be empty.
  std::function<void(std::size_t done, std::size_t total)> progress;
  bool phase_timing = false;  // split the low-bit runs' CPU time by phase (Evaluation::lowbit_phases)
};

struct Evaluation {
  std::size_t samples = 0;
  std::vector<std::uint32_t> golden_pred, fp32_pred, lowbit_pred;  // argmax per sample
  std::size_t framework_correct = 0, fp32_correct = 0, lowbit_correct = 0;
  std::size_t fp32_agrees_golden = 0;   // samples where FP32 and the framework pick the same class
  std::size_t lowbit_agrees_fp32 = 0;
  // FP32 logits against golden.npy: per sample max|fp32 - golden| / max|golden|,
  // and max|fp32 - golden|; the maximum over samples of each.
  double max_rel_deviation = 0;
  double max_abs_deviation = 0;
  std::vector<LayerStats> layers;  // low-bit run, per GEMM layer, summed over samples
  double fp32_seconds = 0;    // CPU time (thread clocks) of the FP32 runs, summed over threads
  double lowbit_seconds = 0;  // CPU time of the low-bit runs, their statistics included
  PhaseTimes lowbit_phases;   // the same by phase, with EvalOptions::phase_timing
  double wall_seconds = 0;
  unsigned threads = 1;
};

// `fp32` and `lowbit` are executors of trace.network.
[[nodiscard]] Evaluation evaluate(const Trace& trace, const Executor& fp32, const Executor& lowbit,
                                  const EvalOptions& options);

}  // namespace accsim::net
