#include "sim/network/float_gemm.hpp"

#include <algorithm>

namespace accsim::net {
namespace {

// i-k-j order with four rows of C at a time: each row of B, loaded once,
// updates four rows of C, which stay in cache, and the inner loop over j has
// independent lanes. Every C element still sums its k terms in order. The
// project builds with -ffp-contract=off, so a * b + c is never fused, in any
// clone.
template <class In, class Acc>
inline void gemm_rows(const In* a, const In* b, Acc* c, std::size_t m, std::size_t k, std::size_t n) {
  std::fill(c, c + m * n, Acc{0});
  std::size_t i = 0;
  for (; i + 4 <= m; i += 4) {
    Acc* __restrict c0 = c + i * n;
    Acc* __restrict c1 = c0 + n;
    Acc* __restrict c2 = c1 + n;
    Acc* __restrict c3 = c2 + n;
    for (std::size_t kk = 0; kk < k; ++kk) {
      const Acc a0 = static_cast<Acc>(a[i * k + kk]), a1 = static_cast<Acc>(a[(i + 1) * k + kk]);
      const Acc a2 = static_cast<Acc>(a[(i + 2) * k + kk]), a3 = static_cast<Acc>(a[(i + 3) * k + kk]);
      const In* __restrict brow = b + kk * n;
      for (std::size_t j = 0; j < n; ++j) {
        const Acc bj = static_cast<Acc>(brow[j]);
        c0[j] = c0[j] + a0 * bj;
        c1[j] = c1[j] + a1 * bj;
        c2[j] = c2[j] + a2 * bj;
        c3[j] = c3[j] + a3 * bj;
      }
    }
  }
  for (; i < m; ++i) {
    Acc* __restrict crow = c + i * n;
    for (std::size_t kk = 0; kk < k; ++kk) {
      const Acc aik = static_cast<Acc>(a[i * k + kk]);
      const In* __restrict brow = b + kk * n;
      for (std::size_t j = 0; j < n; ++j) crow[j] = crow[j] + aik * static_cast<Acc>(brow[j]);
    }
  }
}

}  // namespace

__attribute__((target_clones("avx2", "default"))) void gemm_fp32_sequential(const float* a, const float* b, float* c,
                                                                             std::size_t m, std::size_t k,
                                                                             std::size_t n) {
  gemm_rows<float, float>(a, b, c, m, k, n);
}

__attribute__((target_clones("avx2", "default"))) void gemm_f64(const float* a, const float* b, double* c,
                                                                 std::size_t m, std::size_t k, std::size_t n) {
  gemm_rows<float, double>(a, b, c, m, k, n);
}

__attribute__((target_clones("avx2", "default"))) void gemm_f64(const double* a, const double* b, double* c,
                                                                 std::size_t m, std::size_t k, std::size_t n) {
  gemm_rows<double, double>(a, b, c, m, k, n);
}

}  // namespace accsim::net
