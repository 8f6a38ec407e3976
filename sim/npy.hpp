// NumPy .npy files: the one reader and writer of accsim. `accsim gemm` reads
// 2-D float matrices (read_npy); traces read N-D arrays of float32 inputs and
// logits and int64 labels (read_npy_array). Both go through the same parser.
//
// Reading accepts format versions 1.0, 2.0 and 3.0, little-endian elements
// ('<'; '=' where this machine is little-endian), C order, and a data section
// whose size matches the shape to the byte. Anything else, however malformed,
// throws InputError naming the file and the problem; the parser never reads
// outside the buffer it is given. Writing produces version 1.0 (2.0 if the
// header would not fit) float64.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "models/reference/matrix.hpp"

namespace accsim::sim {

enum class NpyType { float32, float64, int64, int32 };
using NpyDtype = NpyType;  // a matrix's dtype: float32 or float64
[[nodiscard]] std::string_view to_string(NpyType type);

// An N-D array as stored: float32, float64, int64 or int32.
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

// A 2-D float32 or float64 matrix (the operands of `accsim gemm`).
struct NpyMatrix {
  ref::Matrix matrix;  // converted to double (float32 widens exactly)
  NpyType dtype = NpyType::float64;
};

// Parses the bytes of a whole .npy file; `name` is used in error messages.
[[nodiscard]] NpyMatrix parse_npy(std::string_view bytes, std::string_view name);
// Reads and parses a file; errors name the path as given.
[[nodiscard]] NpyMatrix read_npy(const std::filesystem::path& path);

// The bytes of a float64, C-order, 2-D .npy file holding m.
[[nodiscard]] std::string encode_npy(const ref::Matrix& m);
// Writes encode_npy(m) atomically (see output_file.hpp).
void write_npy(const std::filesystem::path& path, const ref::Matrix& m);

}  // namespace accsim::sim
