#include "sim/network/trace.hpp"

#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sim/errors.hpp"
#include "sim/network/onnx_loader.hpp"
#include "sim/npy.hpp"

namespace accsim::net {

using sim::InputError;
using sim::NpyArray;
using sim::NpyType;
using sim::npy_shape_text;
using sim::read_npy_array;

namespace {

// A file name from trace.json's "files", relative to the trace folder.
std::filesystem::path file_entry(const nlohmann::json& files, const char* key, const char* fallback,
                                 const std::filesystem::path& dir, const std::string& json_name) {
  if (!files.is_object() || !files.contains(key)) return dir / fallback;
  const nlohmann::json& v = files[key];
  if (!v.is_string() || v.get<std::string>().empty()) {
    throw InputError(json_name, fmt::format("files.{} must be a file name", key));
  }
  return dir / v.get<std::string>();
}

void check_finite(const std::vector<float>& data, std::size_t row, const std::string& name, const char* what) {
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (std::isfinite(data[i])) continue;
    throw InputError(name, fmt::format("sample {} element {} is {}; {} must be finite", i / row, i % row,
                                       std::isnan(data[i]) ? "NaN" : (data[i] > 0 ? "+inf" : "-inf"), what));
  }
}

}  // namespace

std::size_t argmax(const float* logits, std::size_t n) {
  std::size_t best = 0;
  bool found = false;
  for (std::size_t i = 0; i < n; ++i) {
    if (std::isnan(logits[i])) continue;
    if (!found || logits[i] > logits[best]) best = i;
    found = true;
  }
  return best;
}

std::filesystem::path default_trace_dir() {
  const std::filesystem::path relative = std::filesystem::path("traces") / "fmnist_resnet";
#ifdef ACCSIM_SOURCE_DIR
  std::error_code ec;
  const std::filesystem::path built = std::filesystem::path(ACCSIM_SOURCE_DIR) / relative;
  if (std::filesystem::is_directory(built, ec)) return built;
#endif
  return relative;
}

Trace load_trace(const std::filesystem::path& dir, std::size_t max_samples) {
  Trace t;
  t.dir = dir;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    throw InputError(dir.string(), std::filesystem::exists(dir, ec) ? "is not a folder (a trace is a folder)"
                                                                    : "no such trace folder");
  }
  t.json_path = dir / "trace.json";
  const std::string json_name = t.json_path.string();
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(read_file_bytes(t.json_path));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(json_name, fmt::format("not valid JSON: {}", sim::one_line(e.what())));
  }
  if (!meta.is_object()) throw InputError(json_name, "expected a JSON object");
  if (meta.contains("format") && meta["format"] != "accsim-trace") {
    throw InputError(json_name, "format is not \"accsim-trace\"");
  }
  if (meta.contains("format_version") && meta["format_version"] != 1) {
    throw InputError(json_name, fmt::format("format_version {} is not supported (accsim reads 1)",
                                            sim::one_line(meta["format_version"].dump())));
  }
  const nlohmann::json files = meta.value("files", nlohmann::json::object());
  t.model_path = file_entry(files, "model", "model.onnx", dir, json_name);
  t.inputs_path = file_entry(files, "inputs", "inputs.npy", dir, json_name);
  t.labels_path = file_entry(files, "labels", "labels.npy", dir, json_name);
  t.golden_path = file_entry(files, "golden", "golden.npy", dir, json_name);
  t.name = meta.contains("name") && meta["name"].is_string() ? sim::one_line(meta["name"].get<std::string>())
                                                              : dir.filename().string();
  if (const auto fw = meta.find("framework"); fw != meta.end() && fw->is_object()) {
    const std::string name = fw->value("name", std::string());
    const std::string version = fw->value("version", std::string());
    t.framework = sim::one_line(name + (version.empty() ? "" : " " + version));
  }
  if (const auto ds = meta.find("dataset"); ds != meta.end() && ds->is_object()) {
    t.dataset = sim::one_line(ds->value("name", std::string()) + " " + ds->value("split", std::string()));
  }
  if (const auto acc = meta.find("accuracy"); acc != meta.end() && acc->is_object()) {
    if (const auto v = acc->find("framework_top1"); v != acc->end() && v->is_number()) t.framework_top1 = v->get<double>();
    if (const auto v = acc->find("framework_correct"); v != acc->end() && v->is_number_integer()) {
      t.framework_correct = v->get<std::int64_t>();
    }
  }

  // Inputs first: their shape resolves the model's input.
  const std::string inputs_name = t.inputs_path.string();
  const NpyArray inputs = read_npy_array(t.inputs_path);
  if (inputs.type != NpyType::float32) {
    throw InputError(inputs_name, fmt::format("dtype is {}; the model's input is float32", to_string(inputs.type)));
  }
  if (inputs.shape.size() < 2 || inputs.shape[0] < 1) {
    throw InputError(inputs_name, fmt::format("shape {} is not [samples, ...] with at least one sample",
                                              npy_shape_text(inputs.shape)));
  }
  t.available = static_cast<std::size_t>(inputs.shape[0]);
  if (const auto n = meta.find("num_samples"); n != meta.end() && (!n->is_number_integer() || *n != t.available)) {
    throw InputError(json_name, fmt::format("num_samples is {} but {} holds {} samples", sim::one_line(n->dump()),
                                            inputs_name, t.available));
  }
  if (max_samples > t.available) {
    throw InputError("--samples", fmt::format("{} asked for, but {} holds {}", max_samples, inputs_name, t.available));
  }
  t.samples = max_samples == 0 ? t.available : max_samples;

  InputBinding binding;
  binding.shape.assign(inputs.shape.begin(), inputs.shape.end());
  binding.shape[0] = 1;  // one sample per run
  binding.source = inputs_name;
  t.network = load_onnx(t.model_path, binding);
  t.sample_size = static_cast<std::size_t>(element_count(t.network.input_shape()));
  t.classes = static_cast<std::size_t>(element_count(t.network.output_shape()));

  t.inputs = inputs.floats(inputs_name);
  t.inputs.resize(t.samples * t.sample_size);
  check_finite(t.inputs, t.sample_size, inputs_name, "inputs");

  const std::string labels_name = t.labels_path.string();
  const NpyArray labels = read_npy_array(t.labels_path);
  if (labels.type != NpyType::int64 && labels.type != NpyType::int32) {
    throw InputError(labels_name, fmt::format("dtype is {}; labels are int64", to_string(labels.type)));
  }
  if (labels.shape != std::vector<std::int64_t>{static_cast<std::int64_t>(t.available)}) {
    throw InputError(labels_name, fmt::format("shape {} does not match the {} samples of {} (expected ({},))",
                                              npy_shape_text(labels.shape), t.available, inputs_name, t.available));
  }
  t.labels = labels.int64s(labels_name);
  t.labels.resize(t.samples);
  for (std::size_t i = 0; i < t.samples; ++i) {
    if (t.labels[i] < 0 || static_cast<std::size_t>(t.labels[i]) >= t.classes) {
      throw InputError(labels_name, fmt::format("label {} of sample {} is outside 0..{} (the model has {} outputs)",
                                                t.labels[i], i, t.classes - 1, t.classes));
    }
  }

  const std::string golden_name = t.golden_path.string();
  const NpyArray golden = read_npy_array(t.golden_path);
  if (golden.type != NpyType::float32) {
    throw InputError(golden_name, fmt::format("dtype is {}; golden logits are float32", to_string(golden.type)));
  }
  const std::vector<std::int64_t> want{static_cast<std::int64_t>(t.available), static_cast<std::int64_t>(t.classes)};
  if (golden.shape != want) {
    throw InputError(golden_name, fmt::format("shape {} does not match {} samples x {} model outputs",
                                              npy_shape_text(golden.shape), t.available, t.classes));
  }
  t.golden = golden.floats(golden_name);
  t.golden.resize(t.samples * t.classes);
  check_finite(t.golden, t.classes, golden_name, "golden logits");
  return t;
}

}  // namespace accsim::net
