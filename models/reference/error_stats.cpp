#include "models/reference/error_stats.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <cblas.h>

#include "models/reference/parallel.hpp"

namespace accsim::ref {

ErrorStats compare(const Matrix& got, const Matrix& want) {
  assert(got.rows == want.rows && got.cols == want.cols);
  long double signal = 0;
  long double noise = 0;
  double max_abs = 0;
  for (std::size_t i = 0; i < got.data.size(); ++i) {
    const long double w = want.data[i];
    const long double e = static_cast<long double>(got.data[i]) - w;
    signal += w * w;
    noise += e * e;
    max_abs = std::max(max_abs, static_cast<double>(std::fabs(e)));
  }
  ErrorStats s;
  s.max_abs = max_abs;
  if (noise == 0) {
    s.rel_frobenius = 0;
    s.snr_db = std::numeric_limits<double>::infinity();
  } else {
    s.rel_frobenius = signal == 0 ? std::numeric_limits<double>::infinity()
                                  : static_cast<double>(std::sqrt(noise / signal));
    s.snr_db = signal == 0 ? -std::numeric_limits<double>::infinity()
                           : static_cast<double>(10 * std::log10(signal / noise));
  }
  return s;
}

Matrix reference_gemm(const Matrix& a, const Matrix& b, unsigned threads) {
  assert(a.cols == b.rows);
  return reference_gemm(a.data.data(), b.data.data(), a.rows, a.cols, b.cols, threads);
}

Matrix reference_gemm(const double* a, const double* b, std::size_t m, std::size_t k, std::size_t n,
                      unsigned threads) {
  Matrix c(m, n);
  if (c.data.empty() || k == 0) return c;  // all zeros (or nothing)
  constexpr auto kMaxDim = static_cast<std::size_t>(std::numeric_limits<blasint>::max());
  if (m > kMaxDim || k > kMaxDim || n > kMaxDim) {
    throw std::length_error("reference_gemm: a dimension exceeds the BLAS index range");
  }
  // OpenBLAS splits a call over its own threads at boundaries that depend on
  // their count, and an element computed at a block edge may take another
  // micro-kernel. Blocks of rows fixed here, each a single-threaded call,
  // make every element's arithmetic independent of `threads`.
  openblas_set_num_threads(1);
  constexpr std::size_t kRowBlock = 64;
  const std::size_t blocks = (m + kRowBlock - 1) / kRowBlock;
  const auto bk = static_cast<blasint>(k), bn = static_cast<blasint>(n);
  parallel_for(blocks, threads, [&](std::size_t block) {
    const std::size_t row = block * kRowBlock;
    const auto rows = static_cast<blasint>(std::min(kRowBlock, m - row));
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, bn, bk, 1.0, a + row * k, bk, b, bn, 0.0,
                &c.data[row * n], bn);
  });
  return c;
}

}  // namespace accsim::ref
