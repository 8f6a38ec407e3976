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
  Matrix c(a.rows, b.cols);
  if (c.data.empty() || a.cols == 0) return c;  // all zeros (or nothing)
  constexpr auto kMaxDim = static_cast<std::size_t>(std::numeric_limits<blasint>::max());
  if (a.rows > kMaxDim || a.cols > kMaxDim || b.cols > kMaxDim) {
    throw std::length_error("reference_gemm: a dimension exceeds the BLAS index range");
  }
  // OpenBLAS splits a call over its own threads at boundaries that depend on
  // their count, and an element computed at a block edge may take another
  // micro-kernel. Blocks of rows fixed here, each a single-threaded call,
  // make every element's arithmetic independent of `threads`.
  openblas_set_num_threads(1);
  constexpr std::size_t kRowBlock = 64;
  const std::size_t blocks = (a.rows + kRowBlock - 1) / kRowBlock;
  const auto k = static_cast<blasint>(a.cols), n = static_cast<blasint>(b.cols);
  parallel_for(blocks, threads, [&](std::size_t block) {
    const std::size_t row = block * kRowBlock;
    const auto rows = static_cast<blasint>(std::min(kRowBlock, a.rows - row));
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, n, k, 1.0, &a.data[row * a.cols], k, b.data.data(),
                n, 0.0, &c.data[row * b.cols], n);
  });
  return c;
}

}  // namespace accsim::ref
