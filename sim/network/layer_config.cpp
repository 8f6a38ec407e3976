#include "sim/network/layer_config.hpp"

#include <yaml-cpp/yaml.h>

#include <fmt/format.h>

#include "models/numerics/format.hpp"
#include "models/reference/order.hpp"
#include "sim/errors.hpp"
#include "sim/network/onnx_loader.hpp"

namespace accsim::net {

using sim::InputError;

namespace {

num::Format parse_format_value(std::string_view key, std::string_view value, std::string_view source) {
  try {
    return num::parse_format(value);
  } catch (const num::FormatError& e) {
    throw InputError(source, fmt::format("{}: {}", key, e.what()));
  }
}

std::string layer_names(const Network& net) {
  std::string s;
  for (std::size_t i : net.gemm_layers) {
    if (s.size() > 400) return s + ", ...";
    s += (s.empty() ? "" : ", ") + net.nodes[i].name;
  }
  return s.empty() ? "(none)" : s;
}

}  // namespace

void apply_setting(LayerArithmetic& a, std::string_view key, std::string_view value, std::string_view source) {
  if (key == "engine") {
    if (value == "fp32") {
      a.engine = Engine::fp32;
    } else if (value == "reference") {
      a.engine = Engine::reference;
    } else {
      throw InputError(source, fmt::format("engine '{}' is not one of fp32, reference", value));
    }
    return;
  }
  if (key == "mul") {
    a.config.multiplier = parse_format_value(key, value, source);
  } else if (key == "acc") {
    a.config.accumulator = parse_format_value(key, value, source);
  } else if (key == "prod") {
    if (value == "exact") {
      a.config.product.reset();
    } else {
      a.config.product = parse_format_value(key, value, source);
    }
  } else if (key == "order") {
    try {
      a.config.order = ref::parse_order(value);
    } catch (const num::FormatError& e) {
      throw InputError(source, fmt::format("order: {}", e.what()));
    }
  } else if (key == "scale") {
    const auto s = ref::parse_scaling(value);
    if (!s) throw InputError(source, fmt::format("scale '{}' is not one of none, tensor, channel, pow2", value));
    a.config.scaling = *s;
  } else {
    throw InputError(source, fmt::format("unknown key '{}' (engine, mul, prod, acc, order, scale)", key));
  }
  a.engine = Engine::reference;
}

LayerOverride parse_layer_flag(std::string_view text) {
  const std::string source = fmt::format("--layer '{}'", sim::one_line(text));
  const std::size_t eq = text.find('=');
  if (eq == std::string_view::npos) throw InputError(source, "expected NAME:key=value");
  const std::size_t colon = text.substr(0, eq).rfind(':');
  if (colon == std::string_view::npos || colon == 0) throw InputError(source, "expected NAME:key=value");
  LayerOverride o;
  o.selector = std::string(text.substr(0, colon));
  o.key = std::string(text.substr(colon + 1, eq - colon - 1));
  o.value = std::string(text.substr(eq + 1));
  o.source = source;
  if (o.key.empty() || o.value.empty()) throw InputError(source, "expected NAME:key=value");
  return o;
}

std::vector<LayerOverride> parse_layer_config(std::string_view yaml, std::string_view name) {
  const std::string source(name);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    throw InputError(source, fmt::format("not valid YAML: {}", sim::one_line(e.what())));
  }
  if (!root.IsMap() || !root["layers"]) throw InputError(source, "expected a map with a 'layers' key");
  for (const auto& top : root) {
    if (!top.first.IsScalar() || top.first.Scalar() != "layers") {
      throw InputError(source, "unknown top-level key (only 'layers')");
    }
  }
  const YAML::Node layers = root["layers"];
  if (!layers.IsMap()) throw InputError(source, "'layers' must map layer names to settings");
  std::vector<LayerOverride> out;
  for (const auto& layer : layers) {
    if (!layer.first.IsScalar()) throw InputError(source, "a layer name must be a string");
    const std::string selector = sim::one_line(layer.first.Scalar());
    if (!layer.second.IsMap()) {
      throw InputError(source, fmt::format("layer '{}': settings must be a map of key: value", selector));
    }
    for (const auto& kv : layer.second) {
      if (!kv.first.IsScalar() || !kv.second.IsScalar()) {
        throw InputError(source, fmt::format("layer '{}': each setting must be key: value", selector));
      }
      out.push_back({selector, sim::one_line(kv.first.Scalar()), sim::one_line(kv.second.Scalar()),
                     fmt::format("{}: layer '{}'", source, selector)});
    }
  }
  return out;
}

std::vector<LayerOverride> read_layer_config(const std::filesystem::path& path) {
  return parse_layer_config(read_file_bytes(path), path.string());
}

std::vector<LayerArithmetic> resolve_layers(const Network& net, const LayerArithmetic& base,
                                            std::span<const LayerOverride> overrides) {
  std::vector<LayerArithmetic> layers(net.gemm_layers.size(), base);
  for (const LayerOverride& o : overrides) {
    std::vector<std::size_t> targets;
    if (o.selector == "*") {
      for (std::size_t i = 0; i < layers.size(); ++i) targets.push_back(i);
    } else if (o.selector == "first" && !layers.empty()) {
      targets.push_back(0);
    } else if (o.selector == "last" && !layers.empty()) {
      targets.push_back(layers.size() - 1);
    } else if (o.selector == "attention") {
      for (std::size_t i = 0; i < layers.size(); ++i) {
        if (net.operands_are_activations(net.nodes[net.gemm_layers[i]])) targets.push_back(i);
      }
    } else {
      for (std::size_t i = 0; i < layers.size(); ++i) {
        if (net.nodes[net.gemm_layers[i]].name == o.selector) targets.push_back(i);
      }
    }
    if (targets.empty()) {
      throw InputError(o.source, fmt::format("'{}' is not a GEMM layer of {} (first, last, *, attention, or one of: {})",
                                             o.selector, net.source, layer_names(net)));
    }
    for (std::size_t i : targets) apply_setting(layers[i], o.key, o.value, o.source);
  }
  return layers;
}

}  // namespace accsim::net
