// Regression files found by the fuzz targets in tests/fuzz. corpus/*.onnx
// and corpus/*.npy are malformed and must each give a one-line InputError.
// corpus/crashes/ holds inputs that once crashed (or tripped a sanitizer):
// they may be valid, but must load or fail cleanly; the sanitizer presets
// (asan, fuzz) are where these tests bite.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "sim/errors.hpp"
#include "sim/network/executor.hpp"
#include "sim/npy.hpp"
#include "sim/network/onnx_loader.hpp"

namespace accsim::net {
namespace {

using sim::NpyArray;
using sim::NpyType;
using sim::read_npy_array;

TEST(Corpus, MalformedFilesGiveOneLineErrors) {
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(ACCSIM_CORPUS_DIR)) {
    const std::filesystem::path& p = entry.path();
    if (p.extension() != ".onnx" && p.extension() != ".npy") continue;
    ++files;
    SCOPED_TRACE(p.filename().string());
    try {
      if (p.extension() == ".npy") {
        (void)read_npy_array(p);
      } else {
        const Network net = load_onnx(p);
        const Executor ex(net, std::vector<LayerArithmetic>(net.gemm_layers.size()));
        auto ws = ex.make_workspace();
        (void)ex.run(std::vector<float>(static_cast<std::size_t>(element_count(net.input_shape())), 0.0f), *ws);
        ADD_FAILURE() << "loaded without error";
      }
      if (p.extension() == ".npy") ADD_FAILURE() << "read without error";
    } catch (const sim::InputError& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.find('\n'), std::string::npos);
      EXPECT_TRUE(what.starts_with(p.string() + ": ")) << what;
    }
  }
  EXPECT_GT(files, 0u);
}

TEST(Corpus, FormerCrashesLoadOrFailCleanly) {
  for (const auto& entry : std::filesystem::directory_iterator(std::string(ACCSIM_CORPUS_DIR) + "/crashes")) {
    const std::filesystem::path& p = entry.path();
    SCOPED_TRACE(p.filename().string());
    try {
      if (p.extension() == ".npy") {
        const NpyArray a = read_npy_array(p);
        if (a.type == NpyType::float32) (void)a.floats(p.string());
        if (a.type == NpyType::int64 || a.type == NpyType::int32) (void)a.int64s(p.string());
      } else if (p.extension() == ".onnx") {
        const Network net = load_onnx(p);
        const Executor ex(net, std::vector<LayerArithmetic>(net.gemm_layers.size()));
        auto ws = ex.make_workspace();
        (void)ex.run(std::vector<float>(static_cast<std::size_t>(element_count(net.input_shape())), 0.0f), *ws);
      }
    } catch (const sim::InputError& e) {
      EXPECT_TRUE(std::string(e.what()).starts_with(p.string() + ": ")) << e.what();
    }
  }
}

}  // namespace
}  // namespace accsim::net

namespace accsim::net {
namespace {

// The fuzz seeds (tests/fuzz/make_seeds.py, written with Python's onnx
// package) are valid models using every operator: each loads and runs.
TEST(Seeds, ValidModelsLoadAndRun) {
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(ACCSIM_SEEDS_DIR)) {
    ++files;
    SCOPED_TRACE(entry.path().filename().string());
    const Network net = load_onnx(entry.path());
    const Executor ex(net, std::vector<LayerArithmetic>(net.gemm_layers.size()));
    auto ws = ex.make_workspace();
    std::vector<float> x(static_cast<std::size_t>(element_count(net.input_shape())));
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 5) - 2.0f;
    for (float y : ex.run(x, *ws)) EXPECT_TRUE(std::isfinite(y));
  }
  EXPECT_GE(files, 5u);
}

}  // namespace
}  // namespace accsim::net
