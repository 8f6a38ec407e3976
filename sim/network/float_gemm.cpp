#include "sim/network/float_gemm.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include <cblas.h>
#include <immintrin.h>

#include "models/numerics/fast.hpp"

namespace accsim::net {
namespace {

// Register tiles: kRows rows by Vecs vectors of C stay in registers for the
// whole k loop, so each step loads one row segment of B and kRows values of
// A and does kRows * Vecs independent vector multiply-adds; nothing goes
// back to memory until the tile is done. Every C element still starts at +0
// and becomes c + a * b for k = 0, 1, ..., K-1 in order, each operation
// rounded (the project builds with -ffp-contract=off, so a * b + c is never
// fused, in any clone). Lanes are distinct output columns.
// The helpers are always inlined, so that each ISA's instance below compiles
// them for that ISA.
constexpr std::size_t kRows = 4;
#define ACCSIM_GEMM_INLINE inline __attribute__((always_inline))

// Vectors of Bytes bytes: 32 for AVX2 (and the baseline, which splits them),
// 64 for AVX-512, whose 32 registers hold the 4 x 3 tile with room to spare.
template <class Acc, std::size_t Bytes>
struct Vec {
  static constexpr std::size_t kLanes = Bytes / sizeof(Acc);
  typedef Acc V __attribute__((vector_size(Bytes)));
};

template <class In, class Acc, std::size_t Bytes>
ACCSIM_GEMM_INLINE typename Vec<Acc, Bytes>::V load(const In* p) {
  using V = typename Vec<Acc, Bytes>::V;
  constexpr std::size_t L = Vec<Acc, Bytes>::kLanes;
  if constexpr (std::is_same_v<In, Acc>) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  } else {
    typedef In VI __attribute__((vector_size(L * sizeof(In))));
    VI v;
    std::memcpy(&v, p, sizeof v);
    return __builtin_convertvector(v, V);
  }
}

// One fused multiply-add per lane, in functions built for the ISA that has
// it. They take their vectors by reference: a vector passed by value
// between a function built for AVX and one built without has two calling
// conventions (clang rejects the call). madd, built without, runs only
// inlined into gemm_avx512_fma and gemm_avx2_fma, where these inline too.
typedef double F64x8 __attribute__((vector_size(64)));
typedef double F64x4 __attribute__((vector_size(32)));
__attribute__((target("avx512f"))) inline void fmadd(F64x8& acc, const F64x8& a, const F64x8& b) {
  acc = (F64x8)_mm512_fmadd_pd((__m512d)a, (__m512d)b, (__m512d)acc);
}
__attribute__((target("avx,fma"))) inline void fmadd(F64x4& acc, const F64x4& a, const F64x4& b) {
  acc = (F64x4)_mm256_fmadd_pd((__m256d)a, (__m256d)b, (__m256d)acc);
}

// acc += a * b: two roundings, or (Fma, double lanes only) one. The two are
// the same whenever a * b is exact, which is the only case Fma is used for.
template <bool Fma, class V>
ACCSIM_GEMM_INLINE void madd(V& acc, const V& a, const V& b) {
  if constexpr (Fma) {
    fmadd(acc, a, b);
  } else {
    acc = acc + a * b;
  }
}

// C[i0 .. i0+R) x [j0 .. j0 + Vecs * L).
template <std::size_t R, std::size_t Vecs, std::size_t Bytes, bool Fma, class In, class Acc>
ACCSIM_GEMM_INLINE void tile(const In* a, const In* b, Acc* c, std::size_t i0, std::size_t j0, std::size_t k,
                             std::size_t n) {
  using V = typename Vec<Acc, Bytes>::V;
  constexpr std::size_t L = Vec<Acc, Bytes>::kLanes;
  V acc[R][Vecs];
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t v = 0; v < Vecs; ++v) acc[r][v] = V{};
  const In* arow = a + i0 * k;
  for (std::size_t kk = 0; kk < k; ++kk) {
    V bv[Vecs];
    for (std::size_t v = 0; v < Vecs; ++v) bv[v] = load<In, Acc, Bytes>(b + kk * n + j0 + v * L);
    for (std::size_t r = 0; r < R; ++r) {
      const V ar = V{} + static_cast<Acc>(arow[r * k + kk]);
      for (std::size_t v = 0; v < Vecs; ++v) madd<Fma>(acc[r][v], ar, bv[v]);
    }
  }
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t v = 0; v < Vecs; ++v) std::memcpy(c + (i0 + r) * n + j0 + v * L, &acc[r][v], sizeof(V));
}

// Columns [j0, n), fewer than one vector, one element at a time.
template <bool Fma, class In, class Acc>
ACCSIM_GEMM_INLINE void tail_columns(const In* a, const In* b, Acc* c, std::size_t i0, std::size_t i1, std::size_t j0,
                                     std::size_t k, std::size_t n) {
  for (std::size_t i = i0; i < i1; ++i) {
    for (std::size_t j = j0; j < n; ++j) {
      Acc sum{0};
      for (std::size_t kk = 0; kk < k; ++kk) {
        if constexpr (Fma) {
          sum = __builtin_fma(static_cast<Acc>(a[i * k + kk]), static_cast<Acc>(b[kk * n + j]), sum);
        } else {
          sum = sum + static_cast<Acc>(a[i * k + kk]) * static_cast<Acc>(b[kk * n + j]);
        }
      }
      c[i * n + j] = sum;
    }
  }
}

// Wide tiles, then single vectors, then (for 64-byte vectors) half vectors,
// then single elements.
template <std::size_t R, std::size_t Bytes, bool Fma, class In, class Acc>
ACCSIM_GEMM_INLINE void row_block(const In* a, const In* b, Acc* c, std::size_t i0, std::size_t k, std::size_t n) {
  constexpr std::size_t L = Vec<Acc, Bytes>::kLanes;
  std::size_t j = 0;
  for (; j + 3 * L <= n; j += 3 * L) tile<R, 3, Bytes, Fma>(a, b, c, i0, j, k, n);
  for (; j + L <= n; j += L) tile<R, 1, Bytes, Fma>(a, b, c, i0, j, k, n);
  if constexpr (Bytes > 32) {
    for (; j + L / 2 <= n; j += L / 2) tile<R, 1, Bytes / 2, Fma>(a, b, c, i0, j, k, n);
  }
  tail_columns<Fma>(a, b, c, i0, i0 + R, j, k, n);
}

template <std::size_t Bytes, bool Fma, class In, class Acc>
ACCSIM_GEMM_INLINE void gemm_rows(const In* a, const In* b, Acc* c, std::size_t m, std::size_t k, std::size_t n) {
  std::size_t i = 0;
  for (; i + kRows <= m; i += kRows) row_block<kRows, Bytes, Fma>(a, b, c, i, k, n);
  for (; i < m; ++i) row_block<1, Bytes, Fma>(a, b, c, i, k, n);
}

// One instance per ISA, chosen at run time: the arithmetic (and so every
// bit) is the same in all of them; only the vector width differs, and
// whether a multiply-add of an exact product is one instruction or two.
template <class In, class Acc>
__attribute__((target("avx512f"))) void gemm_avx512(const In* a, const In* b, Acc* c, std::size_t m, std::size_t k,
                                                    std::size_t n) {
  gemm_rows<64, false>(a, b, c, m, k, n);
}
template <class In, class Acc>
__attribute__((target("avx2"))) void gemm_avx2(const In* a, const In* b, Acc* c, std::size_t m, std::size_t k,
                                               std::size_t n) {
  gemm_rows<32, false>(a, b, c, m, k, n);
}
template <class In, class Acc>
void gemm_baseline(const In* a, const In* b, Acc* c, std::size_t m, std::size_t k, std::size_t n) {
  gemm_rows<32, false>(a, b, c, m, k, n);
}
__attribute__((target("avx512f,fma"))) void gemm_avx512_fma(const double* a, const double* b, double* c,
                                                            std::size_t m, std::size_t k, std::size_t n) {
  gemm_rows<64, true>(a, b, c, m, k, n);
}
__attribute__((target("avx2,fma"))) void gemm_avx2_fma(const double* a, const double* b, double* c, std::size_t m,
                                                       std::size_t k, std::size_t n) {
  gemm_rows<32, true>(a, b, c, m, k, n);
}

template <class In, class Acc>
using GemmFn = void (*)(const In*, const In*, Acc*, std::size_t, std::size_t, std::size_t);

template <class In, class Acc>
void gemm_dispatch(const In* a, const In* b, Acc* c, std::size_t m, std::size_t k, std::size_t n) {
  static const GemmFn<In, Acc> fn = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return static_cast<GemmFn<In, Acc>>(gemm_avx512<In, Acc>);
    if (__builtin_cpu_supports("avx2")) return static_cast<GemmFn<In, Acc>>(gemm_avx2<In, Acc>);
    return static_cast<GemmFn<In, Acc>>(gemm_baseline<In, Acc>);
  }();
  fn(a, b, c, m, k, n);
}

// Products exact in double: fused multiply-adds where the CPU has them.
void gemm_exact_products(const double* a, const double* b, double* c, std::size_t m, std::size_t k, std::size_t n) {
  static const GemmFn<double, double> fn = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) {
      return static_cast<GemmFn<double, double>>(gemm_avx512_fma);
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      return static_cast<GemmFn<double, double>>(gemm_avx2_fma);
    }
    return static_cast<GemmFn<double, double>>(gemm_baseline<double, double>);
  }();
  fn(a, b, c, m, k, n);
}

}  // namespace

void gemm_fp32_sequential(const float* a, const float* b, float* c, std::size_t m, std::size_t k, std::size_t n) {
  gemm_dispatch(a, b, c, m, k, n);
}

void gemm_f64(const float* a, const float* b, double* c, std::size_t m, std::size_t k, std::size_t n) {
  // Both operands widened once (m*k + k*n conversions for m*k*n products);
  // a product of two floats (24 significant bits each, exponents far inside
  // double's) is exact in double.
  thread_local std::vector<double> wide_a, wide_b;
  wide_a.assign(a, a + m * k);
  wide_b.assign(b, b + k * n);
  gemm_exact_products(wide_a.data(), wide_b.data(), c, m, k, n);
}

void gemm_f64(const double* a, const double* b, double* c, std::size_t m, std::size_t k, std::size_t n,
              bool exact_products) {
  if (exact_products) {
    gemm_exact_products(a, b, c, m, k, n);
  } else {
    gemm_dispatch(a, b, c, m, k, n);
  }
}

void gemm_f64_exact_sums(const double* a, const double* b, double* c, std::size_t m, std::size_t k, std::size_t n) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    std::fill(c, c + m * n, 0.0);
    return;
  }
  constexpr auto kMaxDim = static_cast<std::size_t>(std::numeric_limits<blasint>::max());
  if (m > kMaxDim || k > kMaxDim || n > kMaxDim) {
    throw std::length_error("gemm_f64_exact_sums: a dimension exceeds the BLAS index range");
  }
  // The callers run one GEMM per thread of their own.
  static std::once_flag single_threaded;
  std::call_once(single_threaded, [] { openblas_set_num_threads(1); });
  const auto bm = static_cast<blasint>(m), bk = static_cast<blasint>(k), bn = static_cast<blasint>(n);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, bm, bn, bk, 1.0, a, bk, b, bn, 0.0, c, bn);
}

bool products_exact_in_double(const num::Format& format) {
  const num::fast::Span v = num::fast::span_of(format);
  const num::fast::Span p = num::fast::product_span(v, v);
  if (p.lsb < -1074 || p.msb > 1023) return false;
  if (const auto* f = std::get_if<num::FloatFormat>(&format)) return 2 * (f->man_bits + 1) <= 53;
  return p.msb - p.lsb + 1 <= 53;
}

bool sums_exact_in_double(const num::Format& format, std::size_t k) {
  const num::fast::Span v = num::fast::span_of(format);
  num::fast::Span sum = num::fast::product_span(v, v);
  sum.msb += static_cast<int>(std::bit_width(k > 1 ? k - 1 : 0));  // ceil(log2 k)
  return num::fast::fits_double(sum);
}

}  // namespace accsim::net
