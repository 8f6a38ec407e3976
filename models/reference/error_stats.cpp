#include "models/reference/error_stats.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>

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
  parallel_for(a.rows, threads, [&](std::size_t i) {
    std::vector<long double> row(b.cols, 0.0L);
    for (std::size_t k = 0; k < a.cols; ++k) {
      const long double aik = a(i, k);
      const double* brow = &b.data[k * b.cols];
      for (std::size_t j = 0; j < b.cols; ++j) row[j] += aik * brow[j];
    }
    for (std::size_t j = 0; j < b.cols; ++j) c(i, j) = static_cast<double>(row[j]);
  });
  return c;
}

}  // namespace accsim::ref
