// Per-layer arithmetic: the run's configuration for every GEMM layer, with
// overrides for some of them (e.g. the first and last layer in fp32, or a
// longer chunk for one layer).
//
// An override is `SELECTOR:key=value`. SELECTOR is a GEMM layer's node name
// as in the ONNX file (or <op>_<index> for unnamed nodes), `first`, `last`,
// `*` (every GEMM layer), or `attention` (every GEMM layer both of whose
// operands are activations: attention's Q·Kᵀ and softmax·V). Keys:
//   engine = fp32 | reference   fp32: the FP32 baseline's arithmetic (IEEE
//                               float, sequential); reference: the formats
//   mul, prod, acc = FORMAT     (prod also takes `exact`: fused products)
//   order = sequential | chunked:C[:FORMAT]
//   scale = none | tensor | channel | pow2
// Setting mul, prod, acc, order or scale makes the layer use the reference
// engine. Overrides apply in order: the file's first (in document order),
// then the --layer flags, so a later one wins.
//
// The file is YAML, one map of selectors:
//   layers:
//     first: {engine: fp32}
//     /fc/Gemm: {order: "chunked:32", acc: "M8E4,bias=4,round=rtz,ftz"}
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sim/network/executor.hpp"
#include "sim/network/graph.hpp"

namespace accsim::net {

struct LayerOverride {
  std::string selector;
  std::string key;
  std::string value;
  std::string source;  // where it came from, for messages: "--layer" or the file
};

// "NAME:key=value". The value is everything after the first '=' (formats
// contain commas and orders colons); NAME is everything before the ':' that
// precedes the key. Throws InputError naming the flag.
[[nodiscard]] LayerOverride parse_layer_flag(std::string_view text);
// Throws InputError naming the file.
[[nodiscard]] std::vector<LayerOverride> read_layer_config(const std::filesystem::path& path);
[[nodiscard]] std::vector<LayerOverride> parse_layer_config(std::string_view yaml, std::string_view name);

// One LayerArithmetic per GEMM layer of `net`: `base`, then the overrides.
// Throws InputError (naming the override's source) for an unknown layer or
// key, or a bad value.
[[nodiscard]] std::vector<LayerArithmetic> resolve_layers(const Network& net, const LayerArithmetic& base,
                                                          std::span<const LayerOverride> overrides);

// Sets one key of `a` (as resolve_layers does); throws InputError naming `source`.
void apply_setting(LayerArithmetic& a, std::string_view key, std::string_view value, std::string_view source);

}  // namespace accsim::net
