#include "sim/network/graph.hpp"

#include <array>
#include <utility>

namespace accsim::net {
namespace {

constexpr std::array<std::pair<Op, std::string_view>, 16> kOps{{
    {Op::Add, "Add"},
    {Op::AveragePool, "AveragePool"},
    {Op::BatchNormalization, "BatchNormalization"},
    {Op::Clip, "Clip"},
    {Op::Concat, "Concat"},
    {Op::Constant, "Constant"},
    {Op::Conv, "Conv"},
    {Op::Flatten, "Flatten"},
    {Op::Gemm, "Gemm"},
    {Op::GlobalAveragePool, "GlobalAveragePool"},
    {Op::Identity, "Identity"},
    {Op::MatMul, "MatMul"},
    {Op::MaxPool, "MaxPool"},
    {Op::Relu, "Relu"},
    {Op::Reshape, "Reshape"},
    {Op::Softmax, "Softmax"},
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

}  // namespace accsim::net
