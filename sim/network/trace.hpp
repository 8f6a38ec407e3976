// A trace folder (traces/README.md): model.onnx, inputs.npy, labels.npy,
// golden.npy and trace.json, loaded and checked against each other.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "sim/network/graph.hpp"

namespace accsim::net {

struct Trace {
  std::filesystem::path dir;
  std::string name;  // trace.json's name, or the folder's
  std::filesystem::path model_path, inputs_path, labels_path, golden_path, json_path;
  Network network;
  std::size_t available = 0;    // samples in the files
  std::size_t samples = 0;      // samples loaded (the first ones)
  std::size_t sample_size = 0;  // elements of one input
  std::size_t classes = 0;      // elements of one output
  std::vector<float> inputs;    // samples x sample_size
  std::vector<std::int64_t> labels;
  std::vector<float> golden;    // samples x classes: the framework's own FP32 logits

  // From trace.json, about all `available` samples.
  std::optional<double> framework_top1;
  std::optional<std::int64_t> framework_correct;
  std::string framework;  // "torch 1.13.0a0", or empty
  std::string dataset;    // "fashion-mnist test", or empty
};

// Loads the first `max_samples` samples (0: all). Every inconsistency (a file
// missing or malformed, shapes or dtypes that do not match the model or each
// other, labels out of range, NaN or inf in inputs or golden logits, more
// samples asked for than the trace holds) throws InputError naming the file.
[[nodiscard]] Trace load_trace(const std::filesystem::path& dir, std::size_t max_samples = 0);

// The trace `accsim run` uses without --trace: traces/fmnist_resnet of the
// source tree accsim was built from (the compile definition
// ACCSIM_SOURCE_DIR), or, if that is gone, ./traces/fmnist_resnet.
[[nodiscard]] std::filesystem::path default_trace_dir();

// argmax with the lowest index winning ties, as trace.json's top-1 is
// defined; NaN never wins (a row of NaN gives 0).
[[nodiscard]] std::size_t argmax(const float* logits, std::size_t n);

}  // namespace accsim::net
