// Configuration errors a user can cause: one line each, naming the field;
// the parsers the CLI uses; the orders each dataflow produces.
#include <gtest/gtest.h>

#include "models/reference/dataflow.hpp"
#include "test_util.hpp"

namespace accsim::hw {
namespace {

// Runs f, expects a ConfigError on `field` whose message is one line.
template <class F>
void expect_config_error(F&& f, const std::string& field, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no error for " << field;
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.field(), field) << e.what();
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_NE(what.find(part), std::string::npos) << what;
    EXPECT_EQ(what.rfind(field + ": ", 0), 0u) << what;
  }
}

TEST(ArrayConfig, DefaultsAreValid) {
  const ArrayConfig arr;
  EXPECT_NO_THROW(arr.validate());
  EXPECT_NO_THROW(arr.validate(test::gemm_config("e4m3", "fp32", "")));
}

TEST(ArrayConfig, RejectsWhatAUserCanGetWrong) {
  ArrayConfig arr;
  arr.rows = 0;
  expect_config_error([&] { arr.validate(); }, "rows", "1..1024");
  arr = {};
  arr.cols = 5000;
  expect_config_error([&] { arr.validate(); }, "cols", "(got 5000)");
  arr = {};
  arr.dataflow = static_cast<Dataflow>(7);
  expect_config_error([&] { arr.validate(); }, "dataflow", "unknown dataflow");
  arr = {};
  arr.mul_latency = 33;
  expect_config_error([&] { arr.validate(); }, "mul_latency", "0..32");
  arr = {};
  arr.add_latency = 0;
  expect_config_error([&] { arr.validate(); }, "add_latency", "1..32");
  arr = {};
  arr.output_buffer.ports = 3;
  expect_config_error([&] { arr.validate(); }, "output_buffer.ports", "(got 3)");
  arr = {};
  arr.dram_bytes_per_cycle = -1;
  expect_config_error([&] { arr.validate(); }, "dram_bytes_per_cycle", ">= 0");
  arr = {};
  arr.vcd_window.row_begin = 20;
  expect_config_error([&] { arr.validate(); }, "vcd_window", "rows");
}

TEST(ArrayConfig, EveryBufferHoldsOneTileRow) {
  const ref::GemmConfig cfg = test::gemm_config("e4m3", "M7E4,bias=10,round=rtz,ftz", "");
  ArrayConfig arr = test::array_config(16, 8, Dataflow::weight_stationary);
  arr.input_buffer.capacity_bytes = 16;  // 16 one-byte activations: exactly one row
  arr.weight_buffer.capacity_bytes = 8;
  arr.output_buffer.capacity_bytes = 12;  // 8 outputs of 12 bits
  EXPECT_NO_THROW(arr.validate(cfg));
  arr.input_buffer.capacity_bytes = 15;
  expect_config_error([&] { arr.validate(cfg); }, "input_buffer.capacity_bytes", "16 activation words of e4m3 = 16 bytes");
  arr.input_buffer.capacity_bytes = 16;
  arr.output_buffer.capacity_bytes = 11;
  expect_config_error([&] { arr.validate(cfg); }, "output_buffer.capacity_bytes", "12 bytes");
  // The output buffer's words are in the merge format when it merges.
  arr.output_buffer.capacity_bytes = 12;
  arr.merge_format = num::formats::fp32();
  expect_config_error([&] { arr.validate(cfg); }, "output_buffer.capacity_bytes", "32 bytes");
}

TEST(ArrayConfig, OrderMustBeTheDataflows) {
  ref::GemmConfig cfg = test::gemm_config("e4m3", "fp32", "");
  const test::Operands ops = test::quantized(3, 5, 4, cfg, 1);
  const ArrayConfig arr = test::array_config(4, 4, Dataflow::weight_stationary);
  cfg.order = ref::parse_order("sequential");
  expect_config_error([&] { (void)run_cycle_gemm(ops.a, ops.b, cfg, arr); }, "order", "chunked:4");
  // An unset merge format is the accumulator format.
  cfg.order = ref::parse_order("chunked:4:fp32");
  EXPECT_NO_THROW((void)run_cycle_gemm(ops.a, ops.b, cfg, arr));
}

TEST(ArrayConfig, InnerDimensionsMustAgree) {
  const ref::GemmConfig cfg = test::gemm_config("e4m3", "fp32", "");
  test::Operands ops = test::quantized(3, 5, 4, cfg, 1);
  ops.b.rows = 6;
  ArrayConfig arr;
  arr.dataflow = Dataflow::output_stationary;
  EXPECT_THROW((void)run_cycle_gemm(ops.a, ops.b, cfg, arr), std::invalid_argument);
}

TEST(Parsers, ArrayDataflowBytesWindow) {
  EXPECT_EQ(parse_array("16x16").rows, 16u);
  EXPECT_EQ(parse_array("8X32").cols, 32u);
  for (const char* bad : {"16", "0x4", "4x", "x4", "16x16x2", "2000x2", "-1x4"}) {
    expect_config_error([&] { (void)parse_array(bad); }, "array", "RxC");
  }
  EXPECT_EQ(parse_dataflow("ws"), Dataflow::weight_stationary);
  EXPECT_EQ(parse_dataflow("output-stationary"), Dataflow::output_stationary);
  expect_config_error([&] { (void)parse_dataflow("rs"); }, "dataflow", "'rs'");
  EXPECT_EQ(parse_ws_partial_sums("feedback"), WsPartialSums::feedback);
  expect_config_error([&] { (void)parse_ws_partial_sums("sum"); }, "ws_partial_sums", "merge or feedback");
  EXPECT_EQ(parse_bytes("4096", "x"), 4096u);
  EXPECT_EQ(parse_bytes("64KiB", "x"), 65536u);
  EXPECT_EQ(parse_bytes("2M", "x"), 2u << 20);
  expect_config_error([&] { (void)parse_bytes("12kb", "input_buffer"); }, "input_buffer", "64KiB");
  const VcdWindow w = parse_vcd_window("rows=1:3,cycles=10:20");
  EXPECT_EQ(w.row_begin, 1u);
  EXPECT_EQ(w.row_end, 3u);
  EXPECT_EQ(w.col_end, VcdWindow::kAll);
  EXPECT_EQ(w.cycle_begin, 10u);
  expect_config_error([&] { (void)parse_vcd_window("rows=3:1"); }, "vcd_window", "rows=3:1");
  expect_config_error([&] { (void)parse_vcd_window("pes=0:1"); }, "vcd_window", "pes=0:1");
}

TEST(Dataflow, Orders) {
  const num::Format acc = num::formats::fp16();
  using ref::dataflow_order;
  EXPECT_TRUE(dataflow_order(Dataflow::output_stationary, 16, WsPartialSums::merge, std::nullopt).sequential());
  EXPECT_TRUE(dataflow_order(Dataflow::weight_stationary, 16, WsPartialSums::feedback, std::nullopt).sequential());
  const ref::AccumulationOrder ws = dataflow_order(Dataflow::weight_stationary, 16, WsPartialSums::merge, num::formats::fp32());
  EXPECT_EQ(ref::to_string(ws), "chunked:16:fp32");
  EXPECT_TRUE(ref::same_order(ref::parse_order("chunked:8"), ref::parse_order("chunked:8:fp16"), acc));
  EXPECT_FALSE(ref::same_order(ref::parse_order("chunked:8"), ref::parse_order("chunked:8:fp32"), acc));
  EXPECT_FALSE(ref::same_order(ref::parse_order("chunked:8"), ref::parse_order("sequential"), acc));
  EXPECT_EQ(ref::dataflow_from_string("weight-stationary"), Dataflow::weight_stationary);
  EXPECT_FALSE(ref::dataflow_from_string("WS").has_value());
}

}  // namespace
}  // namespace accsim::hw
