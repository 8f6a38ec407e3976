// One GEMM layer (a 2-D convolution or a fully connected layer) run over a
// batch through accsim's network executor: the Python bindings' engine,
// kept free of pybind11 so that it reads like the rest of the C++.
//
// A layer is built as a one-node net::Network (Conv, or Gemm with transB = 1
// as PyTorch exports nn.Linear) and computed exactly as net::Executor runs
// that node inside a trace: the same lowering, the same per-sample rounding
// of activations, the same weight rounding and the same reference GEMM, so a
// layer's output equals the executor's bit for bit. The samples of a batch
// are stacked into a few large GEMMs (or, on request or for stochastic
// rounding, run by net::Executor one at a time). Samples are spread over threads; each output is
// computed by one thread, so results never depend on the thread count.
//
// On request it also replays every output's accumulation (replay.hpp) and
// records what happened along it: a per-output event summary and, for the
// gradient approximations of fine-tuning, which products lose their gradient.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "models/numerics/events.hpp"
#include "python/replay.hpp"
#include "sim/network/executor.hpp"
#include "sim/network/graph.hpp"

namespace accsim::binding {

struct ConvSpec {
  std::int64_t channels = 1, height = 1, width = 1;  // input, per sample
  std::int64_t out_channels = 1;
  net::Window2d window;
  std::int64_t groups = 1;
};

struct LinearSpec {
  std::int64_t in_features = 1, out_features = 1;
};

// A layer ready to run: its Network (weights and bias as constants) and the
// shapes the bindings check against.
struct Layer {
  net::Network network;
  std::size_t sample_in = 0;   // elements of one input sample
  std::size_t sample_out = 0;  // elements of one output sample
  std::int64_t out_channels = 0;  // conv: output channels; linear: out features
  std::size_t positions = 0;      // conv: output height * width; linear: 1
  std::size_t k = 0;              // accumulation length (per group)
  std::int64_t groups = 1;
  std::int64_t out_h = 1, out_w = 1;
};

// `weight` is [out_channels, channels / groups, kH, kW] (PyTorch's layout),
// `bias` [out_channels] or empty. Throws std::invalid_argument naming the
// argument for shapes that do not fit.
[[nodiscard]] Layer make_conv(const ConvSpec& spec, std::span<const float> weight, std::span<const float> bias);
// `weight` is [out_features, in_features], `bias` [out_features] or empty.
[[nodiscard]] Layer make_linear(const LinearSpec& spec, std::span<const float> weight, std::span<const float> bias);

struct RunRequest {
  MaskKind masks = MaskKind::none;
  unsigned threads = 0;  // 0: every hardware thread
  // The reference engine (without stochastic rounding) runs the batch as a
  // few large GEMMs of stacked samples, masks replayed on them (the same
  // bits, masks and tallies as the Executor's per-sample path); per_sample
  // forces the Executor's own per-sample path (for tests and benchmarks).
  bool per_sample = false;
};

struct RunResult {
  // Per output element (sample-major, like `out`): EventBits of its accumulation.
  std::vector<std::uint8_t> events;
  // Per output element, ceil(k / 8) bytes: bit kk (byte kk / 8, bit kk % 8)
  // set when product kk loses its gradient under the requested variant.
  std::vector<std::uint8_t> drop;
  std::size_t drop_stride = 0;  // bytes per output element
  // The reference GEMM's own tallies, and the replay's, over the batch
  // (with masks only).
  Tallies reference, replayed;
};

// Runs `batch` samples (input: batch * sample_in floats, finite) into `out`
// (batch * sample_out floats).
[[nodiscard]] RunResult run_layer(const Layer& layer, const net::LayerArithmetic& arithmetic, const float* input,
                                  std::size_t batch, float* out, const RunRequest& request);

// The gradient the variants take away from the plain straight-through
// estimate: for every dropped product (sample s, output channel o, position
// p, step kk), d_weight[o, kk] += g * cols[s, group(o) * k + kk, p] and
// d_cols[s, group(o) * k + kk, p] += g * weight[o, kk], with g the output
// gradient grad[s, o, p]. `cols` is the lowered input (im2col, [groups * k]
// rows of `positions`; for a linear layer the input itself, positions = 1).
// Sums over samples are taken in sample order, so the result does not depend
// on the thread count.
void drop_correction(const Layer& layer, std::span<const std::uint8_t> drop, std::size_t drop_stride,
                     const float* grad, const float* weight, const float* cols, std::size_t batch,
                     float* d_weight, float* d_cols, unsigned threads);

// Runs a whole network (a trace's model) over a batch with one arithmetic
// per GEMM layer, as `accsim run` does for its low-bit run: the logits, and
// every GEMM layer's output (per sample, concatenated in layer order).
struct NetworkRun {
  std::vector<float> logits;
  std::vector<std::vector<float>> layer_outputs;  // per layer: batch * its output size
  std::vector<net::LayerStats> stats;             // per layer, summed over the batch
  std::vector<num::EventCounts> weight_events;    // per layer, once: net::Executor::weight_events
};
[[nodiscard]] NetworkRun run_network(const net::Network& network, const std::vector<net::LayerArithmetic>& layers,
                                     const float* input, std::size_t batch, bool keep_layer_outputs,
                                     unsigned threads);

[[nodiscard]] unsigned resolve_threads(unsigned requested, std::size_t work_items);

}  // namespace accsim::binding
