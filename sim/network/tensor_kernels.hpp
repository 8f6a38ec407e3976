// The float operators transformers add (kernels.hpp has the convolutional
// ones): elementwise arithmetic with broadcasting, the nonlinearities
// (Erf for GELU, Tanh for its tanh form), LayerNormalization and ReduceMean,
// and the data movement (Transpose, Gather, Slice, Expand, Unsqueeze,
// Squeeze, Cast). Each output element is rounded to float once: Sub, Mul,
// Div are one IEEE float operation, as in PyTorch; Sqrt is correctly
// rounded; Pow, Erf, Tanh, ReduceMean and LayerNormalization compute in
// double and round the result. Equal gives 1 or 0; Where takes a nonzero
// condition as true.
#pragma once

#include <span>

#include "sim/network/graph.hpp"

namespace accsim::net {

// Whether run_tensor_op computes `op`.
[[nodiscard]] bool is_tensor_op(Op op);
// As run_float_op (kernels.hpp), for the operators is_tensor_op names.
void run_tensor_op(const Network& net, const Node& node, std::span<const float* const> inputs, float* out);

}  // namespace accsim::net
