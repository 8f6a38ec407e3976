// N-dimensional .npy arrays for traces: inputs [N, C, H, W] float32, labels
// [N] int64, golden logits [N, classes] float32.
//
// sim/npy.hpp reads only 2-D float matrices (what `accsim gemm` takes); a
// trace needs more dimensions and int64. This reader follows the same rules
// (versions 1.0 to 3.0, little-endian, C order, the data size matching the
// shape to the byte, InputError naming the file for anything else) and
// should fold into sim/npy once that reader grows N-D arrays.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace accsim::net {

enum class NpyType { float32, float64, int64, int32 };
[[nodiscard]] std::string_view to_string(NpyType type);

struct NpyArray {
  std::vector<std::int64_t> shape;
  NpyType type = NpyType::float32;
  std::string data;  // raw little-endian elements, C order

  [[nodiscard]] std::size_t size() const;  // element count
  // The elements, when the type is the one named (else InputError naming `name`).
  [[nodiscard]] std::vector<float> floats(std::string_view name) const;        // float32 only
  [[nodiscard]] std::vector<std::int64_t> int64s(std::string_view name) const;  // int64 (or int32, widened)
};

// Parses a whole .npy file's bytes; `name` is used in messages.
[[nodiscard]] NpyArray parse_npy_array(std::string_view bytes, std::string_view name);
[[nodiscard]] NpyArray read_npy_array(const std::filesystem::path& path);

// "(2000, 1, 28, 28)", as NumPy prints shapes.
[[nodiscard]] std::string npy_shape_text(const std::vector<std::int64_t>& shape);

}  // namespace accsim::net
