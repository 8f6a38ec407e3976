#include "sim/network/float_gemm.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>

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

// C[i0 .. i0+R) x [j0 .. j0 + Vecs * L).
template <std::size_t R, std::size_t Vecs, std::size_t Bytes, class In, class Acc>
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
      for (std::size_t v = 0; v < Vecs; ++v) acc[r][v] = acc[r][v] + ar * bv[v];
    }
  }
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t v = 0; v < Vecs; ++v) std::memcpy(c + (i0 + r) * n + j0 + v * L, &acc[r][v], sizeof(V));
}

// Columns [j0, n), fewer than one vector, one element at a time.
template <class In, class Acc>
ACCSIM_GEMM_INLINE void tail_columns(const In* a, const In* b, Acc* c, std::size_t i0, std::size_t i1, std::size_t j0,
                                     std::size_t k, std::size_t n) {
  for (std::size_t i = i0; i < i1; ++i) {
    for (std::size_t j = j0; j < n; ++j) {
      Acc sum{0};
      for (std::size_t kk = 0; kk < k; ++kk) sum = sum + static_cast<Acc>(a[i * k + kk]) * static_cast<Acc>(b[kk * n + j]);
      c[i * n + j] = sum;
    }
  }
}

// Wide tiles, then single vectors, then (for 64-byte vectors) half vectors,
// then single elements.
template <std::size_t R, std::size_t Bytes, class In, class Acc>
ACCSIM_GEMM_INLINE void row_block(const In* a, const In* b, Acc* c, std::size_t i0, std::size_t k, std::size_t n) {
  constexpr std::size_t L = Vec<Acc, Bytes>::kLanes;
  std::size_t j = 0;
  for (; j + 3 * L <= n; j += 3 * L) tile<R, 3, Bytes>(a, b, c, i0, j, k, n);
  for (; j + L <= n; j += L) tile<R, 1, Bytes>(a, b, c, i0, j, k, n);
  if constexpr (Bytes > 32) {
    for (; j + L / 2 <= n; j += L / 2) tile<R, 1, Bytes / 2>(a, b, c, i0, j, k, n);
  }
  tail_columns(a, b, c, i0, i0 + R, j, k, n);
}

template <std::size_t Bytes, class In, class Acc>
ACCSIM_GEMM_INLINE void gemm_rows(const In* a, const In* b, Acc* c, std::size_t m, std::size_t k, std::size_t n) {
  std::size_t i = 0;
  for (; i + kRows <= m; i += kRows) row_block<kRows, Bytes>(a, b, c, i, k, n);
  for (; i < m; ++i) row_block<1, Bytes>(a, b, c, i, k, n);
}

// One instance per ISA, chosen at run time: the arithmetic (and so every
// bit) is the same in all of them; only the vector width differs.
template <class In, class Acc>
__attribute__((target("avx512f"))) void gemm_avx512(const In* a, const In* b, Acc* c, std::size_t m, std::size_t k,
                                                    std::size_t n) {
  gemm_rows<64>(a, b, c, m, k, n);
}
template <class In, class Acc>
__attribute__((target("avx2"))) void gemm_avx2(const In* a, const In* b, Acc* c, std::size_t m, std::size_t k,
                                               std::size_t n) {
  gemm_rows<32>(a, b, c, m, k, n);
}
template <class In, class Acc>
void gemm_baseline(const In* a, const In* b, Acc* c, std::size_t m, std::size_t k, std::size_t n) {
  gemm_rows<32>(a, b, c, m, k, n);
}

template <class In, class Acc>
void gemm_dispatch(const In* a, const In* b, Acc* c, std::size_t m, std::size_t k, std::size_t n) {
  using Fn = void (*)(const In*, const In*, Acc*, std::size_t, std::size_t, std::size_t);
  static const Fn fn = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return static_cast<Fn>(gemm_avx512<In, Acc>);
    if (__builtin_cpu_supports("avx2")) return static_cast<Fn>(gemm_avx2<In, Acc>);
    return static_cast<Fn>(gemm_baseline<In, Acc>);
  }();
  fn(a, b, c, m, k, n);
}

}  // namespace

void gemm_fp32_sequential(const float* a, const float* b, float* c, std::size_t m, std::size_t k, std::size_t n) {
  gemm_dispatch(a, b, c, m, k, n);
}

void gemm_f64(const float* a, const float* b, double* c, std::size_t m, std::size_t k, std::size_t n) {
  gemm_dispatch(a, b, c, m, k, n);
}

void gemm_f64(const double* a, const double* b, double* c, std::size_t m, std::size_t k, std::size_t n) {
  gemm_dispatch(a, b, c, m, k, n);
}

}  // namespace accsim::net
