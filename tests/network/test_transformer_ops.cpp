// The transformer operators: each model of corpus/ops (make_op_corpus.py)
// against the output PyTorch or NumPy computed for it; the attention MatMul
// (both operands activations) on the low-bit path against plain loops; and
// the load-time errors of the new operators.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "models/numerics/format.hpp"
#include "models/reference/gemm.hpp"
#include "onnx_builder.hpp"
#include "sim/errors.hpp"
#include "sim/network/executor.hpp"
#include "sim/npy.hpp"
#include "sim/network/onnx_loader.hpp"

namespace accsim::net {
namespace {

using testing::attr_int;
using testing::attr_ints;
using testing::float_tensor;
using testing::int64_tensor;
using testing::ModelBuilder;

#define EXPECT_HAS(haystack, needle) EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

const std::filesystem::path kOps = std::filesystem::path(ACCSIM_CORPUS_DIR) / "ops";

std::vector<float> read_floats(const std::filesystem::path& p) { return sim::read_npy_array(p).floats(p.string()); }

TEST(TransformerOps, CorpusModelsMatchTheirOracles) {
  std::size_t cases = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kOps)) {
    const std::filesystem::path& model = entry.path();
    if (model.extension() != ".onnx") continue;
    ++cases;
    const std::string name = model.stem().string();
    SCOPED_TRACE(name);
    const std::vector<float> x = read_floats(kOps / (name + ".in.npy"));
    const std::vector<float> want = read_floats(kOps / (name + ".out.npy"));
    const Network net = load_onnx(model);
    ASSERT_EQ(static_cast<std::size_t>(element_count(net.output_shape())), want.size());
    const Executor ex(net, std::vector<LayerArithmetic>(net.gemm_layers.size()));
    auto ws = ex.make_workspace();
    const auto got = ex.run(x, *ws);
    const bool exact = name.ends_with("_exact");
    for (std::size_t i = 0; i < want.size(); ++i) {
      if (exact) {
        ASSERT_EQ(std::bit_cast<std::uint32_t>(got[i]), std::bit_cast<std::uint32_t>(want[i]))
            << "element " << i << ": " << got[i] << " vs " << want[i];
      } else {
        // PyTorch's float kernels (LayerNorm, GELU, softmax, its GEMMs'
        // summation order) and accsim's differ in the last bits.
        ASSERT_NEAR(got[i], want[i], 1e-5 * (1 + std::abs(want[i]))) << "element " << i;
      }
    }
  }
  EXPECT_GE(cases, 7u);
}

TEST(TransformerOps, ShapeArithmeticFoldsAndSplitBecomesSlices) {
  const Network net = load_onnx(kOps / "hand_shapes_exact.onnx");
  for (const Node& n : net.nodes) {
    EXPECT_NE(n.op, Op::ShapeOf);
    EXPECT_NE(n.op, Op::Split);
  }
  std::size_t slices = 0;
  for (const Node& n : net.nodes) slices += n.op == Op::Slice;
  EXPECT_EQ(slices, 3u);  // the Slice and Split's two outputs
}

TEST(TransformerOps, EncoderBlockHasAttentionMatMulsOfTwoActivations) {
  const Network net = load_onnx(kOps / "encoder_block_opset17.onnx");
  std::size_t attention = 0;
  for (std::size_t i : net.gemm_layers) {
    const Node& n = net.nodes[i];
    if (!net.operands_are_activations(n)) continue;
    ++attention;
    EXPECT_EQ(n.gemm.groups, 2);  // the heads
  }
  EXPECT_EQ(attention, 2u);
}

// x [2, 3, 4] (two heads of 3 tokens x 4 features); y = x · xᵀ per head.
std::string attention_model() {
  ModelBuilder m;
  m.input("x", {2, 3, 4}).output("y");
  attr_ints(m.node("Transpose", {"x"}, {"xt"}), "perm", {0, 2, 1});
  m.node("MatMul", {"x", "xt"}, {"y"}, "/attn/MatMul");
  return m.bytes();
}

std::vector<float> attention_loops(const std::vector<float>& x) {
  std::vector<float> y(2 * 3 * 3, 0.0f);
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) {
        double s = 0;
        for (int k = 0; k < 4; ++k) s += double(x[h * 12 + i * 4 + k]) * x[h * 12 + j * 4 + k];
        y[h * 9 + i * 3 + j] = static_cast<float>(s);
      }
  return y;
}

LayerArithmetic e4m3_exact_sums(ref::Scaling scaling) {
  LayerArithmetic a;
  a.engine = Engine::reference;
  a.config.multiplier = num::parse_format("e4m3");
  a.config.product = std::nullopt;  // exact
  a.config.accumulator = num::parse_format("fp32");
  a.config.order = ref::AccumulationOrder{};
  a.config.scaling = scaling;
  a.config.threads = 1;
  return a;
}

TEST(TransformerOps, AttentionMatMulRoundsBothActivationsAndLowersPerHead) {
  const Network net = parse_onnx(attention_model(), "m.onnx");
  ASSERT_EQ(net.gemm_layers.size(), 1u);
  EXPECT_TRUE(net.operands_are_activations(net.nodes[net.gemm_layers[0]]));
  // Values e4m3 holds exactly and whose sums fp32 holds exactly: the low-bit
  // layer must give the exact per-head products.
  std::vector<float> x(24);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(i % 7) - 3) * 0.5f;
  const Executor ex(net, {e4m3_exact_sums(ref::Scaling::none)});
  auto ws = ex.make_workspace();
  std::vector<LayerStats> stats(1);
  const auto got = ex.run(x, *ws, stats);
  const std::vector<float> want = attention_loops(x);
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i]) << i;
  EXPECT_EQ(stats[0].quantize.ops, 48u);     // both operands, every element, once
  EXPECT_EQ(stats[0].accumulate.ops, 72u);  // 2 heads x 3 x 3 outputs x 4 additions
}

TEST(TransformerOps, AttentionOperandsShareOneScalePerTensor) {
  // Head 0 holds 8s, head 1 values of 2^-17. With pow2 scaling, one scale
  // for the whole tensor puts 8 at the top of e4m3, and 2^-17 (scaled by 2^5) then falls
  // below e4m3's smallest subnormal: head 1's scores are 0. A scale per head
  // would have kept them.
  const Network net = parse_onnx(attention_model(), "m.onnx");
  std::vector<float> x(24);
  for (std::size_t i = 0; i < 12; ++i) x[i] = 8.0f;
  for (std::size_t i = 12; i < 24; ++i) x[i] = std::ldexp(1.0f, -17);
  const Executor ex(net, {e4m3_exact_sums(ref::Scaling::pow2)});
  auto ws = ex.make_workspace();
  std::vector<LayerStats> stats(1);
  const auto got = ex.run(x, *ws, stats);
  for (std::size_t i = 0; i < 9; ++i) EXPECT_EQ(got[i], 256.0f) << i;
  for (std::size_t i = 9; i < 18; ++i) EXPECT_EQ(got[i], 0.0f) << i;
  EXPECT_EQ(stats[0].quantize.underflow, 24u);  // head 1's 12 elements, in both operands
}

std::string load_error(const std::string& bytes) {
  try {
    (void)parse_onnx(bytes, "model.onnx");
  } catch (const sim::InputError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos);
    return what;
  }
  ADD_FAILURE() << "loaded without error";
  return "";
}

TEST(TransformerOps, ShapesThatDisagreeNameTheNodeAndBothShapes) {
  ModelBuilder mm;
  mm.input("x", {2, 3, 4}).output("y");
  mm.init(float_tensor("w", {3, 5, 2}, std::vector<float>(30, 1.0f)));
  mm.node("MatMul", {"x", "w"}, {"y"}, "/attn/MatMul");
  const std::string e = load_error(mm.bytes());
  EXPECT_HAS(e, "model.onnx: node '/attn/MatMul' (MatMul): A [2, 3, 4] and B [3, 5, 2] have different inner dimensions");

  ModelBuilder batch;
  batch.input("x", {2, 3, 4}).output("y");
  batch.init(float_tensor("w", {3, 4, 2}, std::vector<float>(24, 1.0f)));
  batch.node("MatMul", {"x", "w"}, {"y"}, "mm");
  EXPECT_HAS(load_error(batch.bytes()), "node 'mm' (MatMul): shapes [2] and [3] do not broadcast");

  ModelBuilder add;
  add.input("x", {1, 5, 8}).output("y");
  add.init(float_tensor("b", {7}, std::vector<float>(7, 1.0f)));
  add.node("Sub", {"x", "b"}, {"y"}, "s");
  EXPECT_HAS(load_error(add.bytes()), "node 's' (Sub): shapes [1, 5, 8] and [7] do not broadcast");

  ModelBuilder ln(17);
  ln.input("x", {1, 5, 8}).output("y");
  ln.init(float_tensor("g", {5}, std::vector<float>(5, 1.0f)));
  ln.node("LayerNormalization", {"x", "g"}, {"y"}, "ln");
  EXPECT_HAS(load_error(ln.bytes()), "node 'ln' (LayerNormalization): Scale has shape [5]; it must be the normalized "
                                     "shape [8] of X [1, 5, 8]");
}

TEST(TransformerOps, IntegerArithmeticOnComputedTensorsIsRefused) {
  // A Reshape whose target is computed from the sample: accsim computes
  // integers only at load time.
  ModelBuilder m;
  m.input("x", {1, 4}).output("y");
  attr_int(m.node("Cast", {"x"}, {"xi"}, "c"), "to", onnx::TensorProto::INT64);
  m.node("Reshape", {"x", "xi"}, {"y"}, "r");
  EXPECT_HAS(load_error(m.bytes()), "node 'c' (Cast): computes an integer tensor from a tensor computed per sample");

  ModelBuilder g;
  g.input("x", {1, 4}).output("y");
  g.init(float_tensor("i", {2}, {0.0f, 1.0f}));
  attr_int(g.node("Gather", {"x", "i"}, {"y"}, "g"), "axis", 1);
  EXPECT_HAS(load_error(g.bytes()), "node 'g' (Gather): input 1 (indices) 'i' must be an int64 constant");

  ModelBuilder s;
  s.input("x", {1, 4}).output("y");
  s.init(int64_tensor("st", {1}, {0}));
  s.init(int64_tensor("en", {1}, {0}));
  s.init(int64_tensor("ax", {1}, {1}));
  s.node("Slice", {"x", "st", "en", "ax"}, {"y"}, "sl");
  EXPECT_HAS(load_error(s.bytes()), "node 'sl' (Slice): the slice of dimension 1 is empty");
}

}  // namespace
}  // namespace accsim::net

namespace accsim::net {
namespace {

// Workspaces that reuse a value's buffer once its last reader has run
// compute the same bits as those that keep every GEMM output, and the
// layer outputs run() records are the ones a keeping workspace holds.
TEST(TransformerOps, BufferReuseChangesNoResult) {
  for (const char* name : {"encoder_block_opset13", "encoder_block_opset17", "movement_exact", "batched_matmul"}) {
    SCOPED_TRACE(name);
    const Network net = load_onnx(kOps / (std::string(name) + ".onnx"));
    const std::vector<float> x = read_floats(kOps / (std::string(name) + ".in.npy"));
    LayerArithmetic lowbit = e4m3_exact_sums(ref::Scaling::pow2);
    const Executor ex(net, std::vector<LayerArithmetic>(net.gemm_layers.size(), lowbit));
    auto keep = ex.make_workspace(true);
    auto reuse = ex.make_workspace(false);
    EXPECT_LE(reuse->values.size(), keep->values.size());
    const auto a = ex.run(x, *keep);
    const std::vector<float> first(a.begin(), a.end());
    std::vector<std::vector<float>> recorded(net.gemm_layers.size());
    const auto b = ex.run(x, *reuse, {}, nullptr, &recorded);
    ASSERT_EQ(first.size(), b.size());
    EXPECT_EQ(std::memcmp(first.data(), b.data(), b.size_bytes()), 0);
    for (std::size_t l = 0; l < net.gemm_layers.size(); ++l) {
      const auto kept = ex.layer_output(*keep, l);
      ASSERT_EQ(kept.size(), recorded[l].size());
      EXPECT_EQ(std::memcmp(kept.data(), recorded[l].data(), kept.size_bytes()), 0) << "layer " << l;
    }
  }
}

}  // namespace
}  // namespace accsim::net

namespace accsim::net {
namespace {

TEST(TransformerOps, HostileAxesAndIntegersAreRefused) {
  ModelBuilder sq;
  sq.input("x", {1, 4}).output("y");
  sq.init(int64_tensor("axes", {5}, {0, 0, 0, 0, 0}));
  sq.node("Squeeze", {"x", "axes"}, {"y"}, "sq");
  EXPECT_HAS(load_error(sq.bytes()), "node 'sq' (Squeeze): 5 axes given for a tensor of 2 dimensions");

  // 4096 * 4096 = 2^24 is exact; 4097 * 4097 is not, in float.
  for (const std::int64_t v : {4096, 4097}) {
    ModelBuilder m;
    m.input("x", {1, 4}).output("y");
    m.init(int64_tensor("a", {1}, {v}));
    m.node("Mul", {"a", "a"}, {"sq"}, "mul");
    m.node("Reshape", {"x", "sq"}, {"y"}, "r");
    const std::string e = load_error(m.bytes());
    if (v == 4096) {
      EXPECT_HAS(e, "node 'r' (Reshape): cannot reshape [1, 4] (4 elements) into [16777216]");
    } else {
      EXPECT_HAS(e, "node 'mul' (Mul): integer arithmetic gives a value beyond 2^24");
    }
  }
}

}  // namespace
}  // namespace accsim::net

#include "sim/network/layer_config.hpp"

namespace accsim::net {
namespace {

TEST(TransformerOps, AttentionSelectorPicksTheActivationTimesActivationLayers) {
  const Network net = load_onnx(kOps / "encoder_block_opset17.onnx");
  LayerArithmetic base = e4m3_exact_sums(ref::Scaling::pow2);
  const std::vector<LayerOverride> o{parse_layer_flag("attention:engine=fp32")};
  const std::vector<LayerArithmetic> layers = resolve_layers(net, base, o);
  std::size_t fp32 = 0;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const bool attention = net.operands_are_activations(net.nodes[net.gemm_layers[l]]);
    EXPECT_EQ(layers[l].engine == Engine::fp32, attention) << l;
    fp32 += layers[l].engine == Engine::fp32;
  }
  EXPECT_EQ(fp32, 2u);
  // A network without attention: the selector names nothing, an error.
  ModelBuilder m;
  m.input("x", {1, 4}).output("y");
  m.init(float_tensor("w", {4, 2}, std::vector<float>(8, 1.0f)));
  m.node("MatMul", {"x", "w"}, {"y"}, "fc");
  const Network mlp = parse_onnx(m.bytes(), "m.onnx");
  try {
    (void)resolve_layers(mlp, base, o);
    ADD_FAILURE() << "no error";
  } catch (const sim::InputError& e) {
    EXPECT_HAS(std::string(e.what()), "'attention' is not a GEMM layer of m.onnx (first, last, *, attention, or one of: fc)");
  }
}

}  // namespace
}  // namespace accsim::net
