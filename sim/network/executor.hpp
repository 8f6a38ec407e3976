// Runs a Network on one sample at a time. The GEMM layers (Conv through
// im2col, Gemm, MatMul) compute with the arithmetic configured per layer;
// every other operator computes in float (kernels.hpp).
//
// Lowering, which fixes what "accumulation order" and "per-channel scaling"
// mean for a layer:
// - Conv: per group, C_g[m x n] = W_g[m x k] * X_g[k x n], W_g the group's
//   weights [M/group, C/group * kH * kW] and X_g = im2col of the group's input
//   channels (kernels.hpp): each output sums k = (c, r, s) in that order (input
//   channel, then kernel row, then kernel column). The bias is added after.
// - Gemm: Y = alpha * A'B' + beta * C, A' = A or A^T, B' = B or B^T; the GEMM
//   is A'B', alpha and beta*C are applied after, in float.
// - MatMul: A [..., M, K] as a [(...*M) x K] matrix times B [K, N] (or [K]).
// Scaling (ref::Scaling): `tensor` and `pow2` scale each operand per tensor;
// `channel` scales the weight operand per output channel (the rows of W_g, the
// columns of B' when B is a constant) and the activation operand per tensor.
// A constant operand is the weight; it is rounded into the multiplier format
// once, when the Executor is built. Activations are rounded per sample, the
// whole input tensor at once (so a Conv's scale covers every input element,
// also those a stride skips), before im2col.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "models/numerics/events.hpp"
#include "models/reference/gemm.hpp"
#include "models/reference/lanes_f32.hpp"
#include "sim/network/graph.hpp"

namespace accsim::net {

enum class Engine {
  fp32,       // the machine's float, sequential, FMA-free (float_gemm.hpp): the FP32 baseline
  reference,  // accsim's reference GEMM (models/reference) with the configured formats
};

// How one GEMM layer computes.
struct LayerArithmetic {
  Engine engine = Engine::fp32;
  ref::GemmConfig config;  // reference engine only; its threads and error_stats are ignored
  friend bool operator==(const LayerArithmetic&, const LayerArithmetic&);
};
// "fp32" or "mul e3m4 (pow2), prod M7E4,..., acc ..., chunked:16".
[[nodiscard]] std::string describe(const LayerArithmetic& a);

// got-versus-want tallies that add up over elements and samples.
struct ErrorSums {
  double signal = 0;   // sum of want^2
  double noise = 0;    // sum of (got - want)^2
  double max_abs = 0;  // max |got - want|
  std::uint64_t count = 0;

  // Adds the pairs (got[i], want[i]), i < n, in kLanes partial sums: pair
  // i goes to lane i mod kLanes, each lane a chain of additions in index
  // order, and the lanes are added to the sums in a fixed tree at the end.
  // The bits depend on the pairs and their order alone (not on threads),
  // and the CPU runs the kLanes chains side by side instead of waiting on
  // one. max_abs passes over a NaN difference. With a `scale`, each pair
  // is first multiplied by it in double (got[i] * scale, want[i] * scale,
  // as a caller's own loop would before adding them; 1 changes nothing).
  static constexpr std::size_t kLanes = 8;
  template <class Got, class Want>
  void add(const Got* got, const Want* want, std::size_t n, double scale = 1.0);  // for float and double
  ErrorSums& operator+=(const ErrorSums& o) {
    signal += o.signal;
    noise += o.noise;
    max_abs = std::max(max_abs, o.max_abs);
    count += o.count;
    return *this;
  }
  // 10 log10(signal / noise); +inf when there is no error.
  [[nodiscard]] double snr_db() const;
  // sqrt(noise / signal): the relative Frobenius error; 0 when both are 0.
  [[nodiscard]] double rel_error() const;
};

// What one GEMM layer did over one sample, or, summed, over many.
struct LayerStats {
  num::EventCounts quantize;    // rounding the per-sample operands into the multiplier format
  num::EventCounts product;     // rounding products into the product format
  num::EventCounts accumulate;  // every accumulator addition
  num::EventCounts merge;       // chunk results into the merge format
  ErrorSums accumulation;  // vs the exact sum of the same rounded products: the accumulator alone
  ErrorSums layer;         // vs the exact GEMM of the layer's unrounded inputs: rounding + accumulation
  ErrorSums network;       // the node's output vs the same node in an FP32 run: all error up to here
  LayerStats& operator+=(const LayerStats& o);
};

// Where a low-bit run's CPU time goes (accsim run --timing): rounding the
// activations, lowering convolutions (im2col), the GEMM engine, the error
// statistics (yardstick GEMMs and error sums), and everything else (the
// float operators, undoing scales, biases).
enum class Phase : std::size_t { other, quantize, lower, gemm, statistics };
inline constexpr std::size_t kPhases = 5;
struct PhaseTimes {
  std::array<double, kPhases> seconds{};  // thread CPU time per Phase
  PhaseTimes& operator+=(const PhaseTimes& o) {
    for (std::size_t i = 0; i < kPhases; ++i) seconds[i] += o.seconds[i];
    return *this;
  }
};
[[nodiscard]] const char* to_string(Phase p);

class Executor {
 public:
  // One LayerArithmetic per GEMM layer (net.gemm_layers order). Rounds the
  // constant operands of reference-engine layers. `net` must outlive this.
  Executor(const Network& net, std::vector<LayerArithmetic> layers);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Computes a reference-engine layer's GEMM in place of
  // ref::accumulate_products (same operands, same result): for example the
  // cycle-accurate array, to measure what the layer costs. `layer` is the
  // GEMM layer's index; a grouped Conv calls it once per group.
  using GemmEngine = std::function<ref::GemmResult(std::size_t layer, const ref::QuantizedOperand& a,
                                                   const ref::QuantizedOperand& b, const ref::GemmConfig& config)>;

  // Per-thread buffers, reused from sample to sample; only run() touches them.
  struct Workspace {
    bool keep_layer_outputs = true;  // layer_output works after run(); costs memory
    GemmEngine engine;  // empty: ref::accumulate_products
    // Computed values, by buffer slot (constants are not copied). A value's
    // slot is reused once its last reader has run (Executor::slot_of_), so
    // a deep network holds only the activations alive at one time.
    std::vector<std::vector<float>> values;
    std::vector<const float*> inputs;
    std::vector<float> f_a, f_b;
    // Read through pointers: grown, never shrunk.
    std::vector<float> f_cols;
    std::vector<double> d_c;
    // Per GEMM layer, so that each keeps its size from sample to sample (a
    // vector shrunk for one layer and grown for the next would clear the
    // difference every time): a Conv's lowered activations, rounded (as
    // an operand, or as floats in the float lanes' layout, whose padding
    // columns stay zero), and the accumulation's result.
    struct LayerBuffers {
      ref::QuantizedOperand q_cols;
      ref::F32Buffer lanes_cols;
      ref::GemmResult result;
    };
    std::vector<LayerBuffers> layer;
    // Activations rounded in a run, by value and arithmetic: a tensor that
    // feeds two convolutions (a residual block's conv1 and its shortcut) is
    // rounded once. Entries stay from run to run for their buffers.
    struct RoundedValue {
      ValueId value{};
      num::Format format;
      ref::Scaling scaling = ref::Scaling::none;
      ref::QuantizedOperand q;
      std::vector<float> f;  // q's values as floats, once a layer asks (f_ready)
      bool f_ready = false;
    };
    std::deque<RoundedValue> rounded;
    PhaseTimes* phase_times = nullptr;  // when set, run() adds its CPU time by phase
  };
  // keep_layer_outputs = false: layer_output is not available, and every
  // buffer is reused as soon as its value's last reader has run.
  [[nodiscard]] std::unique_ptr<Workspace> make_workspace(bool keep_layer_outputs = true) const;

  // Runs one sample (the graph input's elements) and returns the graph
  // output, valid until the next run on `ws`. With `stats` (one per GEMM
  // layer), each layer adds this sample's events and errors; with
  // `fp32_outputs` (each GEMM layer's output from an FP32 run of the same
  // sample), also the network-level errors. With `record_layers` (one
  // vector per GEMM layer), each layer's output is copied there as it is
  // computed, so the workspace need not keep it (make_workspace(false)).
  std::span<const float> run(std::span<const float> input, Workspace& ws, std::span<LayerStats> stats = {},
                             const std::vector<std::vector<float>>* fp32_outputs = nullptr,
                             std::vector<std::vector<float>>* record_layers = nullptr) const;
  // GEMM layer i's output in the last run on ws.
  [[nodiscard]] std::span<const float> layer_output(const Workspace& ws, std::size_t layer) const;

  // The events of rounding GEMM layer i's constant operands (its weights)
  // into the multiplier format, counted once: they are rounded once, when
  // the executor is built. Zero where the layer has none or runs in fp32;
  // operands rounded per sample count in LayerStats::quantize.
  [[nodiscard]] const num::EventCounts& weight_events(std::size_t layer) const;

  [[nodiscard]] const Network& network() const { return net_; }
  [[nodiscard]] const std::vector<LayerArithmetic>& layers() const { return arithmetic_; }

 private:
  struct Prepared;
  const Network& net_;
  // Buffer slot of each computed value. Values whose last reader has run
  // give their slot to later ones; the graph input and output keep theirs.
  // [0]: every value's slot; [1]: the same with the GEMM layers' outputs
  // pinned, for workspaces that read them after the run (layer_output).
  std::array<std::vector<std::size_t>, 2> slot_of_;
  std::array<std::size_t, 2> slots_{};
  std::vector<LayerArithmetic> arithmetic_;
  std::vector<std::unique_ptr<Prepared>> prepared_;  // per GEMM layer
};

}  // namespace accsim::net
