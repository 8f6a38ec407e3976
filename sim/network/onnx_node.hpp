// Internal to the loader: one ONNX node as the loader sees it while building
// a Network (its attributes, its resolved inputs), and the per-operator
// builders of operators.cpp that check attributes and infer shapes.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <onnx/onnx_pb.h>

#include "sim/network/graph.hpp"

namespace accsim::net::detail {

// Where a problem is: the file, and the node when there is one.
struct Context {
  std::string file;
  std::string node;  // "node '/conv1/Conv' (Conv)", or empty
  [[noreturn]] void fail(std::string_view problem) const;
};

// Checked access to a node's attributes. The constructor rejects attributes
// the operator does not define, duplicates, and references to function
// attributes; each getter rejects a value of the wrong type.
class AttrReader {
 public:
  AttrReader(const onnx::NodeProto& node, const Context& ctx, std::initializer_list<std::string_view> known);

  [[nodiscard]] std::optional<std::int64_t> get_int(std::string_view name) const;
  [[nodiscard]] std::optional<std::vector<std::int64_t>> get_ints(std::string_view name) const;
  [[nodiscard]] std::optional<float> get_float(std::string_view name) const;  // finite
  [[nodiscard]] std::optional<std::vector<float>> get_floats(std::string_view name) const;
  [[nodiscard]] std::optional<std::string> get_string(std::string_view name) const;
  [[nodiscard]] const onnx::TensorProto* get_tensor(std::string_view name) const;
  [[nodiscard]] bool has(std::string_view name) const { return find(name) != nullptr; }

 private:
  [[nodiscard]] const onnx::AttributeProto* find(std::string_view name) const;
  [[nodiscard]] const onnx::AttributeProto* find_typed(std::string_view name,
                                                       onnx::AttributeProto::AttributeType type) const;
  const onnx::NodeProto& node_;
  const Context& ctx_;
};

// An int64 constant (a Reshape target shape, Gather indices, Slice bounds, or
// shape arithmetic folded at load time; BOOL tensors are held as 0 and 1).
struct IntTensor {
  Shape shape;
  std::vector<std::int64_t> data;
};

// A node input as resolved by the loader.
struct InputRef {
  bool present = false;                 // false: omitted optional input ("")
  std::string name;
  std::optional<ValueId> value;         // a float tensor, computed or constant
  const IntTensor* int64 = nullptr;     // an int64 constant
};

// The checked node (op, attributes, GEMM shape; inputs as value ids) and the
// shape of its output.
struct BuiltNode {
  Node node;
  Shape output_shape;
};

// Checks inputs and attributes of one node of a supported operator other
// than Constant and computes its output shape. `net` holds the shapes and
// data of every value built so far.
[[nodiscard]] BuiltNode build_operator(Op op, const onnx::NodeProto& proto, std::span<const InputRef> inputs,
                                       const Network& net, std::int64_t opset, const Context& ctx);

// Split: [axis, size of output 0, size of output 1, ...], checked. The loader
// turns each output into a Slice (build_slice_part).
[[nodiscard]] std::vector<std::int64_t> split_sizes(const onnx::NodeProto& proto, std::span<const InputRef> inputs,
                                                    const Network& net, std::int64_t opset, const Context& ctx);
[[nodiscard]] BuiltNode build_slice_part(const Network& net, ValueId x, std::int64_t axis, std::int64_t start,
                                         std::int64_t length);

// One axis of a Slice, clamped as ONNX specifies: sets *first and returns
// the number of elements (0: empty). `step` is not 0.
[[nodiscard]] std::int64_t slice_axis(std::int64_t len, std::int64_t start, std::int64_t end, std::int64_t step,
                                      std::int64_t* first);

// Cast's `to`: the types accsim computes with (FLOAT, DOUBLE, FLOAT16: the
// float32 executor; INT64, INT32, BOOL: shape arithmetic folded at load time).
[[nodiscard]] bool cast_target_supported(std::int64_t to);
[[nodiscard]] bool cast_target_is_integer(std::int64_t to);

// Text from the file made safe for a one-line message and a JSON report:
// valid UTF-8 is kept; control characters and bytes that are not valid
// UTF-8 become '?'. Only for display: graph wiring uses the raw names.
[[nodiscard]] std::string printable(std::string_view text);

// Shape helpers shared with the loader.
[[nodiscard]] std::string dims_text(const Shape& shape);
// Checks rank and element limits; `what` names the tensor in the message.
void check_shape_limits(const Shape& shape, const Context& ctx, std::string_view what);

}  // namespace accsim::net::detail
