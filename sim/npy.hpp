// NumPy .npy files: the operands and results of `accsim gemm`.
//
// Reading accepts format versions 1.0, 2.0 and 3.0, little-endian float32 or
// float64 ('<f4', '<f8'; '=' where this machine is little-endian), C order,
// exactly two dimensions, and a data section whose size matches the shape to
// the byte. Anything else, however malformed, throws InputError naming the
// file and the problem; the parser never reads outside the buffer it is given.
// Writing produces version 1.0 (2.0 if the header would not fit) float64.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "models/reference/matrix.hpp"

namespace accsim::sim {

enum class NpyDtype { float32, float64 };

struct NpyMatrix {
  ref::Matrix matrix;  // converted to double (float32 widens exactly)
  NpyDtype dtype = NpyDtype::float64;
};

// Parses the bytes of a whole .npy file; `name` is used in error messages.
[[nodiscard]] NpyMatrix parse_npy(std::string_view bytes, std::string_view name);
// Reads and parses a file; errors name the path as given.
[[nodiscard]] NpyMatrix read_npy(const std::filesystem::path& path);

// The bytes of a float64, C-order, 2-D .npy file holding m.
[[nodiscard]] std::string encode_npy(const ref::Matrix& m);
// Writes encode_npy(m) atomically (see output_file.hpp).
void write_npy(const std::filesystem::path& path, const ref::Matrix& m);

[[nodiscard]] std::string_view to_string(NpyDtype dtype);

}  // namespace accsim::sim
