// Plain GEMMs in the machine's own arithmetic, for the two jobs that do not
// need the emulated formats: the FP32 baseline and the exact yardstick of
// the error statistics. Row-major C[m x n] = A[m x k] * B[k x n].
#pragma once

#include <cstddef>

namespace accsim::net {

// IEEE binary32, sequential and FMA-free: every C element starts at +0 and,
// for k = 0, 1, ..., K-1, becomes fl(c + fl(a * b)), with round-to-nearest-
// even and subnormals (the default floating-point environment). That is
// exactly accsim's --mul fp32 --prod fp32 --acc fp32 with sequential order
// and no scaling (fp32 operands are exact in fp32, each product is rounded
// once into fp32 and each sum once into fp32), at hardware speed;
// tests/network checks the two bit for bit. Lanes of the SIMD loop are
// distinct output columns, so vectorizing never reorders a sum.
void gemm_fp32_sequential(const float* a, const float* b, float* c, std::size_t m, std::size_t k, std::size_t n);

// The yardstick: products of float or double operands that are themselves
// exact in double (every value accsim feeds here has at most 24 significant
// bits, so a product has at most 48) summed in double. Its error, about
// 2^-53 relative per addition, is far below any format accsim studies.
void gemm_f64(const float* a, const float* b, double* c, std::size_t m, std::size_t k, std::size_t n);
void gemm_f64(const double* a, const double* b, double* c, std::size_t m, std::size_t k, std::size_t n);

}  // namespace accsim::net
