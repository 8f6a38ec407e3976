#include "sim/network/float_gemm.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include <cblas.h>
#include <immintrin.h>

#include "models/numerics/fast.hpp"
#include "models/reference/lanes_f32.hpp"

namespace accsim::net {
namespace {

using ref::LaneIsa;

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

// One fused multiply-add per lane, a double in every lane and floats
// widened to doubles, in functions built for the ISA that has them. They
// take their vectors by reference: a vector passed by value between a
// function built for AVX and one built without has two calling conventions
// (clang rejects the call). madd, splat and load, built without, call them
// only inlined into gemm_avx512_fma and gemm_avx2_fma, where these inline
// too. (The maskz forms, all lanes on: the plain ones start from an
// undefined register, which GCC 12 reports as maybe uninitialized.)
typedef double F64x8 __attribute__((vector_size(64)));
typedef double F64x4 __attribute__((vector_size(32)));
__attribute__((target("avx512f"))) inline void fmadd(F64x8& acc, const F64x8& a, const F64x8& b) {
  acc = (F64x8)_mm512_fmadd_pd((__m512d)a, (__m512d)b, (__m512d)acc);
}
__attribute__((target("avx,fma"))) inline void fmadd(F64x4& acc, const F64x4& a, const F64x4& b) {
  acc = (F64x4)_mm256_fmadd_pd((__m256d)a, (__m256d)b, (__m256d)acc);
}
__attribute__((target("avx512f"))) inline void broadcast(F64x8& v, const double* p) {
  v = (F64x8)_mm512_maskz_broadcastsd_pd(0xff, _mm_load_sd(p));
}
__attribute__((target("avx2"))) inline void broadcast(F64x4& v, const double* p) {
  v = (F64x4)_mm256_broadcastsd_pd(_mm_load_sd(p));
}
__attribute__((target("avx512f"))) inline void widen(F64x8& v, const float* p) {
  v = (F64x8)_mm512_maskz_cvtps_pd(0xff, _mm256_loadu_ps(p));
}
__attribute__((target("avx"))) inline void widen(F64x4& v, const float* p) {
  v = (F64x4)_mm256_cvtps_pd(_mm_loadu_ps(p));
}

// *p in every lane. The Fma instances broadcast it with one instruction:
// GCC 12 builds the generic vector there lane by lane (eight masked
// broadcasts), and V{} + *p costs an addition before the broadcast.
template <class V, bool Fma, class In>
ACCSIM_GEMM_INLINE V splat(const In* p) {
  if constexpr (Fma) {
    V v;
    broadcast(v, p);
    return v;
  } else {
    using Acc = std::remove_cvref_t<decltype(V{}[0])>;
    return V{} + static_cast<Acc>(*p);
  }
}

// A vector of B's row. The Fma instances widen floats with one conversion
// (GCC 12 splits __builtin_convertvector into two halves and an insert).
template <class In, class Acc, std::size_t Bytes, bool Fma>
ACCSIM_GEMM_INLINE typename Vec<Acc, Bytes>::V load(const In* p) {
  using V = typename Vec<Acc, Bytes>::V;
  constexpr std::size_t L = Vec<Acc, Bytes>::kLanes;
  V v;
  if constexpr (std::is_same_v<In, Acc>) {
    std::memcpy(&v, p, sizeof v);
  } else if constexpr (Fma) {
    widen(v, p);
  } else {
    typedef In VI __attribute__((vector_size(L * sizeof(In))));
    VI narrow;
    std::memcpy(&narrow, p, sizeof narrow);
    v = __builtin_convertvector(narrow, V);
  }
  return v;
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
template <std::size_t R, std::size_t Vecs, std::size_t Bytes, bool Fma, class InA, class InB, class Acc>
ACCSIM_GEMM_INLINE void tile(const InA* a, const InB* b, Acc* c, std::size_t i0, std::size_t j0, std::size_t k,
                             std::size_t n) {
  using V = typename Vec<Acc, Bytes>::V;
  constexpr std::size_t L = Vec<Acc, Bytes>::kLanes;
  V acc[R][Vecs];
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t v = 0; v < Vecs; ++v) acc[r][v] = V{};
  const InA* arow = a + i0 * k;
  for (std::size_t kk = 0; kk < k; ++kk) {
    V bv[Vecs];
    for (std::size_t v = 0; v < Vecs; ++v) bv[v] = load<InB, Acc, Bytes, Fma>(b + kk * n + j0 + v * L);
    for (std::size_t r = 0; r < R; ++r) {
      const V ar = splat<V, Fma>(arow + r * k + kk);
      for (std::size_t v = 0; v < Vecs; ++v) madd<Fma>(acc[r][v], ar, bv[v]);
    }
  }
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t v = 0; v < Vecs; ++v) std::memcpy(c + (i0 + r) * n + j0 + v * L, &acc[r][v], sizeof(V));
}

// Columns [j0, j0 + Vecs * L) for every row: blocks of kRows rows, then
// single rows. The strip's columns of B (k rows of Vecs vectors) stay in
// L1 for every block of rows, where a loop over rows outside would read
// all of B from L2 once per block.
template <std::size_t Vecs, std::size_t Bytes, bool Fma, class InA, class InB, class Acc>
ACCSIM_GEMM_INLINE void strip(const InA* a, const InB* b, Acc* c, std::size_t j0, std::size_t m, std::size_t k,
                              std::size_t n) {
  constexpr std::size_t R = Bytes == 64 ? 2 * kRows : kRows;
  std::size_t i = 0;
  for (; i + R <= m; i += R) tile<R, Vecs, Bytes, Fma>(a, b, c, i, j0, k, n);
  for (; i + kRows <= m; i += kRows) tile<kRows, Vecs, Bytes, Fma>(a, b, c, i, j0, k, n);
  for (; i < m; ++i) tile<1, Vecs, Bytes, Fma>(a, b, c, i, j0, k, n);
}

// Columns [j0, n), fewer than one vector of Bytes: copied, zero-padded,
// into a vector's width and run as a strip there (every output the same
// operations in the same order as anywhere else), the results copied back.
// One element at a time, each a chain of K dependent additions, they would
// cost a network's 49-column layers as much as their whole vector strips.
template <std::size_t Bytes, bool Fma, class InA, class InB, class Acc>
ACCSIM_GEMM_INLINE void tail_columns(const InA* a, const InB* b, Acc* c, std::size_t j0, std::size_t m, std::size_t k,
                                     std::size_t n) {
  constexpr std::size_t W = Vec<Acc, Bytes>::kLanes;
  const std::size_t cols = n - j0;
  if (cols == 0) return;
  thread_local std::vector<InB> padded_b;
  thread_local std::vector<Acc> padded_c;
  if (padded_b.size() < k * W) padded_b.resize(k * W);  // grown, never shrunk: every element used is written
  if (padded_c.size() < m * W) padded_c.resize(m * W);
  for (std::size_t kk = 0; kk < k; ++kk) {
    for (std::size_t j = 0; j < W; ++j) padded_b[kk * W + j] = j < cols ? b[kk * n + j0 + j] : InB{0};
  }
  strip<1, Bytes, Fma>(a, padded_b.data(), padded_c.data(), 0, m, k, W);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < cols; ++j) c[i * n + j0 + j] = padded_c[i * W + j];
  }
}

// Strips of wide tiles, then of single vectors, then (for 64-byte vectors)
// of half vectors, then the last few columns padded to the narrowest.
template <std::size_t Bytes, bool Fma, class InA, class InB, class Acc>
ACCSIM_GEMM_INLINE void gemm_rows(const InA* a, const InB* b, Acc* c, std::size_t m, std::size_t k, std::size_t n) {
  constexpr std::size_t L = Vec<Acc, Bytes>::kLanes;
  std::size_t j = 0;
  for (; j + 3 * L <= n; j += 3 * L) strip<3, Bytes, Fma>(a, b, c, j, m, k, n);
  for (; j + L <= n; j += L) strip<1, Bytes, Fma>(a, b, c, j, m, k, n);
  constexpr std::size_t narrowest = Bytes > 32 ? Bytes / 2 : Bytes;
  if constexpr (Bytes > 32) {
    for (; j + L / 2 <= n; j += L / 2) strip<1, narrowest, Fma>(a, b, c, j, m, k, n);
  }
  tail_columns<narrowest, Fma>(a, b, c, j, m, k, n);
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
template <class InA, class InB, class Acc>
void gemm_baseline(const InA* a, const InB* b, Acc* c, std::size_t m, std::size_t k, std::size_t n) {
  gemm_rows<32, false>(a, b, c, m, k, n);
}
template <class InB>
__attribute__((target("avx512f,fma"))) void gemm_avx512_fma(const double* a, const InB* b, double* c, std::size_t m,
                                                            std::size_t k, std::size_t n) {
  gemm_rows<64, true>(a, b, c, m, k, n);
}
template <class InB>
__attribute__((target("avx2,fma"))) void gemm_avx2_fma(const double* a, const InB* b, double* c, std::size_t m,
                                                       std::size_t k, std::size_t n) {
  gemm_rows<32, true>(a, b, c, m, k, n);
}

template <class InA, class InB, class Acc>
using GemmFn = void (*)(const InA*, const InB*, Acc*, std::size_t, std::size_t, std::size_t);

template <class In, class Acc>
void gemm_dispatch(const In* a, const In* b, Acc* c, std::size_t m, std::size_t k, std::size_t n) {
  using Fn = GemmFn<In, In, Acc>;
  static const Fn fn = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return static_cast<Fn>(gemm_avx512<In, Acc>);
    if (__builtin_cpu_supports("avx2")) return static_cast<Fn>(gemm_avx2<In, Acc>);
    return static_cast<Fn>(gemm_baseline<In, In, Acc>);
  }();
  fn(a, b, c, m, k, n);
}

// Products exact in double: fused multiply-adds where the CPU has them.
// A float B is widened as it is loaded (exact), which reads half the bytes
// of widening it into a copy first; A, whose values each step broadcasts,
// comes in double.
template <class InB>
void gemm_exact_products(const double* a, const InB* b, double* c, std::size_t m, std::size_t k, std::size_t n) {
  using Fn = GemmFn<double, InB, double>;
  static const Fn fn = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) return static_cast<Fn>(gemm_avx512_fma<InB>);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return static_cast<Fn>(gemm_avx2_fma<InB>);
    return static_cast<Fn>(gemm_baseline<double, InB, double>);
  }();
  fn(a, b, c, m, k, n);
}

// The exact sums on a narrow grid, in integers. The operands come as
// doubles or floats (T), A [m x k] row-major and B [k x n] in blocks of
// b_block_cols columns (element (kk, j) at (j / b_block_cols) *
// b_block_step + kk * b_stride + j % b_block_cols: row-major is one block),
// each value x standing for the integer x * inverse_unit. Packed, A holds
// m rows of int16 [m x k2] (k2: k rounded up to even, the pad 0); B int16
// pairs [k2 / 2][n2][2], element (p, j) holding B[2p][j] and B[2p + 1][j],
// n2 being n rounded up to a whole vector of int32 lanes (padding columns
// 0). One madd step multiplies
// 2 x L int16 pairs and adds each pair's two products into one of L int32
// lanes: column j's lane gains A[i][2p] B[2p][j] + A[i][2p + 1] B[2p + 1][j],
// exactly.
template <class T>
struct IntGemm {
  const T* a_values;
  const T* b_values;
  std::size_t b_block_cols, b_block_step, b_stride;
  double inverse_unit;  // 2^-lsb
  double limit;         // the largest integer a value may stand for
  bool float_grid;      // inverse_unit is a float >= 1: see grid_ints16
  std::int16_t* a;      // packed, m * k2
  std::int16_t* b;      // packed, k2 * n2
  double* c;
  std::size_t m, k, n, k2, n2;
  std::size_t block_pairs;  // steps an int32 lane takes without overflowing
  double unit;              // the products' last place: 2^(2 lsb)
};

typedef short I16x32 __attribute__((vector_size(64)));
typedef int I32x16 __attribute__((vector_size(64)));
typedef short I16x16 __attribute__((vector_size(32)));
typedef int I32x8 __attribute__((vector_size(32)));
typedef short I16x8 __attribute__((vector_size(16)));
typedef int I32x4 __attribute__((vector_size(16)));
__attribute__((target("avx512bw"))) inline void madd_pairs(I32x16& acc, const I16x32& a, const I16x32& b) {
  acc += (I32x16)_mm512_madd_epi16((__m512i)a, (__m512i)b);
}
__attribute__((target("avx2"))) inline void madd_pairs(I32x8& acc, const I16x16& a, const I16x16& b) {
  acc += (I32x8)_mm256_madd_epi16((__m256i)a, (__m256i)b);
}
inline void madd_pairs(I32x4& acc, const I16x8& a, const I16x8& b) {  // SSE2, every x86-64
  acc += (I32x4)_mm_madd_epi16((__m128i)a, (__m128i)b);
}
// The same in one instruction (AVX-512 VNNI): the pair's products and the
// lane are added exactly, as madd_pairs' two instructions add them (no
// value here reaches -2^15, so neither ever wraps).
__attribute__((target("avx512f,avx512vnni"))) inline void dot_pairs(I32x16& acc, const I16x32& a, const I16x32& b) {
  acc = (I32x16)_mm512_dpwssd_epi32((__m512i)acc, (__m512i)a, (__m512i)b);
}

template <std::size_t Bytes>
struct IntVec;
template <>
struct IntVec<64> {
  using I16 = I16x32;
  using I32 = I32x16;
};
template <>
struct IntVec<32> {
  using I16 = I16x16;
  using I32 = I32x8;
};
template <>
struct IntVec<16> {
  using I16 = I16x8;
  using I32 = I32x4;
};

// C[i0 .. i0+R) x [j0 .. j0 + Vecs * L), clipped to n: R x Vecs vectors of
// int32 lanes stay in registers for a block of steps, then go into exact
// double sums.
template <std::size_t R, std::size_t Vecs, std::size_t Bytes, bool Vnni, class T>
ACCSIM_GEMM_INLINE void int_tile(const IntGemm<T>& g, std::size_t i0, std::size_t j0) {
  using I16 = typename IntVec<Bytes>::I16;
  using I32 = typename IntVec<Bytes>::I32;
  constexpr std::size_t L = Bytes / 4, W = Vecs * L;
  double sum[R][W] = {};
  const std::size_t pairs = g.k2 / 2;
  for (std::size_t p0 = 0; p0 < pairs; p0 += g.block_pairs) {
    const std::size_t p1 = std::min(pairs, p0 + g.block_pairs);
    I32 acc[R][Vecs];
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t v = 0; v < Vecs; ++v) acc[r][v] = I32{};
    for (std::size_t p = p0; p < p1; ++p) {
      I16 bv[Vecs];
      for (std::size_t v = 0; v < Vecs; ++v) std::memcpy(&bv[v], g.b + 2 * (p * g.n2 + j0 + v * L), sizeof(I16));
      for (std::size_t r = 0; r < R; ++r) {
        std::int32_t pair;
        std::memcpy(&pair, g.a + (i0 + r) * g.k2 + 2 * p, sizeof pair);
        const I32 ar = I32{} + pair;
        for (std::size_t v = 0; v < Vecs; ++v) {
          if constexpr (Vnni) {
            dot_pairs(acc[r][v], (I16)ar, bv[v]);
          } else {
            madd_pairs(acc[r][v], (I16)ar, bv[v]);
          }
        }
      }
    }
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t v = 0; v < Vecs; ++v)
        for (std::size_t l = 0; l < L; ++l) sum[r][v * L + l] += static_cast<double>(acc[r][v][l]);
  }
  const std::size_t cols = std::min(W, g.n - j0);
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t j = 0; j < cols; ++j) g.c[(i0 + r) * g.n + j0 + j] = sum[r][j] * g.unit;
}

// Eight values x / 2^lsb (x * inverse_unit, exact) as int16, and `bad` set
// where one is not an integer of at most `limit` in magnitude (NaN
// included); one converter per ISA, chosen by the kernel's vector bytes.
template <std::size_t Bytes>
using IsaTag = std::integral_constant<std::size_t, Bytes>;
// Eight (AVX-512) or four (AVX2) values widened to doubles (exact).
__attribute__((target("avx512f"))) inline __m512d load_pd(IsaTag<64>, const double* src) {
  return _mm512_loadu_pd(src);
}
__attribute__((target("avx512f"))) inline __m512d load_pd(IsaTag<64>, const float* src) {
  return _mm512_maskz_cvtps_pd(0xff, _mm256_loadu_ps(src));  // the maskz form: see grid_ints
}
__attribute__((target("avx2"))) inline __m256d load_pd(IsaTag<32>, const double* src) { return _mm256_loadu_pd(src); }
__attribute__((target("avx2"))) inline __m256d load_pd(IsaTag<32>, const float* src) {
  return _mm256_cvtps_pd(_mm_loadu_ps(src));
}
template <class T>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) inline __m128i grid_ints(IsaTag<64> isa, const T* src,
                                                                                       double inverse_unit,
                                                                                       double limit, bool& bad) {
  const __m512d u = _mm512_mul_pd(load_pd(isa, src), _mm512_set1_pd(inverse_unit));
  // The maskz forms, all lanes on: the plain ones start from an undefined
  // register, which GCC 12 reports as maybe uninitialized.
  const __m256i v = _mm512_maskz_cvttpd_epi32(0xff, u);  // 0x80000000 where out of range or NaN
  const __mmask8 off = _mm512_cmp_pd_mask(_mm512_maskz_cvtepi32_pd(0xff, v), u, _CMP_NEQ_UQ) |
                       _mm512_cmp_pd_mask(_mm512_abs_pd(u), _mm512_set1_pd(limit), _CMP_NLE_UQ);
  bad |= off != 0;
  return _mm256_maskz_cvtepi32_epi16(0xff, v);
}
template <class T>
__attribute__((target("avx2"))) inline __m128i grid_ints(IsaTag<32> isa, const T* src, double inverse_unit,
                                                         double limit, bool& bad) {
  const __m256d scale = _mm256_set1_pd(inverse_unit), lim = _mm256_set1_pd(limit), sign = _mm256_set1_pd(-0.0);
  const __m256d u0 = _mm256_mul_pd(load_pd(isa, src), scale), u1 = _mm256_mul_pd(load_pd(isa, src + 4), scale);
  const __m128i v0 = _mm256_cvttpd_epi32(u0), v1 = _mm256_cvttpd_epi32(u1);
  const __m256d off0 = _mm256_or_pd(_mm256_cmp_pd(_mm256_cvtepi32_pd(v0), u0, _CMP_NEQ_UQ),
                                    _mm256_cmp_pd(_mm256_andnot_pd(sign, u0), lim, _CMP_NLE_UQ));
  const __m256d off1 = _mm256_or_pd(_mm256_cmp_pd(_mm256_cvtepi32_pd(v1), u1, _CMP_NEQ_UQ),
                                    _mm256_cmp_pd(_mm256_andnot_pd(sign, u1), lim, _CMP_NLE_UQ));
  bad |= _mm256_movemask_pd(_mm256_or_pd(off0, off1)) != 0;
  return _mm_packs_epi32(v0, v1);  // in range: no saturation
}
ACCSIM_GEMM_INLINE std::int16_t grid_int(double x, double inverse_unit, double limit, bool& bad) {
  const double u = x * inverse_unit;
  const double kept = (u >= -limit && u <= limit) ? u : 0.0;
  const auto v = static_cast<std::int32_t>(kept);
  bad |= static_cast<double>(v) != u;
  return static_cast<std::int16_t>(v);
}
template <class T>
inline __m128i grid_ints(IsaTag<16>, const T* src, double inverse_unit, double limit, bool& bad) {
  alignas(16) std::int16_t v[8];
  for (std::size_t i = 0; i < 8; ++i) v[i] = grid_int(src[i], inverse_unit, limit, bad);
  return _mm_load_si128(reinterpret_cast<const __m128i*>(v));
}

// Sixteen floats at once, in float arithmetic, where inverse_unit is a
// float of at least 1: x * inverse_unit is then exact in float as in
// double, or infinite where double's is beyond the limit too, so the
// integers and the lanes off the grid (set in `off`, which the caller
// tests once per row) are grid_ints'. Half the conversions per value (the
// run's operands are floats). The integers come as int32 lanes.
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) inline __m512i grid_ints16(const float* src,
                                                                                       float inverse_unit,
                                                                                       float limit, __mmask16& off) {
  const __m512 u = _mm512_mul_ps(_mm512_loadu_ps(src), _mm512_set1_ps(inverse_unit));
  const __m512i v = _mm512_maskz_cvttps_epi32(0xffff, u);  // 0x80000000 where out of range or NaN
  off |= _mm512_cmp_ps_mask(_mm512_maskz_cvtepi32_ps(0xffff, v), u, _CMP_NEQ_UQ) |
         _mm512_cmp_ps_mask(_mm512_abs_ps(u), _mm512_set1_ps(limit), _CMP_NLE_UQ);
  return v;
}
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) inline void store_ints16(const float* src,
                                                                                     float inverse_unit, float limit,
                                                                                     std::int16_t* dst,
                                                                                     __mmask16& off) {
  const __m512i v = grid_ints16(src, inverse_unit, limit, off);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_maskz_cvtepi32_epi16(0xffff, v));
}
// Two rows' sixteen columns interleaved: dst[2j] from row0, dst[2j + 1]
// from row1 (null: zeros). Each pair is one int32 lane, row0's integer in
// its low half and row1's in its high half (little-endian), so the lanes
// are built in place: the low 16 bits of row0's lane, under row1's shifted
// up (every integer on the grid fits 16 bits).
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) inline void store_pairs16(const float* row0,
                                                                                      const float* row1,
                                                                                      float inverse_unit, float limit,
                                                                                      std::int16_t* dst,
                                                                                      __mmask16& off) {
  const __m512i v0 = grid_ints16(row0, inverse_unit, limit, off);
  const __m512i v1 = row1 ? grid_ints16(row1, inverse_unit, limit, off) : _mm512_setzero_si512();
  const __m512i high = _mm512_maskz_slli_epi32(0xffff, v1, 16);
  _mm512_storeu_si512(dst, _mm512_ternarylogic_epi32(high, v0, _mm512_set1_epi32(0xffff), 0xf8));  // a | (b & c)
}

// A row of A, its pad to `padded` zeros; a pair of rows of B interleaved
// (row1 null: zeros), its pad to `padded` columns zeros. False where a
// value is off the grid.
template <std::size_t Bytes, class T>
ACCSIM_GEMM_INLINE bool pack_row(const IntGemm<T>& g, const T* src, std::size_t count, std::size_t padded,
                                 std::int16_t* dst) {
  const double inverse_unit = g.inverse_unit, limit = g.limit;
  bool bad = false;
  std::size_t i = 0;
  if constexpr (Bytes == 64 && std::is_same_v<T, float>) {
    if (g.float_grid) {
      const auto inv = static_cast<float>(inverse_unit), lim = static_cast<float>(limit);
      __mmask16 off = 0;
      for (; i + 16 <= count; i += 16) store_ints16(src + i, inv, lim, dst + i, off);
      bad = off != 0;
    }
  }
  for (; i + 8 <= count; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), grid_ints(IsaTag<Bytes>{}, src + i, inverse_unit, limit, bad));
  }
  for (; i < count; ++i) dst[i] = grid_int(src[i], inverse_unit, limit, bad);
  for (; i < padded; ++i) dst[i] = 0;
  return !bad;
}
template <std::size_t Bytes, class T>
ACCSIM_GEMM_INLINE bool pack_pair(const IntGemm<T>& g, const T* row0, const T* row1, std::size_t count,
                                  std::size_t padded, std::int16_t* dst) {
  const double inverse_unit = g.inverse_unit, limit = g.limit;
  bool bad = false;
  std::size_t j = 0;
  if constexpr (Bytes == 64 && std::is_same_v<T, float>) {
    if (g.float_grid) {
      const auto inv = static_cast<float>(inverse_unit), lim = static_cast<float>(limit);
      __mmask16 off = 0;
      for (; j + 16 <= count; j += 16) store_pairs16(row0 + j, row1 ? row1 + j : nullptr, inv, lim, dst + 2 * j, off);
      bad = off != 0;
    }
  }
  for (; j + 8 <= count; j += 8) {
    const __m128i v0 = grid_ints(IsaTag<Bytes>{}, row0 + j, inverse_unit, limit, bad);
    const __m128i v1 = row1 ? grid_ints(IsaTag<Bytes>{}, row1 + j, inverse_unit, limit, bad) : _mm_setzero_si128();
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * j), _mm_unpacklo_epi16(v0, v1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 2 * j + 8), _mm_unpackhi_epi16(v0, v1));
  }
  for (; j < count; ++j) {
    dst[2 * j] = grid_int(row0[j], inverse_unit, limit, bad);
    dst[2 * j + 1] = row1 ? grid_int(row1[j], inverse_unit, limit, bad) : 0;
  }
  for (; j < padded; ++j) dst[2 * j] = dst[2 * j + 1] = 0;
  return !bad;
}

// One strip of columns [j0, j0 + Vecs * L) for every row: blocks of rows
// inside, so that the strip of B stays in cache for all of A's rows.
template <std::size_t Vecs, std::size_t Bytes, bool Vnni, class T>
ACCSIM_GEMM_INLINE void int_strip(const IntGemm<T>& g, std::size_t j0) {
  std::size_t i = 0;
  for (; i + kRows <= g.m; i += kRows) int_tile<kRows, Vecs, Bytes, Vnni>(g, i, j0);
  for (; i < g.m; ++i) int_tile<1, Vecs, Bytes, Vnni>(g, i, j0);
}

// Packs A and B into g's buffers, then C: strips of Vecs vectors of
// columns, then of single vectors. False, with nothing computed, where an
// operand holds a value off the grid.
template <std::size_t Vecs, std::size_t Bytes, bool Vnni, class T>
ACCSIM_GEMM_INLINE bool int_gemm(const IntGemm<T>& g) {
  for (std::size_t i = 0; i < g.m; ++i) {
    if (!pack_row<Bytes>(g, g.a_values + i * g.k, g.k, g.k2, g.a + i * g.k2)) return false;
  }
  for (std::size_t kk = 0; kk < g.k; kk += 2) {
    for (std::size_t j0 = 0; j0 < g.n; j0 += g.b_block_cols) {
      const std::size_t cols = std::min(g.b_block_cols, g.n - j0);
      const T* row0 = g.b_values + j0 / g.b_block_cols * g.b_block_step + kk * g.b_stride;
      const T* row1 = kk + 1 < g.k ? row0 + g.b_stride : nullptr;
      const std::size_t padded = j0 + cols == g.n ? g.n2 - j0 : cols;  // the last block pads to n2
      if (!pack_pair<Bytes>(g, row0, row1, cols, padded, g.b + kk * g.n2 + 2 * j0)) return false;
    }
  }
  constexpr std::size_t L = Bytes / 4;
  std::size_t j = 0;
  for (; j + Vecs * L <= g.n2; j += Vecs * L) int_strip<Vecs, Bytes, Vnni>(g, j);
  for (; j < g.n2; j += L) int_strip<1, Bytes, Vnni>(g, j);
  return true;
}

template <class T>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"))) bool int_gemm_avx512_vnni(
    const IntGemm<T>& g) {
  return int_gemm<4, 64, true>(g);
}
template <class T>
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl"))) bool int_gemm_avx512(const IntGemm<T>& g) {
  return int_gemm<4, 64, false>(g);
}
template <class T>
__attribute__((target("avx2"))) bool int_gemm_avx2(const IntGemm<T>& g) {
  return int_gemm<2, 32, false>(g);
}
template <class T>
bool int_gemm_baseline(const IntGemm<T>& g) {
  return int_gemm<2, 16, false>(g);
}

std::atomic<int> g_vnni_override{-1};

// gemm_exact_sums on the int16 kernel (int16_grid(format), k > 0): false,
// with nothing computed, where an operand holds a value off the grid.
template <class T>
bool int16_exact_sums(const num::Format& format, const T* a, const T* b, std::size_t b_block_cols,
                      std::size_t b_block_step, std::size_t b_stride, double* c, std::size_t m, std::size_t k,
                      std::size_t n) {
  const num::fast::Span v = num::fast::span_of(format);
  // Values are below 2^w units in magnitude, a pair of products below
  // 2 (2^w - 1)^2.
  const int w = v.msb - v.lsb + 1;
  const double limit = std::ldexp(1.0, w) - 1;
  const LaneIsa isa = ref::lane_isa();
  const std::size_t lanes = isa == LaneIsa::avx512 ? 16 : isa == LaneIsa::avx2 ? 8 : 4;
  thread_local std::vector<std::int16_t> a16, b16;
  IntGemm<T> g{};
  g.a_values = a;
  g.b_values = b;
  g.b_block_cols = b_block_cols;
  g.b_block_step = b_block_step;
  g.b_stride = b_stride;
  g.inverse_unit = std::ldexp(1.0, -v.lsb);
  g.float_grid = v.lsb <= 0 && v.lsb >= -126;  // 2^-lsb a normal float
  g.limit = limit;
  g.c = c;
  g.m = m;
  g.k = k;
  g.n = n;
  g.k2 = k + (k & 1);
  g.n2 = (n + lanes - 1) / lanes * lanes;
  g.block_pairs = static_cast<std::size_t>(static_cast<double>(std::numeric_limits<std::int32_t>::max()) /
                                           (2 * limit * limit));
  g.unit = std::ldexp(1.0, 2 * v.lsb);
  // Grown, never shrunk (read by pointer): a shrunk vector grown again
  // would clear the difference.
  if (a16.size() < m * g.k2) a16.resize(m * g.k2);
  if (b16.size() < g.k2 * g.n2) b16.resize(g.k2 * g.n2);
  g.a = a16.data();
  g.b = b16.data();
  switch (isa) {
    case LaneIsa::avx512: return int16_vnni() ? int_gemm_avx512_vnni(g) : int_gemm_avx512(g);
    case LaneIsa::avx2: return int_gemm_avx2(g);
    case LaneIsa::baseline: break;
  }
  return int_gemm_baseline(g);
}

}  // namespace

void gemm_fp32_sequential(const float* a, const float* b, float* c, std::size_t m, std::size_t k, std::size_t n) {
  gemm_dispatch(a, b, c, m, k, n);
}

void gemm_f64(const float* a, const float* b, double* c, std::size_t m, std::size_t k, std::size_t n) {
  // A product of two floats (24 significant bits each, exponents far inside
  // double's) is exact in double. A is widened once (m*k conversions for
  // m*k*n products); B as it is read.
  thread_local std::vector<double> wide_a;
  if (wide_a.size() < m * k) wide_a.resize(m * k);  // read by pointer: grown, never shrunk
  std::copy(a, a + m * k, wide_a.begin());
  gemm_exact_products(wide_a.data(), b, c, m, k, n);
}

void gemm_f64(const double* a, const float* b, double* c, std::size_t m, std::size_t k, std::size_t n) {
  gemm_exact_products(a, b, c, m, k, n);
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

bool int16_vnni() {
  static const bool cpu = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") != 0;
  }();
  const int forced = g_vnni_override.load(std::memory_order_relaxed);
  return cpu && forced != 0;
}

void set_int16_vnni(std::optional<bool> use) { g_vnni_override.store(use ? int{*use} : -1, std::memory_order_relaxed); }

bool int16_grid(const num::Format& format) {
  const num::fast::Span v = num::fast::span_of(format);
  return v.msb - v.lsb + 1 <= 15;
}

void gemm_exact_sums(const num::Format& format, const double* a, const double* b, double* c, std::size_t m,
                     std::size_t k, std::size_t n) {
  assert(sums_exact_in_double(format, k));
  if (m == 0 || n == 0) return;
  if (!int16_grid(format) || k == 0 || !int16_exact_sums(format, a, b, n, 0, n, c, m, k, n)) {
    gemm_f64_exact_sums(a, b, c, m, k, n);
  }
}

void gemm_exact_sums(const num::Format& format, const ref::F32Operands& ops, double* c) {
  const std::size_t m = ops.m, k = ops.k, n = ops.n;
  assert(sums_exact_in_double(format, k));
  if (m == 0 || n == 0) return;
  constexpr std::size_t kCols = ref::kF32PanelCols;
  if (int16_grid(format) && k > 0 && int16_exact_sums(format, ops.a, ops.b, kCols, k * kCols, kCols, c, m, k, n)) {
    return;
  }
  // Widened (exact) for dgemm.
  thread_local std::vector<double> wide_a, wide_b;
  wide_a.assign(ops.a, ops.a + m * k);
  wide_b.resize(k * n);
  for (std::size_t kk = 0; kk < k; ++kk) {
    for (std::size_t j = 0; j < n; ++j) wide_b[kk * n + j] = ops.b[ref::f32_b_index(k, kk, j)];
  }
  gemm_f64_exact_sums(wide_a.data(), wide_b.data(), c, m, k, n);
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
