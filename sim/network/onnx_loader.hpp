// Reads an ONNX model into a Network: every tensor shape resolved, every
// attribute checked, constants decoded and checked for NaN and inf.
//
// The loader trusts nothing in the file: a truncated or corrupt protobuf,
// tensors whose data does not match their dims, unknown data types, missing
// or duplicated names, cycles, dynamic dimensions it cannot resolve, shapes
// an operator cannot take. Each becomes an InputError (sim/errors.hpp) whose
// one-line message names the file, the node when there is one, and the
// problem: "model.onnx: node '/conv1/Conv' (Conv): ...".
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "sim/network/graph.hpp"

namespace accsim::net {

// The concrete shape of the graph input, from the data that will be fed to
// it (e.g. inputs.npy with its sample dimension replaced by 1). It resolves
// symbolic dimensions; a fixed dimension that differs is an error naming
// `source`.
struct InputBinding {
  Shape shape;
  std::string source;
};

// Limits that keep a hostile file from exhausting memory: any one tensor, and
// any one im2col matrix, holds at most this many elements.
inline constexpr std::int64_t kMaxTensorElements = std::int64_t{1} << 26;
inline constexpr int kMaxRank = 8;

// Without a binding, a symbolic first dimension of the input is taken as 1
// (one sample per run) and any other symbolic dimension is an error.
[[nodiscard]] Network parse_onnx(std::string_view bytes, std::string_view name,
                                 const std::optional<InputBinding>& input = std::nullopt);
[[nodiscard]] Network load_onnx(const std::filesystem::path& path,
                                const std::optional<InputBinding>& input = std::nullopt);

// The whole file, or InputError naming it (missing, a directory, unreadable).
[[nodiscard]] std::string read_file_bytes(const std::filesystem::path& path);

}  // namespace accsim::net
