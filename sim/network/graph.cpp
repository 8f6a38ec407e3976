#include "sim/network/graph.hpp"

#include <array>
#include <utility>

namespace accsim::net {
namespace {

constexpr std::array<std::pair<Op, std::string_view>, 38> kOps{{
    {Op::Add, "Add"},
    {Op::AveragePool, "AveragePool"},
    {Op::BatchNormalization, "BatchNormalization"},
    {Op::Cast, "Cast"},
    {Op::Clip, "Clip"},
    {Op::Concat, "Concat"},
    {Op::Constant, "Constant"},
    {Op::ConstantOfShape, "ConstantOfShape"},
    {Op::Conv, "Conv"},
    {Op::Div, "Div"},
    {Op::Equal, "Equal"},
    {Op::Erf, "Erf"},
    {Op::Expand, "Expand"},
    {Op::Flatten, "Flatten"},
    {Op::Gather, "Gather"},
    {Op::Gemm, "Gemm"},
    {Op::GlobalAveragePool, "GlobalAveragePool"},
    {Op::Identity, "Identity"},
    {Op::LayerNormalization, "LayerNormalization"},
    {Op::MatMul, "MatMul"},
    {Op::MaxPool, "MaxPool"},
    {Op::Mul, "Mul"},
    {Op::Neg, "Neg"},
    {Op::Pow, "Pow"},
    {Op::ReduceMean, "ReduceMean"},
    {Op::Relu, "Relu"},
    {Op::Reshape, "Reshape"},
    {Op::ShapeOf, "Shape"},
    {Op::Slice, "Slice"},
    {Op::Softmax, "Softmax"},
    {Op::Split, "Split"},
    {Op::Sqrt, "Sqrt"},
    {Op::Squeeze, "Squeeze"},
    {Op::Sub, "Sub"},
    {Op::Tanh, "Tanh"},
    {Op::Transpose, "Transpose"},
    {Op::Unsqueeze, "Unsqueeze"},
    {Op::Where, "Where"},
}};

}  // namespace

std::int64_t element_count(const Shape& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

std::string shape_text(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string_view to_string(Op op) {
  for (const auto& [o, name] : kOps) {
    if (o == op) return name;
  }
  return "?";
}

std::optional<Op> parse_op(std::string_view op_type) {
  for (const auto& [o, name] : kOps) {
    if (name == op_type) return o;
  }
  return std::nullopt;
}

std::string supported_ops() {
  std::string s;
  for (const auto& [o, name] : kOps) {
    if (!s.empty()) s += ", ";
    s += name;
  }
  return s;
}

std::uint64_t Network::macs_per_sample() const {
  std::uint64_t macs = 0;
  for (std::size_t i : gemm_layers) macs += nodes[i].gemm.macs();
  return macs;
}

bool Network::operands_are_activations(const Node& node) const {
  if (node.op != Op::MatMul && node.op != Op::Gemm) return false;
  return !values[*node.inputs[0]].constant && !values[*node.inputs[1]].constant;
}

}  // namespace accsim::net
