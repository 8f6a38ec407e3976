// A dense row-major matrix of doubles: the GEMM operands and results.
#pragma once

#include <cstddef>
#include <vector>

namespace accsim::ref {

struct Matrix {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<double> data;  // rows * cols, row-major

  Matrix() = default;
  Matrix(std::size_t r, std::size_t c, double fill = 0.0) : rows(r), cols(c), data(r * c, fill) {}
  [[nodiscard]] double& operator()(std::size_t r, std::size_t c) { return data[r * cols + c]; }
  [[nodiscard]] double operator()(std::size_t r, std::size_t c) const { return data[r * cols + c]; }
};

}  // namespace accsim::ref
