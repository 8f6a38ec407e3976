#include "python/layer.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <variant>

#include "models/reference/fast_plan.hpp"
#include "sim/network/kernels.hpp"
#include "sim/network/onnx_loader.hpp"

namespace accsim::binding {
namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

// Runs body(item, worker) for item = 0..count-1 on `threads` workers (the
// calling thread is one of them); the first exception is rethrown here.
template <class Body>
void parallel_for(std::size_t count, unsigned threads, Body&& body) {
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&](unsigned worker) {
    try {
      for (std::size_t i = next++; i < count; i = next++) body(i, worker);
    } catch (...) {
      std::lock_guard lock(error_mutex);
      if (!error) error = std::current_exception();
      next = count;  // the others stop at their next item
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

net::Network one_node(net::Node node, std::vector<net::Value> values, std::vector<std::vector<float>> constants,
                      const char* source) {
  net::Network n;
  n.source = source;
  n.opset = 13;
  n.values = std::move(values);
  n.constants = std::move(constants);
  n.input = 0;
  n.output = n.values.size() - 1;
  node.output = n.output;
  n.nodes.push_back(std::move(node));
  n.gemm_layers = {0};
  return n;
}


// Replays every output (i, j) of one GEMM's result r (rows x cols) and
// stores its events, and drop bits with fine or recursive masks, at
// index_of(i, j) of the layer's outputs; kLanes outputs of a row at a time.
template <class IndexOf>
void replay_gemm(const ref::GemmConfig& config, const ref::QuantizedOperand& a, const ref::QuantizedOperand& b,
                 const ref::GemmResult& r, MaskKind masks, IndexOf index_of, RunResult& result, Tallies& tallies) {
  Replayer replayer(config, a, b);
  const bool drops = masks == MaskKind::fine || masks == MaskKind::recursive;
  constexpr std::size_t kLanes = Replayer::kLanes;
  for (std::size_t i = 0; i < a.rows; ++i) {
    for (std::size_t j0 = 0; j0 < b.cols; j0 += kLanes) {
      const std::size_t lanes = std::min(kLanes, b.cols - j0);
      std::array<std::uint8_t*, kLanes> drop{};
      std::array<Replayer::Output, kLanes> o{};
      for (std::size_t l = 0; l < lanes; ++l) {
        drop[l] = drops ? result.drop.data() + index_of(i, j0 + l) * result.drop_stride : nullptr;
      }
      if (!replayer.replay_lanes(i, j0, lanes, masks, drop.data(), o.data(), tallies)) {
        for (std::size_t l = 0; l < lanes; ++l) o[l] = replayer.replay(i, j0 + l, masks, drop[l], tallies);
      }
      for (std::size_t l = 0; l < lanes; ++l) {
        if (!replayer.matches(o[l], r, i * b.cols + j0 + l)) {
          throw std::logic_error("internal error: the replayed accumulation differs from the reference GEMM");
        }
        result.events[index_of(i, j0 + l)] = o[l].events;
      }
    }
  }
}

bool stochastic(const std::optional<num::Format>& f) {
  const auto* ff = f ? std::get_if<num::FloatFormat>(&*f) : nullptr;
  return ff != nullptr && ff->rounding == num::Rounding::sr;
}

// Whether run_layer may run a batch as a few large GEMMs (run_batched)
// instead of one sample at a time through net::Executor: the reference
// engine without stochastic rounding (its draws are keyed on an output's
// row and column in the GEMM, which stacking samples would change; the
// replay behind the masks refuses it anyway).
bool batchable(const net::LayerArithmetic& a) {
  if (a.engine != net::Engine::reference) return false;
  const ref::GemmConfig& c = a.config;
  return !stochastic(c.multiplier) && !stochastic(c.product) && !stochastic(c.accumulator) &&
         !(!c.order.sequential() && stochastic(c.order.merge(c.accumulator)));
}

// Samples per stacked GEMM: about 2^17 lowered activations (1 MB of values,
// which the lowering writes and the GEMM's packing reads back from cache;
// measured on ResNet-8's forward, 2^15 to 2^18 are within noise, 2^20 6% slower).
std::size_t samples_per_gemm(std::size_t lowered_per_sample, std::size_t batch) {
  return std::clamp<std::size_t>((std::size_t{1} << 17) / std::max<std::size_t>(1, lowered_per_sample), 1, batch);
}

// Group g's weights as a GEMM operand: W_g [per_group x k] (scales per row)
// or, transposed, W_g^T [k x per_group] (scales per column).
ref::QuantizedOperand weight_operand(const ref::QuantizedOperand& whole, std::size_t g, std::size_t per_group,
                                     std::size_t k, bool transposed) {
  ref::QuantizedOperand w;
  w.rows = transposed ? k : per_group;
  w.cols = transposed ? per_group : k;
  w.axis = transposed ? ref::ScaleAxis::cols : ref::ScaleAxis::rows;
  w.bits.resize(k * per_group);
  w.values.resize(k * per_group);
  for (std::size_t o = 0; o < per_group; ++o) {
    const std::size_t row = g * per_group + o;
    for (std::size_t kk = 0; kk < k; ++kk) {
      const std::size_t at = transposed ? kk * per_group + o : o * k + kk;
      w.bits[at] = whole.bits[row * k + kk];
      w.values[at] = whole.values[row * k + kk];
    }
    if (whole.scale.size() != 1) w.scale.push_back(whole.scale[row]);
  }
  if (whole.scale.size() == 1) w.scale = whole.scale;
  return w;
}

// A batch through the reference GEMM, samples stacked, computing exactly
// what net::Executor computes for each sample (executor.cpp; the
// python.bindings tests compare the two bit for bit):
// - the weights [out_channels x k] rounded once, as the Executor rounds a
//   constant operand (the layer's scaling, per row; Conv groups sliced by
//   rows);
// - each sample's input tensor rounded whole with its own scale
//   (ref::quantize_operand as a 1 x count operand, per-channel scaling
//   becoming per-tensor), then lowered (im2col for a Conv, the input itself
//   for a Gemm), the samples' lowered matrices side by side:
//   C = W_g * [X_0 X_1 ...], one scale per column of the activations, or
//   transposed, C^T = [X_0^T; X_1^T; ...] * W_g^T, one scale per row,
//   whichever takes fewer passes of the GEMM's kernel (ref::transpose_takes_fewer_passes,
//   ties keeping C: 16 output channels against 64 float lanes would leave 48 idle);
// - C by ref::accumulate_products: every output still sums the same
//   rounded products in the same order (the Executor itself may run a Conv
//   either way), and the GEMM never reads the scales;
// - the scales undone in double, rounded to float, and the bias added in
//   float, as Executor's run_gemm and Conv/Gemm epilogues do;
// - with masks, every output of each stacked GEMM replayed (replay.hpp) and
//   its events and drop bits stored at its sample's place.
void run_batched(const Layer& layer, const net::LayerArithmetic& arithmetic, const float* input, std::size_t batch,
                 float* out, unsigned requested_threads, MaskKind masks, RunResult& result) {
  const net::Network& network = layer.network;
  const net::Node& node = network.nodes[0];
  const bool is_conv = node.op == net::Op::Conv;
  const ref::GemmConfig& config = arithmetic.config;
  const num::Format& mul = config.multiplier;
  const ref::Scaling act_scaling = config.scaling == ref::Scaling::channel ? ref::Scaling::tensor : config.scaling;
  const std::size_t k = layer.k, positions = layer.positions;
  const std::size_t groups = static_cast<std::size_t>(layer.groups);
  const std::size_t channels = static_cast<std::size_t>(layer.out_channels), per_group = channels / groups;
  const std::vector<float>& weight = network.constants[0];
  const float* bias = node.inputs.size() > 2 ? network.constants[1].data() : nullptr;

  const std::size_t lowered = k * positions;  // one sample's lowered activations, per group
  const std::size_t stack = samples_per_gemm(lowered, batch);
  const std::size_t gemms = (batch + stack - 1) / stack;
  const std::size_t stacked = stack * positions;  // a full stack's outputs per channel
  const bool transposed = ref::transpose_takes_fewer_passes(config, per_group, stacked);

  std::vector<ref::QuantizedOperand> qw(groups);
  {
    ref::Matrix wm(channels, k);
    for (std::size_t i = 0; i < channels * k; ++i) wm.data[i] = weight[i];
    // Executor: a Conv's W [M x k] per row (sr stream 1); a Gemm's B' = W^T per column (sr stream 2).
    const ref::QuantizedOperand whole =
        ref::quantize_operand(wm, mul, config.scaling, ref::ScaleAxis::rows, is_conv ? 1 : 2);
    for (std::size_t g = 0; g < groups; ++g) qw[g] = weight_operand(whole, g, per_group, k, transposed);
  }

  const net::Shape& xs = network.values[0].shape;  // [1, C, H, W] or [1, K]
  const std::int64_t cg = is_conv ? xs[1] / layer.groups : 1, plane = is_conv ? xs[2] * xs[3] : 1;
  const net::Window2d window = is_conv ? std::get<net::ConvAttrs>(node.attrs).window : net::Window2d{};
  const ref::AccumulationOrder& order = config.order;
  ref::GemmConfig gemm_config = config;
  gemm_config.threads = 1;  // parallel over stacks below

  const bool drops = masks == MaskKind::fine || masks == MaskKind::recursive;
  if (masks != MaskKind::none) result.events.assign(batch * layer.sample_out, 0);
  if (drops) {
    result.drop_stride = (k + 7) / 8;
    result.drop.assign(batch * layer.sample_out * result.drop_stride, 0);
  }
  const unsigned threads = resolve_threads(requested_threads, gemms);
  std::vector<Tallies> reference(threads), replayed(threads);
  // Per worker, reused from stack to stack: the samples' rounded inputs and their lowering.
  struct Buffers {
    std::vector<ref::QuantizedOperand> samples;
    ref::QuantizedOperand lowered;
  };
  std::vector<Buffers> buffers(threads);
  parallel_for(gemms, threads, [&](std::size_t g0, unsigned worker) {
    const std::size_t s0 = g0 * stack, count = std::min(stack, batch - s0);
    std::vector<ref::QuantizedOperand>& qx = buffers[worker].samples;
    qx.resize(count);
    bool finite = true;
    for (std::size_t s = 0; s < count; ++s) {
      // One scale for the sample's whole tensor: a 1 x sample_in operand.
      ref::quantize_operand(input + (s0 + s) * layer.sample_in, 1, layer.sample_in, mul, act_scaling,
                            ref::ScaleAxis::rows, is_conv ? 2 : 1, qx[s]);
      finite = finite && ref::finite_values(mul, qx[s]);
    }
    // The activations: `outputs` = count * positions outputs per channel,
    // output (s, p) at index s * positions + p; [k x outputs] or, transposed, [outputs x k].
    const std::size_t outputs = count * positions;
    const ref::QuantizedOperand no_values;  // plan_fast reads values only to see they are finite: checked above
    ref::QuantizedOperand& qa = buffers[worker].lowered;
    qa.rows = transposed ? outputs : k;
    qa.cols = transposed ? k : outputs;
    qa.axis = transposed ? ref::ScaleAxis::rows : ref::ScaleAxis::cols;
    qa.values.resize(outputs * k);
    qa.scale.resize(outputs);
    for (std::size_t g = 0; g < groups; ++g) {
      // As the Executor: the double lanes read values only; encodings are
      // lowered when another path will read them.
      const bool need_bits = !finite || !ref::plan_fast(config, order.merge(config.accumulator), qw[g], no_values);
      if (need_bits) {
        qa.bits.resize(outputs * k);
      } else {
        qa.bits.clear();
      }
      for (std::size_t s = 0; s < count; ++s) {
        const std::size_t first = s * positions;
        std::fill_n(qa.scale.begin() + static_cast<std::ptrdiff_t>(first), positions, qx[s].scale[0]);
        const auto lower = [&](const auto* x, auto* dst, auto pad) {
          if (is_conv) {
            const std::size_t offset = g * static_cast<std::size_t>(cg * plane);
            if (transposed) {
              net::im2row(x + offset, cg, xs[2], xs[3], window, layer.out_h, layer.out_w, pad, dst + first * k);
            } else {
              net::im2col(x + offset, cg, xs[2], xs[3], window, layer.out_h, layer.out_w, pad, dst + first,
                          static_cast<std::int64_t>(outputs));
            }
          } else if (transposed) {
            std::copy_n(x, k, dst + first * k);
          } else {
            for (std::size_t kk = 0; kk < k; ++kk) dst[kk * outputs + s] = x[kk];
          }
        };
        lower(qx[s].values.data(), qa.values.data(), 0.0);
        if (need_bits) lower(qx[s].bits.data(), qa.bits.data(), std::uint64_t{0});
      }
      const ref::QuantizedOperand& lhs = transposed ? qa : qw[g];
      const ref::QuantizedOperand& rhs = transposed ? qw[g] : qa;
      const ref::GemmResult r = ref::accumulate_products(lhs, rhs, gemm_config);
      // Output channel g * per_group + o at stacked output i = s * positions + p: (row, column) of C.
      const auto at = [&](std::size_t o, std::size_t i) {
        return transposed ? std::pair{i, o} : std::pair{o, i};
      };
      if (masks != MaskKind::none) {
        // The replay of every output of this GEMM (as run_layer's engine hook does for the executor's GEMMs).
        reference[worker] += Tallies{r.stats.product, r.stats.accumulate, r.stats.merge};
        replay_gemm(
            gemm_config, lhs, rhs, r, masks,
            [&](std::size_t row, std::size_t col) {
              const std::size_t o = transposed ? col : row, i = transposed ? row : col;
              return (s0 + i / positions) * layer.sample_out + (g * per_group + o) * positions + i % positions;
            },
            result, replayed[worker]);
      }
      for (std::size_t s = 0; s < count; ++s) {
        float* y = out + (s0 + s) * layer.sample_out;
        for (std::size_t o = 0; o < per_group; ++o) {
          const std::size_t ch = g * per_group + o;
          for (std::size_t p = 0; p < positions; ++p) {
            const auto [row, col] = at(o, s * positions + p);
            const double scale = lhs.scale_at(row, 0) * rhs.scale_at(0, col);
            float v = static_cast<float>(r.c.data[row * rhs.cols + col] / scale);
            if (bias != nullptr) v += bias[ch];
            y[ch * positions + p] = v;
          }
        }
      }
    }
  });
  for (unsigned t = 0; t < threads; ++t) {
    result.reference += reference[t];
    result.replayed += replayed[t];
  }
}

}  // namespace

unsigned resolve_threads(unsigned requested, std::size_t work_items) {
  unsigned t = requested != 0 ? requested : std::max(1u, std::thread::hardware_concurrency());
  if (work_items < t) t = static_cast<unsigned>(std::max<std::size_t>(1, work_items));
  return t;
}

Layer make_conv(const ConvSpec& s, std::span<const float> weight, std::span<const float> bias) {
  const net::Window2d& w = s.window;
  require(s.groups >= 1, "groups: must be at least 1");
  require(s.channels % s.groups == 0, "groups: input channels (" + std::to_string(s.channels) +
                                          ") are not a multiple of groups (" + std::to_string(s.groups) + ")");
  require(s.out_channels % s.groups == 0, "groups: output channels (" + std::to_string(s.out_channels) +
                                              ") are not a multiple of groups (" + std::to_string(s.groups) + ")");
  require(w.stride_h >= 1 && w.stride_w >= 1, "stride: must be at least 1");
  require(w.dilation_h >= 1 && w.dilation_w >= 1, "dilation: must be at least 1");
  require(w.pad_top >= 0 && w.pad_left >= 0 && w.pad_bottom >= 0 && w.pad_right >= 0, "padding: must be >= 0");
  const std::int64_t cg = s.channels / s.groups;
  const std::int64_t k = cg * w.kernel_h * w.kernel_w;
  require(static_cast<std::int64_t>(weight.size()) == s.out_channels * k, "weight: size does not match its shape");
  require(bias.empty() || static_cast<std::int64_t>(bias.size()) == s.out_channels,
          "bias: must have one element per output channel (" + std::to_string(s.out_channels) + ")");
  const std::int64_t eff_h = (w.kernel_h - 1) * w.dilation_h + 1, eff_w = (w.kernel_w - 1) * w.dilation_w + 1;
  const std::int64_t span_h = s.height + w.pad_top + w.pad_bottom, span_w = s.width + w.pad_left + w.pad_right;
  require(span_h >= eff_h && span_w >= eff_w, "weight: the kernel is larger than the padded input");
  const std::int64_t oh = (span_h - eff_h) / w.stride_h + 1, ow = (span_w - eff_w) / w.stride_w + 1;
  require(k * oh * ow <= net::kMaxTensorElements, "x: the lowered matrix of one sample is too large");

  net::ConvAttrs attrs;
  attrs.window = w;
  attrs.group = s.groups;
  net::Node node;
  node.name = "conv";
  node.op = net::Op::Conv;
  node.inputs = {0, 1};
  node.attrs = attrs;
  node.gemm = {s.out_channels / s.groups, k, oh * ow, s.groups};
  std::vector<net::Value> values{{"x", {1, s.channels, s.height, s.width}, std::nullopt},
                                 {"weight", {s.out_channels, cg, w.kernel_h, w.kernel_w}, 0}};
  std::vector<std::vector<float>> constants{{weight.begin(), weight.end()}};
  if (!bias.empty()) {
    values.push_back({"bias", {s.out_channels}, 1});
    constants.emplace_back(bias.begin(), bias.end());
    node.inputs.emplace_back(2);
  }
  values.push_back({"y", {1, s.out_channels, oh, ow}, std::nullopt});

  Layer l;
  l.network = one_node(std::move(node), std::move(values), std::move(constants), "accsim conv2d");
  l.sample_in = static_cast<std::size_t>(s.channels * s.height * s.width);
  l.sample_out = static_cast<std::size_t>(s.out_channels * oh * ow);
  l.out_channels = s.out_channels;
  l.positions = static_cast<std::size_t>(oh * ow);
  l.k = static_cast<std::size_t>(k);
  l.groups = s.groups;
  l.out_h = oh;
  l.out_w = ow;
  return l;
}

Layer make_linear(const LinearSpec& s, std::span<const float> weight, std::span<const float> bias) {
  require(s.in_features >= 1 && s.out_features >= 1, "weight: empty");
  require(static_cast<std::int64_t>(weight.size()) == s.in_features * s.out_features,
          "weight: size does not match its shape");
  require(bias.empty() || static_cast<std::int64_t>(bias.size()) == s.out_features,
          "bias: must have one element per output feature (" + std::to_string(s.out_features) + ")");
  net::GemmAttrs attrs;
  attrs.trans_b = true;  // y = x W^T + b, as PyTorch exports nn.Linear
  net::Node node;
  node.name = "linear";
  node.op = net::Op::Gemm;
  node.inputs = {0, 1};
  node.attrs = attrs;
  node.gemm = {1, s.in_features, s.out_features, 1};
  std::vector<net::Value> values{{"x", {1, s.in_features}, std::nullopt},
                                 {"weight", {s.out_features, s.in_features}, 0}};
  std::vector<std::vector<float>> constants{{weight.begin(), weight.end()}};
  if (!bias.empty()) {
    values.push_back({"bias", {s.out_features}, 1});
    constants.emplace_back(bias.begin(), bias.end());
    node.inputs.emplace_back(2);
  }
  values.push_back({"y", {1, s.out_features}, std::nullopt});

  Layer l;
  l.network = one_node(std::move(node), std::move(values), std::move(constants), "accsim linear");
  l.sample_in = static_cast<std::size_t>(s.in_features);
  l.sample_out = static_cast<std::size_t>(s.out_features);
  l.out_channels = s.out_features;
  l.positions = 1;
  l.k = static_cast<std::size_t>(s.in_features);
  return l;
}

RunResult run_layer(const Layer& layer, const net::LayerArithmetic& arithmetic, const float* input, std::size_t batch,
                    float* out, const RunRequest& request) {
  if (batchable(arithmetic) && !request.per_sample) {
    RunResult result;
    run_batched(layer, arithmetic, input, batch, out, request.threads, request.masks, result);
    return result;
  }
  const net::Executor executor(layer.network, {arithmetic});
  const bool replay = request.masks != MaskKind::none && arithmetic.engine == net::Engine::reference;
  const bool drops = request.masks == MaskKind::fine || request.masks == MaskKind::recursive;
  const bool is_conv = layer.network.nodes[0].op == net::Op::Conv;
  const std::size_t per_group = static_cast<std::size_t>(layer.out_channels / layer.groups);

  RunResult result;
  if (request.masks != MaskKind::none) result.events.assign(batch * layer.sample_out, 0);
  if (drops) {
    result.drop_stride = (layer.k + 7) / 8;
    result.drop.assign(batch * layer.sample_out * result.drop_stride, 0);
  }
  const unsigned threads = resolve_threads(request.threads, batch);
  struct Worker {
    std::unique_ptr<net::Executor::Workspace> ws;
    std::size_t sample = 0;
    std::size_t group = 0;  // the next GEMM's group within the sample
    Tallies reference, replayed;
  };
  std::vector<Worker> workers(threads);
  for (Worker& w : workers) {
    w.ws = executor.make_workspace();
    // Without masks the executor's own path runs (an engine in its place
    // would make it lower encodings that the double lanes never read).
    if (request.masks == MaskKind::none) continue;
    Worker* self = &w;
    w.ws->engine = [&, self](std::size_t, const ref::QuantizedOperand& qa, const ref::QuantizedOperand& qb,
                             const ref::GemmConfig& config) {
      ref::GemmResult r = ref::accumulate_products(qa, qb, config);
      self->reference += Tallies{r.stats.product, r.stats.accumulate, r.stats.merge};
      if (!replay) return r;
      // The executor may run a Conv as im2row(X) * W^T (executor.cpp,
      // conv_transposed): then the lowered activations are its A operand.
      const bool transposed = is_conv && &qa == &self->ws->layer[0].q_cols;  // the network's one layer
      const std::size_t group = self->group++;
      const std::size_t sample_base = self->sample * layer.sample_out;
      replay_gemm(
          config, qa, qb, r, request.masks,
          [&](std::size_t i, std::size_t j) {
            std::size_t element;  // within the sample's output [channel, position]
            if (!is_conv) {
              element = j;
            } else if (transposed) {
              element = (group * per_group + j) * layer.positions + i;
            } else {
              element = (group * per_group + i) * layer.positions + j;
            }
            return sample_base + element;
          },
          result, self->replayed);
      return r;
    };
  }
  parallel_for(batch, threads, [&](std::size_t s, unsigned t) {
    Worker& w = workers[t];
    w.sample = s;
    w.group = 0;
    const std::span<const float> y =
        executor.run(std::span<const float>(input + s * layer.sample_in, layer.sample_in), *w.ws);
    std::memcpy(out + s * layer.sample_out, y.data(), layer.sample_out * sizeof(float));
  });
  for (const Worker& w : workers) {
    result.reference += w.reference;
    result.replayed += w.replayed;
  }
  return result;
}

void drop_correction(const Layer& layer, std::span<const std::uint8_t> drop, std::size_t drop_stride,
                     const float* grad, const float* weight, const float* cols, std::size_t batch, float* d_weight,
                     float* d_cols, unsigned threads) {
  const std::size_t k = layer.k, positions = layer.positions;
  const std::size_t channels = static_cast<std::size_t>(layer.out_channels);
  const std::size_t per_group = channels / static_cast<std::size_t>(layer.groups);
  const std::size_t rows = static_cast<std::size_t>(layer.groups) * k;  // rows of the lowered input
  if (drop.size() != batch * layer.sample_out * drop_stride || drop_stride != (k + 7) / 8) {
    throw std::invalid_argument("drop: shape does not match the layer and batch");
  }
  // Per-sample weight corrections in double, summed in sample order below.
  std::vector<double> per_sample(batch * channels * k, 0.0);
  parallel_for(batch, resolve_threads(threads, batch), [&](std::size_t s, unsigned) {
    double* dw = per_sample.data() + s * channels * k;
    const float* x = cols + s * rows * positions;
    float* dx = d_cols + s * rows * positions;
    for (std::size_t o = 0; o < channels; ++o) {
      const std::size_t row0 = (o / per_group) * k;
      for (std::size_t p = 0; p < positions; ++p) {
        const std::size_t element = s * layer.sample_out + o * positions + p;
        const std::uint8_t* bits = drop.data() + element * drop_stride;
        const float g = grad[element];
        if (g == 0) continue;
        for (std::size_t byte = 0; byte < drop_stride; ++byte) {
          std::uint8_t b = bits[byte];
          while (b != 0) {
            const std::size_t kk = byte * 8 + static_cast<std::size_t>(__builtin_ctz(b));
            b &= static_cast<std::uint8_t>(b - 1);
            const std::size_t at = (row0 + kk) * positions + p;
            dw[o * k + kk] += static_cast<double>(g) * x[at];
            dx[at] += g * weight[o * k + kk];
          }
        }
      }
    }
  });
  for (std::size_t i = 0; i < channels * k; ++i) {
    double sum = 0;
    for (std::size_t s = 0; s < batch; ++s) sum += per_sample[s * channels * k + i];
    d_weight[i] = static_cast<float>(sum);
  }
}

NetworkRun run_network(const net::Network& network, const std::vector<net::LayerArithmetic>& layers,
                       const float* input, std::size_t batch, bool keep_layer_outputs, unsigned threads) {
  const net::Executor executor(network, layers);
  const auto sample_in = static_cast<std::size_t>(net::element_count(network.input_shape()));
  const auto sample_out = static_cast<std::size_t>(net::element_count(network.output_shape()));
  const std::size_t count = layers.size();
  NetworkRun run;
  run.logits.resize(batch * sample_out);
  std::vector<std::size_t> layer_size(count);
  for (std::size_t l = 0; l < count; ++l) {
    layer_size[l] = static_cast<std::size_t>(
        net::element_count(network.values[network.nodes[network.gemm_layers[l]].output].shape));
    if (keep_layer_outputs) run.layer_outputs.emplace_back(batch * layer_size[l]);
  }
  const unsigned t = resolve_threads(threads, batch);
  struct Worker {
    std::unique_ptr<net::Executor::Workspace> ws;
    std::vector<net::LayerStats> stats;
  };
  std::vector<Worker> workers(t);
  for (Worker& w : workers) {
    w.ws = executor.make_workspace();
    w.stats.resize(count);
  }
  parallel_for(batch, t, [&](std::size_t s, unsigned worker) {
    Worker& w = workers[worker];
    const std::span<const float> y =
        executor.run(std::span<const float>(input + s * sample_in, sample_in), *w.ws, w.stats);
    std::memcpy(run.logits.data() + s * sample_out, y.data(), sample_out * sizeof(float));
    if (keep_layer_outputs) {
      for (std::size_t l = 0; l < count; ++l) {
        const std::span<const float> lo = executor.layer_output(*w.ws, l);
        std::memcpy(run.layer_outputs[l].data() + s * layer_size[l], lo.data(), layer_size[l] * sizeof(float));
      }
    }
  });
  run.stats.resize(count);
  for (const Worker& w : workers) {
    for (std::size_t l = 0; l < count; ++l) run.stats[l] += w.stats[l];
  }
  for (std::size_t l = 0; l < count; ++l) run.weight_events.push_back(executor.weight_events(l));
  return run;
}

}  // namespace accsim::binding
