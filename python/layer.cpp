#include "python/layer.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

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
      const bool transposed = is_conv && &qa == &self->ws->q_cols;
      const std::size_t group = self->group++;
      Replayer replayer(config, qa, qb);
      const std::size_t sample_base = self->sample * layer.sample_out;
      for (std::size_t i = 0; i < qa.rows; ++i) {
        for (std::size_t j = 0; j < qb.cols; ++j) {
          std::size_t element;  // within the sample's output [channel, position]
          if (!is_conv) {
            element = j;
          } else if (transposed) {
            element = (group * per_group + j) * layer.positions + i;
          } else {
            element = (group * per_group + i) * layer.positions + j;
          }
          const std::size_t index = sample_base + element;
          std::uint8_t* drop = drops ? result.drop.data() + index * result.drop_stride : nullptr;
          const Replayer::Output o = replayer.replay(i, j, request.masks, drop, self->replayed);
          if (!replayer.matches(o, r, i * qb.cols + j)) {
            throw std::logic_error("internal error: the replayed accumulation differs from the reference GEMM");
          }
          result.events[index] = o.events;
        }
      }
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
  return run;
}

}  // namespace accsim::binding
