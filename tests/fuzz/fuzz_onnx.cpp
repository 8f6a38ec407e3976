// The ONNX loader on arbitrary bytes, and, for every model small enough to
// run quickly, one sample through the FP32 executor and through the
// reference engine in the paper's 12-bit configuration: loading either
// throws InputError or yields a network the executor runs without a
// sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "models/numerics/format.hpp"
#include "models/reference/order.hpp"
#include "sim/errors.hpp"
#include "sim/network/executor.hpp"
#include "sim/network/onnx_loader.hpp"

namespace {

using namespace accsim;

// Work and memory of one run, bounded so each input takes milliseconds.
bool small_enough(const net::Network& n) {
  std::int64_t elements = 0;
  for (const net::Value& v : n.values) elements += net::element_count(v.shape);
  std::uint64_t im2col = 0;
  for (std::size_t i : n.gemm_layers) {
    im2col += static_cast<std::uint64_t>(n.nodes[i].gemm.k * n.nodes[i].gemm.n);
  }
  return elements <= (1 << 20) && im2col <= (1u << 20) && n.macs_per_sample() <= 2'000'000;
}

net::LayerArithmetic paper() {
  net::LayerArithmetic a;
  a.engine = net::Engine::reference;
  a.config.multiplier = num::formats::e3m4();
  a.config.product = num::parse_format("M7E4,bias=6,round=rtz,ftz");
  a.config.accumulator = num::parse_format("M7E4,bias=4,round=rtz,ftz");
  a.config.order = ref::parse_order("chunked:16");
  a.config.scaling = ref::Scaling::pow2;
  return a;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const net::Network network = net::parse_onnx(bytes, "fuzz.onnx");
    if (!small_enough(network)) return 0;
    std::vector<float> input(static_cast<std::size_t>(net::element_count(network.input_shape())));
    for (std::size_t i = 0; i < input.size(); ++i) input[i] = static_cast<float>(static_cast<int>(i % 7) - 3) * 0.5f;
    const std::size_t layers = network.gemm_layers.size();
    const net::Executor fp32(network, std::vector<net::LayerArithmetic>(layers));
    const net::Executor lowbit(network, std::vector<net::LayerArithmetic>(layers, paper()));
    auto ws_fp32 = fp32.make_workspace();
    auto ws_lowbit = lowbit.make_workspace();
    (void)fp32.run(input, *ws_fp32);
    std::vector<std::vector<float>> fp32_layers;
    for (std::size_t l = 0; l < layers; ++l) {
      const auto out = fp32.layer_output(*ws_fp32, l);
      fp32_layers.emplace_back(out.begin(), out.end());
    }
    std::vector<net::LayerStats> stats(layers);
    (void)lowbit.run(input, *ws_lowbit, stats, &fp32_layers);
  } catch (const sim::InputError&) {
  }
  return 0;
}
