// A tiny valid trace folder, written by hand for the trace and CLI tests.
#pragma once

#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include "onnx_builder.hpp"
#include "tests/cli/test_util.hpp"

namespace accsim::net::testing {

inline std::string npy(const std::string& descr, const std::string& shape, const std::string& data) {
  return sim::testing::npy_raw(sim::testing::npy_header_dict(descr, shape), data);
}
inline std::string f32_data(const std::vector<float>& v) {
  std::string s;
  for (float x : v) s += sim::testing::le_bytes(std::bit_cast<std::uint32_t>(x), 4);
  return s;
}
inline std::string i64_data(const std::vector<std::int64_t>& v) {
  std::string s;
  for (std::int64_t x : v) s += sim::testing::le_bytes(static_cast<std::uint64_t>(x), 8);
  return s;
}

// [1,2,2,2] inputs through Flatten and a Gemm to 3 classes; 4 samples, sample
// i is one-hot at position i % 3 so the logits pick class i % 3; labels
// 0, 1, 2, 1 make the framework's top-1 3/4.
inline void write_trace(const sim::testing::TempDir& dir) {
  using sim::testing::write_bytes;
  ModelBuilder m;
  m.input("input", {1, 2, 2, 2}).output("logits", {1, 3});
  m.node("Flatten", {"input"}, {"f"}, "flat");
  m.init(float_tensor("w", {3, 8}, {1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0}));
  attr_int(m.node("Gemm", {"f", "w"}, {"logits"}, "fc"), "transB", 1);
  write_bytes(dir / "model.onnx", m.bytes());
  std::vector<float> x(32, 0.0f);
  for (int i = 0; i < 4; ++i) x[static_cast<std::size_t>(i * 8 + (i % 3))] = 1.0f;
  write_bytes(dir / "inputs.npy", npy("<f4", "(4, 2, 2, 2)", f32_data(x)));
  write_bytes(dir / "labels.npy", npy("<i8", "(4,)", i64_data({0, 1, 2, 1})));
  std::vector<float> g(12, 0.0f);
  for (int i = 0; i < 4; ++i) g[static_cast<std::size_t>(i * 3 + (i % 3))] = 1.0f;
  write_bytes(dir / "golden.npy", npy("<f4", "(4, 3)", f32_data(g)));
  write_bytes(dir / "trace.json",
              R"({"format": "accsim-trace", "format_version": 1, "name": "tiny", "num_samples": 4,
                  "accuracy": {"framework_top1": 0.75, "framework_correct": 3}})");
}

}  // namespace accsim::net::testing
