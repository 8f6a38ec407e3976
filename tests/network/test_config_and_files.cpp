// Per-layer overrides, N-D .npy arrays and trace folders: what they accept
// and the one-line errors for what they do not.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "onnx_builder.hpp"
#include "sim/errors.hpp"
#include "sim/network/layer_config.hpp"
#include "sim/npy.hpp"
#include "sim/network/onnx_loader.hpp"
#include "sim/network/trace.hpp"
#include "tests/cli/test_util.hpp"
#include "trace_fixture.hpp"

namespace accsim::net {
namespace {

using sim::NpyArray;
using sim::parse_npy_array;
using sim::testing::le_bytes;
using sim::testing::npy_header_dict;
using sim::testing::npy_raw;
using sim::testing::TempDir;
using sim::testing::write_bytes;
using testing::attr_int;
using testing::float_tensor;
using testing::ModelBuilder;
using testing::f32_data;
using testing::i64_data;
using testing::npy;
using testing::write_trace;

#define EXPECT_HAS(haystack, needle) EXPECT_NE((haystack).find(needle), std::string::npos) << (haystack)

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const sim::InputError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos);
    return what;
  }
  return "(no error)";
}

// input [1,4] -> Gemm "a" -> Relu -> Gemm "b" -> Gemm "c"
Network three_layers() {
  ModelBuilder m;
  m.input("x", {1, 4}).output("y");
  m.init(float_tensor("w", {4, 4}, std::vector<float>(16, 1)));
  m.node("Gemm", {"x", "w"}, {"a"}, "a");
  m.node("Relu", {"a"}, {"r"}, "relu");
  m.node("Gemm", {"r", "w"}, {"b"}, "b");
  m.node("Gemm", {"b", "w"}, {"y"}, "c");
  return parse_onnx(m.bytes(), "m.onnx");
}

LayerArithmetic paper() {
  LayerArithmetic a;
  apply_setting(a, "acc", "M7E4,bias=4,round=rtz,ftz", "test");
  return a;
}

TEST(LayerConfig, FlagSyntax) {
  const LayerOverride o = parse_layer_flag("/conv1/Conv:order=chunked:16:fp32");
  EXPECT_EQ(o.selector, "/conv1/Conv");
  EXPECT_EQ(o.key, "order");
  EXPECT_EQ(o.value, "chunked:16:fp32");
  const LayerOverride f = parse_layer_flag("last:acc=M7E4,bias=10,round=rtz");
  EXPECT_EQ(f.selector, "last");
  EXPECT_EQ(f.value, "M7E4,bias=10,round=rtz");
  EXPECT_HAS(error_of([] { (void)parse_layer_flag("first"); }), "--layer 'first': expected NAME:key=value");
  EXPECT_HAS(error_of([] { (void)parse_layer_flag(":acc=fp32"); }), "expected NAME:key=value");
}

TEST(LayerConfig, OverridesApplyInOrder) {
  const Network net = three_layers();
  const std::vector<LayerOverride> o{parse_layer_flag("*:order=chunked:8"), parse_layer_flag("first:engine=fp32"),
                                     parse_layer_flag("b:acc=fp16"), parse_layer_flag("last:prod=exact")};
  const auto layers = resolve_layers(net, paper(), o);
  ASSERT_EQ(layers.size(), 3u);
  EXPECT_EQ(layers[0].engine, Engine::fp32);
  EXPECT_EQ(layers[1].engine, Engine::reference);
  EXPECT_EQ(layers[1].config.accumulator, num::Format(num::formats::fp16()));
  EXPECT_EQ(layers[1].config.order.chunk, 8);
  EXPECT_FALSE(layers[2].config.product.has_value());
  EXPECT_EQ(layers[2].config.accumulator, paper().config.accumulator);

  EXPECT_HAS(error_of([&] { (void)resolve_layers(net, paper(), std::vector{parse_layer_flag("relu:acc=fp16")}); }),
             "--layer 'relu:acc=fp16': 'relu' is not a GEMM layer of m.onnx (first, last, *, attention, or one of: a, b, c)");
  EXPECT_HAS(error_of([&] { (void)resolve_layers(net, paper(), std::vector{parse_layer_flag("a:bits=3")}); }),
             "unknown key 'bits'");
  EXPECT_HAS(error_of([&] { (void)resolve_layers(net, paper(), std::vector{parse_layer_flag("a:acc=M60E4")}); }),
             "--layer 'a:acc=M60E4': acc: ");
  EXPECT_HAS(error_of([&] { (void)resolve_layers(net, paper(), std::vector{parse_layer_flag("a:scale=row")}); }),
             "scale 'row' is not one of");
}

TEST(LayerConfig, YamlFile) {
  const auto o = parse_layer_config("layers:\n  first: {engine: fp32}\n  c:\n    order: \"chunked:32\"\n    acc: M8E4\n",
                                    "layers.yaml");
  ASSERT_EQ(o.size(), 3u);
  EXPECT_EQ(o[0].selector, "first");
  EXPECT_EQ(o[1].key, "order");
  EXPECT_EQ(o[2].value, "M8E4");
  const auto layers = resolve_layers(three_layers(), paper(), o);
  EXPECT_EQ(layers[0].engine, Engine::fp32);
  EXPECT_EQ(layers[2].config.order.chunk, 32);
  EXPECT_HAS(error_of([] { (void)parse_layer_config("layers: [1, 2", "l.yaml"); }), "l.yaml: not valid YAML");
  EXPECT_HAS(error_of([] { (void)parse_layer_config("other: 1", "l.yaml"); }), "expected a map with a 'layers' key");
  EXPECT_HAS(error_of([] { (void)parse_layer_config("layers:\n  a: fp32\n", "l.yaml"); }),
             "layer 'a': settings must be a map");
  EXPECT_HAS(error_of([] { (void)read_layer_config("/nonexistent.yaml"); }), "/nonexistent.yaml: cannot open");
}

// --- .npy arrays ------------------------------------------------------------------------

TEST(NpyArray, ReadsNdFloatAndIntArrays) {
  std::string data;
  for (float v : {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f}) data += le_bytes(std::bit_cast<std::uint32_t>(v), 4);
  const NpyArray a = parse_npy_array(npy("<f4", "(1, 2, 3)", data), "a.npy");
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(a.floats("a.npy"), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  const NpyArray l = parse_npy_array(npy("<i8", "(3,)", le_bytes(7, 8) + le_bytes(0, 8) + le_bytes(-1, 8)), "l.npy");
  EXPECT_EQ(l.int64s("l.npy"), (std::vector<std::int64_t>{7, 0, -1}));
  EXPECT_HAS(error_of([&] { (void)l.floats("l.npy"); }), "l.npy: dtype is int64; a trace stores float32 here");
}

TEST(NpyArray, Errors) {
  EXPECT_HAS(error_of([] { (void)parse_npy_array("", "x.npy"); }), "x.npy: file is empty");
  EXPECT_HAS(error_of([] { (void)parse_npy_array("\x93NUMPY\x01", "x.npy"); }), "truncated");
  EXPECT_HAS(error_of([] { (void)parse_npy_array(npy("<f4", "(2, 2)", std::string(12, '\0')), "x.npy"); }),
             "x.npy: truncated: shape (2, 2) of float32 needs 16 data bytes, the file holds 12");
  EXPECT_HAS(error_of([] { (void)parse_npy_array(npy(">f4", "(1,)", std::string(4, '\0')), "x.npy"); }),
             "dtype '>f4' is not supported");
  EXPECT_HAS(error_of([] { (void)parse_npy_array(npy("<f4", "(99999999999, 99999999999, 9999999999)", ""), "x.npy"); }),
             "too large");
  EXPECT_HAS(error_of([] { (void)parse_npy_array(npy_raw("{'descr': '<f4', 'shape': (1,)}", "...."), "x.npy"); }),
             "malformed .npy header");
}

// --- trace folders ----------------------------------------------------------------------

TEST(TraceFolder, LoadsAndChecks) {
  TempDir dir;
  write_trace(dir);
  const Trace t = load_trace(dir.path());
  EXPECT_EQ(t.name, "tiny");
  EXPECT_EQ(t.samples, 4u);
  EXPECT_EQ(t.classes, 3u);
  EXPECT_EQ(t.sample_size, 8u);
  EXPECT_EQ(t.framework_correct, 3);
  EXPECT_EQ(load_trace(dir.path(), 2).samples, 2u);
  EXPECT_HAS(error_of([&] { (void)load_trace(dir.path(), 5); }), "--samples: 5 asked for, but");
}

TEST(TraceFolder, BadInputs) {
  auto broken = [](const std::string& file, const std::string& bytes) {
    TempDir dir;
    write_trace(dir);
    write_bytes(dir / file, bytes);
    return error_of([&] { (void)load_trace(dir.path()); });
  };
  EXPECT_HAS(broken("labels.npy", npy("<i8", "(3,)", i64_data({0, 1, 2}))),
             "labels.npy: shape (3,) does not match the 4 samples of");
  EXPECT_HAS(broken("labels.npy", npy("<i8", "(4,)", i64_data({0, 1, 2, 3}))),
             "labels.npy: label 3 of sample 3 is outside 0..2");
  EXPECT_HAS(broken("labels.npy", npy("<f4", "(4,)", f32_data({0, 1, 2, 1}))), "dtype is float32; labels are int64");
  EXPECT_HAS(broken("inputs.npy", npy("<f4", "(4, 2, 2, 3)", f32_data(std::vector<float>(48, 0.0f)))),
             "inputs.npy: samples have shape [1, 2, 2, 3] but input 'input' of");
  EXPECT_HAS(broken("inputs.npy", npy("<f8", "(4, 2, 2, 2)", std::string(256, '\0'))),
             "inputs.npy: dtype is float64; the model's input is float32");
  std::vector<float> nan_inputs(32, 0.0f);
  nan_inputs[13] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_HAS(broken("inputs.npy", npy("<f4", "(4, 2, 2, 2)", f32_data(nan_inputs))),
             "inputs.npy: sample 1 element 5 is NaN; inputs must be finite");
  EXPECT_HAS(broken("golden.npy", npy("<f4", "(4, 2)", f32_data(std::vector<float>(8, 0.0f)))),
             "golden.npy: shape (4, 2) does not match 4 samples x 3 model outputs");
  EXPECT_HAS(broken("model.onnx", "garbage"), "model.onnx: not a valid ONNX model");
  EXPECT_HAS(broken("trace.json", "{"), "trace.json: not valid JSON");
  EXPECT_HAS(broken("trace.json", R"({"num_samples": 5})"), "trace.json: num_samples is 5 but");
  EXPECT_HAS(broken("trace.json", R"({"format_version": 2})"), "format_version 2 is not supported");
  EXPECT_HAS(error_of([] { (void)load_trace("/nonexistent/trace"); }), "/nonexistent/trace: no such trace folder");
}

TEST(TraceFolder, ArgmaxTiesGoToTheLowestIndexAndNanNeverWins) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float a[] = {1, 3, 3, 2};
  const float b[] = {nan, 1, nan, 2};
  const float c[] = {nan, nan};
  EXPECT_EQ(argmax(a, 4), 1u);
  EXPECT_EQ(argmax(b, 4), 3u);
  EXPECT_EQ(argmax(c, 2), 0u);
}

}  // namespace
}  // namespace accsim::net
