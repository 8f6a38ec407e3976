// The ONNX loader: shapes it infers, and one-line errors (naming the file,
// the node and the problem) for everything malformed.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "onnx_builder.hpp"
#include "sim/errors.hpp"
#include "sim/network/onnx_loader.hpp"

namespace accsim::net {
namespace {

using testing::attr_float;
using testing::attr_int;
using testing::attr_ints;
using testing::attr_string;
using testing::attr_tensor;
using testing::float_tensor;
using testing::int64_tensor;
using testing::ModelBuilder;

// input [1,1,4,4] -> Conv(2 filters 3x3, pad 1) -> Relu -> Flatten -> Gemm(3) -> logits [1,3]
ModelBuilder small_cnn() {
  ModelBuilder m;
  m.input("x", {1, 1, 4, 4}).output("logits", {1, 3});
  m.init(float_tensor("w", {2, 1, 3, 3}, std::vector<float>(18, 0.5f)));
  m.init(float_tensor("b", {2}, {1, -1}));
  m.init(float_tensor("fc", {3, 32}, std::vector<float>(96, 0.25f)));
  m.init(float_tensor("fcb", {3}, {0, 1, 2}));
  auto& conv = m.node("Conv", {"x", "w", "b"}, {"c"}, "conv");
  attr_ints(conv, "pads", {1, 1, 1, 1});
  attr_ints(conv, "kernel_shape", {3, 3});
  m.node("Relu", {"c"}, {"r"}, "relu");
  m.node("Flatten", {"r"}, {"f"}, "flatten");
  auto& gemm = m.node("Gemm", {"f", "fc", "fcb"}, {"logits"}, "fc");
  attr_int(gemm, "transB", 1);
  return m;
}

std::string load_error(const std::string& bytes, const std::optional<InputBinding>& binding = std::nullopt) {
  try {
    (void)parse_onnx(bytes, "model.onnx", binding);
  } catch (const sim::InputError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    return what;
  }
  return "(no error)";
}

#define EXPECT_HAS(haystack, needle) EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

TEST(OnnxLoader, SmallCnnShapes) {
  const Network net = parse_onnx(small_cnn().bytes(), "model.onnx");
  EXPECT_EQ(net.opset, 13);
  EXPECT_EQ(net.input_shape(), (Shape{1, 1, 4, 4}));
  EXPECT_EQ(net.output_shape(), (Shape{1, 3}));
  ASSERT_EQ(net.nodes.size(), 4u);
  ASSERT_EQ(net.gemm_layers, (std::vector<std::size_t>{0, 3}));
  EXPECT_EQ(net.nodes[0].name, "conv");
  EXPECT_EQ(net.nodes[0].gemm.m, 2);
  EXPECT_EQ(net.nodes[0].gemm.k, 9);
  EXPECT_EQ(net.nodes[0].gemm.n, 16);
  EXPECT_EQ(net.nodes[3].gemm.k, 32);
  EXPECT_EQ(net.nodes[3].gemm.n, 3);
  EXPECT_EQ(net.macs_per_sample(), 2u * 9 * 16 + 32 * 3);
}

TEST(OnnxLoader, SymbolicBatchIsOneAndBindingResolvesOtherDims) {
  ModelBuilder m;
  m.input("x", {-1, 3}).output("y");
  m.node("Relu", {"x"}, {"y"});
  EXPECT_EQ(parse_onnx(m.bytes(), "m.onnx").input_shape(), (Shape{1, 3}));

  ModelBuilder dyn;
  dyn.input("x", {1, -1}).output("y");
  dyn.node("Relu", {"x"}, {"y"});
  EXPECT_HAS(load_error(dyn.bytes()), "model.onnx: input 'x' dimension 1 is dynamic ('N')");
  EXPECT_EQ(parse_onnx(dyn.bytes(), "m.onnx", InputBinding{{1, 7}, "in.npy"}).input_shape(), (Shape{1, 7}));
  // A fixed dimension that differs from the data names the data file.
  const std::string e = load_error(small_cnn().bytes(), InputBinding{{1, 1, 5, 4}, "inputs.npy"});
  EXPECT_HAS(e, "inputs.npy: samples have shape [1, 1, 5, 4]");
  EXPECT_HAS(load_error(small_cnn().bytes(), InputBinding{{1, 16}, "inputs.npy"}), "inputs.npy:");
}

TEST(OnnxLoader, CorruptFiles) {
  EXPECT_HAS(load_error(""), "model.onnx: file is empty");
  EXPECT_HAS(load_error("\xff\xff\xff\xff garbage"), "model.onnx: not a valid ONNX model");
  const std::string full = small_cnn().bytes();
  // Every truncation either fails to parse or fails validation; none crashes.
  for (std::size_t cut = 1; cut < full.size(); cut += 7) {
    const std::string e = load_error(full.substr(0, cut));
    EXPECT_HAS(e, "model.onnx: ");
  }
}

TEST(OnnxLoader, ModelLevelProblems) {
  ModelBuilder no_graph;
  no_graph.model().clear_graph();
  EXPECT_HAS(load_error(no_graph.bytes()), "the model has no graph");

  ModelBuilder old = small_cnn();
  old.model().mutable_opset_import(0)->set_version(5);
  EXPECT_HAS(load_error(old.bytes()), "opset 5 is not supported");
  old.model().clear_opset_import();
  EXPECT_HAS(load_error(old.bytes()), "imports no opset of the default ONNX domain");

  ModelBuilder two_inputs = small_cnn();
  two_inputs.input("extra", {1});
  EXPECT_HAS(load_error(two_inputs.bytes()), "the graph has 2 inputs ('x', 'extra')");
  ModelBuilder two_outputs = small_cnn();
  two_outputs.output("r");
  EXPECT_HAS(load_error(two_outputs.bytes()), "the graph has 2 outputs");
}

TEST(OnnxLoader, UnsupportedOperatorNamesNodeOperatorAndList) {
  ModelBuilder m;
  m.input("x", {1, 4}).output("y");
  m.node("Sin", {"x"}, {"y"}, "/act/Sin");
  const std::string e = load_error(m.bytes());
  EXPECT_HAS(e, "model.onnx: node '/act/Sin' (Sin): operator 'Sin' is not supported; accsim implements Add, ");
  EXPECT_HAS(e, "LayerNormalization");
  EXPECT_HAS(e, "Transpose, Unsqueeze, Where");
  m.graph().mutable_node(0)->set_domain("com.microsoft");
  EXPECT_HAS(load_error(m.bytes()), "operator domain 'com.microsoft' is not supported");
}

TEST(OnnxLoader, GraphStructureProblems) {
  ModelBuilder missing = small_cnn();
  missing.graph().mutable_initializer()->RemoveLast();  // fcb
  EXPECT_HAS(load_error(missing.bytes()),
             "node 'fc' (Gemm): input 'fcb' is not produced by any node and is neither an initializer");

  ModelBuilder cycle;
  cycle.input("x", {1, 2}).output("y");
  cycle.node("Add", {"x", "b"}, {"a"}, "first");
  cycle.node("Relu", {"a"}, {"b"}, "second");
  cycle.node("Relu", {"a"}, {"y"}, "out");
  EXPECT_HAS(load_error(cycle.bytes()), "the graph has a cycle through this node");

  ModelBuilder twice;
  twice.input("x", {1, 2}).output("y");
  twice.node("Relu", {"x"}, {"y"}, "a");
  twice.node("Relu", {"x"}, {"y"}, "b");
  EXPECT_HAS(load_error(twice.bytes()), "output 'y' is also produced by node 'a'");

  ModelBuilder shadow;
  shadow.input("x", {1, 2}).output("y");
  shadow.node("Relu", {"x"}, {"x"}, "a");
  shadow.node("Relu", {"x"}, {"y"}, "b");
  EXPECT_HAS(load_error(shadow.bytes()), "output 'x' has the name of the graph input");

  ModelBuilder nothing;
  nothing.input("x", {1, 2}).output("y");
  EXPECT_HAS(load_error(nothing.bytes()), "graph output 'y' is not produced by any node");

  ModelBuilder indices;
  indices.input("x", {1, 1, 4, 4}).output("y");
  auto& pool = indices.node("MaxPool", {"x"}, {"p", "idx"}, "pool");
  attr_ints(pool, "kernel_shape", {2, 2});
  indices.node("Relu", {"idx"}, {"y"}, "use");
  EXPECT_HAS(load_error(indices.bytes()), "node 'use' (Relu): input 'idx' is output 1 of node 'pool' (MaxPool)");
}

TEST(OnnxLoader, TensorProblems) {
  auto with_weight = [](const onnx::TensorProto& w) {
    ModelBuilder m;
    m.input("x", {1, 2}).output("y");
    m.init(w);
    m.node("Add", {"x", "w"}, {"y"}, "add");
    return m.bytes();
  };
  EXPECT_EQ(load_error(with_weight(float_tensor("w", {2}, {1, 2}))), "(no error)");
  onnx::TensorProto short_raw = float_tensor("w", {2}, {1, 2});
  short_raw.set_raw_data(short_raw.raw_data().substr(0, 7));
  EXPECT_HAS(load_error(with_weight(short_raw)),
             "model.onnx: initializer 'w' has shape [2] (2 elements, 8 bytes) but raw_data holds 7 bytes");
  EXPECT_HAS(load_error(with_weight(float_tensor("w", {3}, {1, 2}, false))), "holds 2 float values");
  EXPECT_HAS(load_error(with_weight(float_tensor("w", {-2}, {1, 2}))), "dimension of -2");
  EXPECT_HAS(load_error(with_weight(float_tensor("w", {0}, {}))), "dimension of 0");
  EXPECT_HAS(load_error(with_weight(float_tensor("w", {1LL << 40, 1LL << 40}, {1, 2}))), "is too large");
  onnx::TensorProto dbl = float_tensor("w", {2}, {1, 2});
  dbl.set_data_type(onnx::TensorProto::DOUBLE);
  EXPECT_HAS(load_error(with_weight(dbl)), "initializer 'w' has data type DOUBLE; accsim reads FLOAT weights");
  onnx::TensorProto ext = float_tensor("w", {2}, {1, 2});
  ext.set_data_location(onnx::TensorProto::EXTERNAL);
  EXPECT_HAS(load_error(with_weight(ext)), "external file");
  EXPECT_HAS(load_error(with_weight(float_tensor("w", {2}, {1, std::nanf("")}))),
             "initializer 'w' element 1 is NaN; weights and constants must be finite");
  EXPECT_HAS(load_error(with_weight(float_tensor("w", {2}, {std::numeric_limits<float>::infinity(), 1}))),
             "element 0 is +inf");
  EXPECT_HAS(load_error(with_weight(float_tensor("", {2}, {1, 2}))), "an initializer has no name");
}

TEST(OnnxLoader, OperatorShapeProblems) {
  ModelBuilder bad_channels;
  bad_channels.input("x", {1, 3, 4, 4}).output("y");
  bad_channels.init(float_tensor("w", {2, 2, 3, 3}, std::vector<float>(36, 1)));
  bad_channels.node("Conv", {"x", "w"}, {"y"}, "conv");
  EXPECT_HAS(load_error(bad_channels.bytes()),
             "node 'conv' (Conv): weight W has shape [2, 2, 3, 3] but the input has 3 channels");

  ModelBuilder big_kernel;
  big_kernel.input("x", {1, 1, 2, 2}).output("y");
  big_kernel.init(float_tensor("w", {1, 1, 3, 3}, std::vector<float>(9, 1)));
  big_kernel.node("Conv", {"x", "w"}, {"y"}, "conv");
  EXPECT_HAS(load_error(big_kernel.bytes()), "is larger than the padded input 2 along the height");

  ModelBuilder both_pads;
  both_pads.input("x", {1, 1, 4, 4}).output("y");
  both_pads.init(float_tensor("w", {1, 1, 3, 3}, std::vector<float>(9, 1)));
  auto& c = both_pads.node("Conv", {"x", "w"}, {"y"}, "conv");
  attr_ints(c, "pads", {1, 1, 1, 1});
  attr_string(c, "auto_pad", "SAME_UPPER");
  EXPECT_HAS(load_error(both_pads.bytes()), "'pads' and 'auto_pad' cannot be used together");

  ModelBuilder gemm;
  gemm.input("x", {1, 5}).output("y");
  gemm.init(float_tensor("w", {4, 3}, std::vector<float>(12, 1)));
  gemm.node("Gemm", {"x", "w"}, {"y"}, "fc");
  EXPECT_HAS(load_error(gemm.bytes()), "node 'fc' (Gemm): A [1, 5] and B [4, 3] have different inner dimensions");

  ModelBuilder attr;
  attr.input("x", {1, 2}).output("y");
  attr_int(attr.node("Relu", {"x"}, {"y"}, "r"), "alpha", 1);
  EXPECT_HAS(load_error(attr.bytes()), "node 'r' (Relu): attribute 'alpha' is not supported");

  ModelBuilder wrong_type;
  wrong_type.input("x", {1, 2}).output("y");
  attr_float(wrong_type.node("Flatten", {"x"}, {"y"}, "f"), "axis", 1.0f);
  EXPECT_HAS(load_error(wrong_type.bytes()), "attribute 'axis' must be an int");

  ModelBuilder reshape;
  reshape.input("x", {1, 6}).output("y");
  reshape.node("Reshape", {"x", "x"}, {"y"}, "reshape");
  EXPECT_HAS(load_error(reshape.bytes()), "input 1 (shape) 'x' must be an int64 constant");
  ModelBuilder reshape_count;
  reshape_count.input("x", {1, 6}).output("y");
  reshape_count.init(int64_tensor("s", {2}, {4, 2}));
  reshape_count.node("Reshape", {"x", "s"}, {"y"}, "reshape");
  EXPECT_HAS(load_error(reshape_count.bytes()), "cannot reshape [1, 6] (6 elements) into [4, 2] (8 elements)");

  ModelBuilder add;
  add.input("x", {1, 3}).output("y");
  add.init(float_tensor("b", {2}, {1, 2}));
  add.node("Add", {"x", "b"}, {"y"}, "add");
  EXPECT_HAS(load_error(add.bytes()), "shapes [1, 3] and [2] do not broadcast");

  ModelBuilder batch;
  batch.input("x", {2, 1, 4, 4}).output("y");
  batch.init(float_tensor("w", {1, 1, 3, 3}, std::vector<float>(9, 1)));
  batch.node("Conv", {"x", "w"}, {"y"}, "conv");
  EXPECT_HAS(load_error(batch.bytes()), "batch dimension is 2; accsim runs one sample at a time");

  ModelBuilder pool_pad;
  pool_pad.input("x", {1, 1, 4, 4}).output("y");
  auto& p = pool_pad.node("MaxPool", {"x"}, {"y"}, "pool");
  attr_ints(p, "kernel_shape", {2, 2});
  attr_ints(p, "pads", {2, 0, 0, 0});
  EXPECT_HAS(load_error(pool_pad.bytes()), "pooling window 0 along the height lies wholly in the padding");

  ModelBuilder declared;
  declared.input("x", {1, 2}).output("y", {1, 3});
  declared.node("Relu", {"x"}, {"y"});
  EXPECT_HAS(load_error(declared.bytes()), "graph output 'y' is declared with another shape than the [1, 2]");
}

TEST(OnnxLoader, ConstantsFoldAtLoadTime) {
  // Constant -> Reshape -> weight of a MatMul: the whole chain becomes one
  // constant, so the MatMul sees a constant (weight) operand.
  ModelBuilder m;
  m.input("x", {1, 2}).output("y");
  auto& k = m.node("Constant", {}, {"flat"}, "const");
  attr_tensor(k, "value", float_tensor("", {4}, {1, 2, 3, 4}));
  m.init(int64_tensor("shape", {2}, {2, 2}));
  m.node("Reshape", {"flat", "shape"}, {"w"}, "reshape");
  m.node("MatMul", {"x", "w"}, {"y"}, "mm");
  const Network net = parse_onnx(m.bytes(), "m.onnx");
  ASSERT_EQ(net.nodes.size(), 1u);
  EXPECT_EQ(net.nodes[0].op, Op::MatMul);
  const Value& w = net.values[*net.nodes[0].inputs[1]];
  ASSERT_TRUE(w.constant.has_value());
  EXPECT_EQ(w.shape, (Shape{2, 2}));
  EXPECT_EQ(net.constants[*w.constant], (std::vector<float>{1, 2, 3, 4}));
}

TEST(OnnxLoader, UnnamedAndRepeatedNodeNamesAreMadeUnique) {
  ModelBuilder m;
  m.input("x", {1, 2}).output("y");
  m.node("Relu", {"x"}, {"a"});
  m.node("Relu", {"a"}, {"b"}, "same");
  m.node("Relu", {"b"}, {"y"}, "same");
  const Network net = parse_onnx(m.bytes(), "m.onnx");
  ASSERT_EQ(net.nodes.size(), 3u);
  EXPECT_EQ(net.nodes[0].name, "Relu_0");
  EXPECT_EQ(net.nodes[1].name, "same");
  EXPECT_EQ(net.nodes[2].name, "same#2");
}

TEST(OnnxLoader, DeadNodesAreDropped) {
  ModelBuilder m;
  m.input("x", {1, 2}).output("y");
  m.node("Relu", {"x"}, {"y"}, "live");
  m.node("Relu", {"x"}, {"unused"}, "dead");
  EXPECT_EQ(parse_onnx(m.bytes(), "m.onnx").nodes.size(), 1u);
}

TEST(OnnxLoader, MissingFile) {
  try {
    (void)load_onnx("/nonexistent/model.onnx");
    FAIL();
  } catch (const sim::InputError& e) {
    EXPECT_HAS(std::string(e.what()), "/nonexistent/model.onnx: cannot open");
  }
}

}  // namespace
}  // namespace accsim::net

namespace accsim::net {
namespace {

TEST(OnnxLoader, NamesAreMadePrintableForMessagesAndReports) {
  ModelBuilder m;
  m.input("x", {1, 2}).output("y");
  m.node("Relu", {"x"}, {"a"}, "\xff\xfe\x01r\xc3\xa9lu");  // invalid UTF-8, a control byte, then "rélu"
  m.node("Relu", {"a"}, {"y"}, "ok");
  const Network net = parse_onnx(m.bytes(), "m.onnx");
  EXPECT_EQ(net.nodes[0].name, "???r\xc3\xa9lu");
  // Raw names still wire the graph: two names that print the same stay distinct.
  ModelBuilder twins;
  twins.input("x", {1, 2}).output("y");
  twins.node("Relu", {"x"}, {"a\x01"}, "first");
  twins.node("Relu", {"x"}, {"a\x02"}, "second");
  twins.node("Add", {"a\x01", "a\x02"}, {"y"}, "sum");
  EXPECT_EQ(parse_onnx(twins.bytes(), "m.onnx").nodes.size(), 3u);
}

}  // namespace
}  // namespace accsim::net
