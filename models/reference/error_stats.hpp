// Error of a result against a reference.
#pragma once

#include <cstddef>
#include <limits>

#include "models/reference/matrix.hpp"

namespace accsim::ref {

struct ErrorStats {
  double rel_frobenius = 0;  // ||got - want||_F / ||want||_F (0 when both are zero)
  double max_abs = 0;        // max |got - want|
  double snr_db = std::numeric_limits<double>::infinity();  // 10 log10(sum want^2 / sum err^2)
};

[[nodiscard]] ErrorStats compare(const Matrix& got, const Matrix& want);

// want = a·b in double (OpenBLAS dgemm), the yardstick for the low-bit
// result. Its relative error, about K·2^-53 at worst and far less in
// practice, is ten orders of magnitude below the errors it measures (1e-3 and
// up); the same for any `threads`.
[[nodiscard]] Matrix reference_gemm(const Matrix& a, const Matrix& b, unsigned threads);
// The same on row-major A [m x k] and B [k x n] held elsewhere.
[[nodiscard]] Matrix reference_gemm(const double* a, const double* b, std::size_t m, std::size_t k, std::size_t n,
                                    unsigned threads);

}  // namespace accsim::ref
