// The float lanes' kernels, written once over GCC vector types and included
// by each per-ISA translation unit (lanes_f32_avx512.cpp, ...), which first
// defines:
//   ACCSIM_F32_NS      the namespace of its copy
//   ACCSIM_F32_W       float lanes per vector (16, 8, 4)
//   ACCSIM_F32_FN      the attributes of every function here: the ISA's
//                      target and always_inline, so that every function
//                      handling a vector is built for the ISA and no
//                      vector is passed between code built for different
//                      ISAs (clang rejects that, GCC warns)
//   ACCSIM_F32_ENTRY   the attributes of the entry points (target only)
//   ACCSIM_F32_ANY     a function `bool any(I mask)`: whether some lane of
//                      a mask is set (except with 16 lanes, whose masks
//                      are AVX-512's mask registers)
// See lanes_f32.hpp and plan_f32 for why every step is exact in float.
#include <bit>
#include <cstddef>
#include <cstdint>

#include "models/numerics/format.hpp"
#include "models/reference/lanes_f32_kernel.hpp"

namespace accsim::ref::f32::ACCSIM_F32_NS {
namespace {

using num::Rounding;

constexpr int W = ACCSIM_F32_W;
constexpr int kVectors = 4;  // independent accumulators per step, and vectors per (full) panel
typedef float F __attribute__((vector_size(4 * W)));
typedef std::uint32_t U __attribute__((vector_size(4 * W)));
typedef std::int32_t I __attribute__((vector_size(4 * W)));
typedef float UnalignedF __attribute__((vector_size(4 * W), aligned(4), may_alias));

constexpr std::uint32_t kSign = 0x80000000u;
constexpr std::uint32_t kMagnitude = 0x7fffffffu;

ACCSIM_F32_FN F load(const float* p) { return *reinterpret_cast<const UnalignedF*>(p); }
ACCSIM_F32_FN void store(float* p, F v) { *reinterpret_cast<UnalignedF*>(p) = v; }
// By the bit pattern: adding to a zero vector would turn -0 into +0.
ACCSIM_F32_FN F broadcast(float x) { return (F)(U{} + std::bit_cast<std::uint32_t>(x)); }

// Lane masks: AVX-512's mask registers, or (other ISAs) vectors whose true
// lanes are all ones. count adds one to each true lane of a tally.
#if ACCSIM_F32_W == 16
using Mask = __mmask16;
ACCSIM_F32_FN bool any(Mask m) { return m != 0; }
ACCSIM_F32_FN void count(I& tally, Mask m) {
  tally = (I)(_mm512_mask_sub_epi32((__m512i)(tally), m, (__m512i)(tally), _mm512_set1_epi32(-1)));
}
ACCSIM_F32_FN Mask equal(U x, U y) { return _mm512_cmpeq_epi32_mask((__m512i)(x), (__m512i)(y)); }
#else
using Mask = I;
ACCSIM_F32_ANY
ACCSIM_F32_FN void count(I& tally, Mask m) { tally -= m; }
ACCSIM_F32_FN Mask equal(U x, U y) { return (I)(x == y); }
#endif

// Lanes with 0 < |x| < 2^emin (a = |x|'s bits).
ACCSIM_F32_FN Mask tiny_lanes(const F32Rounder& r, U a) {
#if ACCSIM_F32_W == 16
  const __m512i av = (__m512i)(a);
  return _mm512_mask_cmplt_epu32_mask(_mm512_test_epi32_mask(av, av), av, _mm512_set1_epi32(static_cast<int>(r.min_normal_bits)));
#else
  // One signed compare, as num::fast's round_lanes: a - 1 with its sign
  // bit flipped orders like an unsigned a - 1, which wraps zero to the top.
  return (I)(a + kMagnitude) < static_cast<std::int32_t>((r.min_normal_bits - 1) ^ kSign);
#endif
}
// Lanes above the largest finite value (a is non-negative as a signed int).
ACCSIM_F32_FN Mask big_lanes(const F32Rounder& r, U a) {
#if ACCSIM_F32_W == 16
  return _mm512_cmpgt_epi32_mask((__m512i)(a), _mm512_set1_epi32(static_cast<int>(r.max_bits)));
#else
  return (I)(a) > static_cast<std::int32_t>(r.max_bits);
#endif
}

// The rounded bits of u (zero, or a normal of the format up to its largest
// value; flushed lanes too, which become zeros of their sign). Toward zero
// truncates the bit pattern; nearest-even adds half an ulp less one, plus
// the kept last bit (ties to even), and truncates: a carry moves into the
// exponent as the value moves into the next binade.
template <Rounding Mode>
ACCSIM_F32_FN U round_bits(const F32Rounder& r, U u, Mask flush) {
  U m;
  if constexpr (Mode == Rounding::rtz) {
    m = u & r.keep;
  } else {
    static_assert(Mode == Rounding::rne);
    m = (u + r.half_less_one + ((u >> r.drop) & 1u)) & r.keep;
  }
#if ACCSIM_F32_W == 16
  return (U)(_mm512_mask_and_epi32((__m512i)(m), flush, (__m512i)(u), _mm512_set1_epi32(static_cast<int>(kSign))));
#else
  return flush ? (u & kSign) : m;
#endif
}

// The tiny lanes of u (0 < |u| < 2^emin, in a format with subnormals)
// rounded onto the subnormal grid, the multiples of q = 2^(emin - M):
// |u| + 2^23 q lies in the binade [2^23 q, 2^24 q) (|u| < 2^emin <= 2^23 q,
// as M <= 23), whose spacing is q, so the float addition rounds |u| to a
// multiple of q, to nearest even; taking 2^23 q away again is exact. Toward
// zero is one q less where that rounded up. The sign is put back (a tiny
// value rounded to zero keeps its sign, as round_pack's). Round-to-odd sums
// (kOdd) round correctly: q lies at least 3 bits above a tiny float's last
// place (M <= 21).
template <Rounding Mode>
ACCSIM_F32_FN U round_subnormal(const F32Rounder& r, U u) {
  const F a = (F)(u & kMagnitude);
  const F magic = (F)(U{} + r.subnormal_magic_bits);
  F t = (a + magic) - magic;
  if constexpr (Mode == Rounding::rtz) t = t > a ? t - (F)(U{} + r.subnormal_q_bits) : t;
  return (U)(t) | (u & kSign);
}

// x where the mask is set, y elsewhere.
ACCSIM_F32_FN U select(Mask m, U x, U y) {
#if ACCSIM_F32_W == 16
  return (U)(_mm512_mask_blend_epi32(m, (__m512i)(y), (__m512i)(x)));
#else
  return m ? x : y;
#endif
}

// acc + p as float bits: exact, or (kOdd) rounded to odd in 24 bits.
// Fast2Sum's error e = p - ((acc + p) - acc) is exact when acc's binade is
// at least p's, and plan_f32 admits kOdd only where every sum with p's
// binade above acc's is exact in float (then e = 0, rightly). Where e != 0,
// s moves one unit toward e when even, as num::fast::sum_to_odd does:
// (s - down) | 1, down where s and e differ in sign.
template <bool kOdd>
ACCSIM_F32_FN U sum_bits(F acc, F p) {
  const F s = acc + p;
  if constexpr (!kOdd) {
    return (U)(s);
  } else {
#if ACCSIM_F32_W == 16
    // With AVX-512's rounding control: t = acc + p rounded toward zero,
    // and the odd sum is t with its last bit set where t is inexact, which
    // is where t - acc != p, since t - acc is exact. Where the sum is exact,
    // t - acc = p. Where it is not, acc's binade e is at least p's
    // (plan_f32). Same signs: t and acc are multiples of 2^(e - 23), and
    // |t - acc| <= |p| < 2^(e + 1). Opposite signs, |t - acc| < |p| +
    // ulp(t): if |acc + p| >= 2^e, t is a multiple of 2^(e - 23) and
    // |t - acc| < 2^e + 2^(e - 23); if not, p's binade is below e - 1 (in
    // binade e or e - 1 the sum would be exact), so |p| < 2^(e - 1), t is a
    // multiple of 2^(e - 24) and |t - acc| < 2^(e - 1) + 2^(e - 24). Each
    // difference fits 24 bits.
    (void)s;
    const __m512 t = _mm512_maskz_add_round_ps(0xffff, (__m512)(acc), (__m512)(p), _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const Mask inexact = _mm512_cmp_ps_mask(_mm512_sub_ps(t, (__m512)(acc)), (__m512)(p), _CMP_NEQ_OQ);
    const __m512i tu = _mm512_castps_si512(t);
    return (U)(_mm512_mask_or_epi32(tu, inexact, tu, _mm512_set1_epi32(1)));
#else
    const F z = s - acc;
    const F e = p - z;
    const U su = (U)(s);
    const U inexact = (U)(e != 0.0f);
    const U down = ((su ^ (U)(e)) >> 31) & inexact;
    return (su - down) | (inexact >> 31);
#endif
  }
}

// Per-lane tallies of one kind of rounding. "Swamped or exact" is counted
// in one: a swamped lane is inexact, so swamp = that count less the exact
// one.
ACCSIM_F32_FN void drain(const I& exact, const I& swamp_or_exact, const I& underflow, Tally& t) {
  for (int l = 0; l < W; ++l) {
    t.exact += static_cast<std::uint32_t>(exact[l]);
    t.swamp += static_cast<std::uint32_t>(swamp_or_exact[l] - exact[l]);
    t.underflow += static_cast<std::uint32_t>(underflow[l]);
  }
}

// The lane-wise larger of two magnitudes' bits.
ACCSIM_F32_FN U max_bits(U x, U y) {
#if ACCSIM_F32_W == 16
  // (The mask form: the unmasked one's undefined source trips GCC 12's
  // -Wmaybe-uninitialized.)
  return (U)(_mm512_mask_max_epi32((__m512i)(x), 0xffff, (__m512i)(x), (__m512i)(y)));
#else
  return (I)(x) > (I)(y) ? x : y;  // magnitudes: non-negative as signed ints
#endif
}

// One vector of a sum step, split so that every vector is tested before any
// is committed: the sum's bits, its tiny lanes, and (into `largest`) its
// magnitudes, whose largest decides whether some lane overflows.
struct Pending {
  U u;
  Mask tiny;
};
template <bool kOdd>
ACCSIM_F32_FN Pending pend(const F32Rounder& r, F acc, F addend, U& largest) {
  Pending out;
  out.u = sum_bits<kOdd>(acc, addend);
  const U a = out.u & kMagnitude;
  out.tiny = tiny_lanes(r, a);
  largest = max_bits(largest, a);
  return out;
}
// The rounded bits of u, its tiny lanes flushed (kFtz) or rounded onto the
// subnormal grid.
template <Rounding Mode, bool kFtz>
ACCSIM_F32_FN U round_format(const F32Rounder& r, U u, Mask tiny) {
  U m = round_bits<Mode>(r, u, kFtz ? tiny : Mask{});
  if constexpr (!kFtz) {
    if (any(tiny)) [[unlikely]] m = select(tiny, round_subnormal<Mode>(r, u), m);
  }
  return m;
}
template <Rounding Mode, bool kFtz>
ACCSIM_F32_FN void commit(const F32Rounder& r, F& acc, const Pending& s, I& exact_tally, I& swamp_or_exact_tally,
                          I& underflow_tally) {
  const U m = round_format<Mode, kFtz>(r, s.u, s.tiny);
  const Mask exact = equal(m, s.u);
  count(exact_tally, exact);
  // Swamped: a non-zero addend, and the accumulator kept its bits (the
  // sum, exact or odd, then differs from them, so the lane is inexact; a
  // zero addend leaves an exact sum).
  count(swamp_or_exact_tally, equal(m, (U)(acc)) | exact);
  count(underflow_tally, s.tiny);  // tiny before rounding, as round_pack's underflow
  acc = (F)(m);
}

// A product rounded into the product format, its exact and tiny lanes.
struct Product {
  F value;
  Mask exact, tiny;
};
template <Rounding Mode, bool kFtz>
ACCSIM_F32_FN Product round_product(const F32Rounder& r, F p, U& largest) {
  const U u = (U)(p), a = u & kMagnitude;
  const Mask tiny = tiny_lanes(r, a);
  largest = max_bits(largest, a);
  const U m = round_format<Mode, kFtz>(r, u, tiny);
  return {(F)(m), equal(m, u), tiny};
}

// The fallback of one vector (see slow_step).
ACCSIM_F32_FN void slow(const Job& job, F& acc, F p, bool rounded) {
  alignas(64) float accs[W], products[W];
  store(accs, acc);
  store(products, p);
  slow_step(*job.plan, accs, products, rounded, W, job.tallies);
  acc = load(accs);
}

// The kernel's event tallies, per lane, kept in registers (see drain).
struct StepTallies {
  I product_exact{}, product_underflow{}, acc_exact{}, acc_swamp_or_exact{}, acc_underflow{};
};

// The chunk sums of kRowsAt rows of A (from `row`) against one panel of
// kCols vectors. kProduct: 0 for exact products, else the product format's
// mode (1: rtz, 2: rne), kProdFtz its flush-to-zero. The step keeps
// kRowsAt * kCols independent accumulators: four (one row by four vectors,
// or, on a narrow panel, four rows by one vector), or one (a narrow panel's
// rows left over from fours). Accumulator q sums row q / kCols into vector
// q % kCols. Named, not an array: GCC would keep an array in memory.
template <int kRowsAt, int kCols, Rounding AccMode, bool kAccFtz, bool kOdd, int kProduct, bool kProdFtz>
ACCSIM_F32_FN void panel_rows(const Job& job, std::size_t row, StepTallies& t) {
  constexpr int kAccs = kRowsAt * kCols;
  static_assert(kAccs == kVectors || kAccs == 1);
  constexpr std::size_t kW = static_cast<std::size_t>(W) * kCols;
  constexpr Rounding kProdMode = kProduct == 2 ? Rounding::rne : Rounding::rtz;
  const F32Rounder acc_r = job.plan->accumulate;
  const F32Rounder prod_r = kProduct != 0 ? *job.plan->product : F32Rounder{};
  const std::size_t chunks_per_row = (job.k + job.chunk - 1) / job.chunk;
  const float* const a_rows = job.a_rows + row * job.k;
  // Where accumulator q's chunk sums go, less the chunk's offset.
  const auto sums_of = [&](int q) {
    return job.chunk_sums + (row + static_cast<std::size_t>(q / kCols)) * chunks_per_row * kW +
           static_cast<std::size_t>(q % kCols) * W;
  };
  std::size_t chunks = 0;
  for (std::size_t c0 = 0; c0 < job.k; c0 += job.chunk, ++chunks) {
    const std::size_t c1 = job.k - c0 < job.chunk ? job.k : c0 + job.chunk;
    F acc0{}, acc1{}, acc2{}, acc3{};
    for (std::size_t kk = c0; kk < c1; ++kk) {
      const float* brow = job.panel + kk * kF32PanelCols;
      // Exact: plan_f32 checked the products' significands and range.
      F p0, p1{}, p2{}, p3{};
      if constexpr (kCols == kVectors) {
        const F av = broadcast(a_rows[kk]);
        p0 = av * load(brow);
        p1 = av * load(brow + W);
        p2 = av * load(brow + 2 * W);
        p3 = av * load(brow + 3 * W);
      } else {
        const F bv = load(brow);
        p0 = broadcast(a_rows[kk]) * bv;
        if constexpr (kAccs == kVectors) {
          p1 = broadcast(a_rows[job.k + kk]) * bv;
          p2 = broadcast(a_rows[2 * job.k + kk]) * bv;
          p3 = broadcast(a_rows[3 * job.k + kk]) * bv;
        }
      }
      Product q0{p0, Mask{}, Mask{}}, q1{p1, Mask{}, Mask{}}, q2{p2, Mask{}, Mask{}}, q3{p3, Mask{}, Mask{}};
      if constexpr (kProduct != 0) {
        U largest_product{};
        q0 = round_product<kProdMode, kProdFtz>(prod_r, p0, largest_product);
        if constexpr (kAccs == kVectors) {
          q1 = round_product<kProdMode, kProdFtz>(prod_r, p1, largest_product);
          q2 = round_product<kProdMode, kProdFtz>(prod_r, p2, largest_product);
          q3 = round_product<kProdMode, kProdFtz>(prod_r, p3, largest_product);
        }
        if (any(big_lanes(prod_r, largest_product))) [[unlikely]] {
          // A product overflows: the whole step through the double rounders.
          slow(job, acc0, p0, false);
          if constexpr (kAccs == kVectors) {
            slow(job, acc1, p1, false);
            slow(job, acc2, p2, false);
            slow(job, acc3, p3, false);
          }
          continue;
        }
        // Counted now, which frees their masks (AVX-512 has eight).
        count(t.product_exact, q0.exact);
        count(t.product_underflow, q0.tiny);
        if constexpr (kAccs == kVectors) {
          count(t.product_exact, q1.exact);
          count(t.product_exact, q2.exact);
          count(t.product_exact, q3.exact);
          count(t.product_underflow, q1.tiny);
          count(t.product_underflow, q2.tiny);
          count(t.product_underflow, q3.tiny);
        }
      }
      U largest{};
      const Pending s0 = pend<kOdd>(acc_r, acc0, q0.value, largest);
      Pending s1{}, s2{}, s3{};
      if constexpr (kAccs == kVectors) {
        s1 = pend<kOdd>(acc_r, acc1, q1.value, largest);
        s2 = pend<kOdd>(acc_r, acc2, q2.value, largest);
        s3 = pend<kOdd>(acc_r, acc3, q3.value, largest);
      }
      if (any(big_lanes(acc_r, largest))) [[unlikely]] {
        // A sum overflows: the step's sums through the double rounders,
        // from the rounded products.
        slow(job, acc0, q0.value, true);
        if constexpr (kAccs == kVectors) {
          slow(job, acc1, q1.value, true);
          slow(job, acc2, q2.value, true);
          slow(job, acc3, q3.value, true);
        }
        continue;
      }
      commit<AccMode, kAccFtz>(acc_r, acc0, s0, t.acc_exact, t.acc_swamp_or_exact, t.acc_underflow);
      if constexpr (kAccs == kVectors) {
        commit<AccMode, kAccFtz>(acc_r, acc1, s1, t.acc_exact, t.acc_swamp_or_exact, t.acc_underflow);
        commit<AccMode, kAccFtz>(acc_r, acc2, s2, t.acc_exact, t.acc_swamp_or_exact, t.acc_underflow);
        commit<AccMode, kAccFtz>(acc_r, acc3, s3, t.acc_exact, t.acc_swamp_or_exact, t.acc_underflow);
      }
    }
    const std::size_t offset = chunks * kW;
    store(sums_of(0) + offset, acc0);
    if constexpr (kAccs == kVectors) {
      store(sums_of(1) + offset, acc1);
      store(sums_of(2) + offset, acc2);
      store(sums_of(3) + offset, acc3);
    }
  }
}

// The chunk sums of a block of rows of A against one panel of kCols
// vectors: kVectors / kCols rows at a time, then one by one.
template <int kCols, Rounding AccMode, bool kAccFtz, bool kOdd, int kProduct, bool kProdFtz>
ACCSIM_F32_FN void panel_kernel(const Job& job) {
  constexpr int kRows = kVectors / kCols;
  StepTallies t;
  std::size_t row = 0;
  for (; row + kRows <= job.rows; row += kRows) {
    panel_rows<kRows, kCols, AccMode, kAccFtz, kOdd, kProduct, kProdFtz>(job, row, t);
  }
  if constexpr (kRows > 1) {
    for (; row < job.rows; ++row) panel_rows<1, kCols, AccMode, kAccFtz, kOdd, kProduct, kProdFtz>(job, row, t);
  }
  drain(t.product_exact, t.product_exact, t.product_underflow, job.tallies[0]);  // a product never swamps
  drain(t.acc_exact, t.acc_swamp_or_exact, t.acc_underflow, job.tallies[1]);
}

// Merges the chunk sums of each column in order (chunk 0 first) into the
// merge format, starting from +0 (a single chunk too, as the general path).
template <int kCols, Rounding Mode, bool kFtz, bool kOdd>
ACCSIM_F32_FN void merge_kernel(const Job& job, std::size_t chunks) {
  constexpr std::size_t kW = static_cast<std::size_t>(W) * kCols;
  const F32Rounder r = *job.plan->merge;
  I exact{}, swamp_or_exact{}, underflow{};
  for (std::size_t vr = 0; vr < job.rows * kCols; ++vr) {
    const std::size_t row = vr / kCols, v = vr % kCols;
    const float* const sums = job.chunk_sums + row * chunks * kW;
    F merged{};
    for (std::size_t c = 0; c < chunks; ++c) {
      const F addend = load(sums + c * kW + v * W);
      U largest{};
      const Pending s = pend<kOdd>(r, merged, addend, largest);
      if (any(big_lanes(r, largest))) [[unlikely]] {
        alignas(64) float merged_lanes[W], addend_lanes[W];
        store(merged_lanes, merged);
        store(addend_lanes, addend);
        slow_merge(*job.plan, merged_lanes, addend_lanes, W, job.tallies);
        merged = load(merged_lanes);
        continue;
      }
      commit<Mode, kFtz>(r, merged, s, exact, swamp_or_exact, underflow);
    }
    store(job.out + row * kW + v * W, merged);
  }
  drain(exact, swamp_or_exact, underflow, job.tallies[2]);
}

template <int kCols, Rounding AccMode, bool kAccFtz, bool kOdd, int kProduct, bool kProdFtz>
ACCSIM_F32_ENTRY void run_panel(const Job& job) {
  panel_kernel<kCols, AccMode, kAccFtz, kOdd, kProduct, kProdFtz>(job);
}
template <int kCols, Rounding Mode, bool kFtz, bool kOdd>
ACCSIM_F32_ENTRY void run_merge(const Job& job) {
  merge_kernel<kCols, Mode, kFtz, kOdd>(job, (job.k + job.chunk - 1) / job.chunk);
}

// Calls f.template operator()<B>() with b as a compile-time constant.
template <class Fn>
KernelFn with_bool(bool b, Fn&& f) {
  if (b) return f.template operator()<true>();
  return f.template operator()<false>();
}
template <class Fn>
KernelFn with_mode(Rounding m, Fn&& f) {
  if (m == Rounding::rtz) return f.template operator()<Rounding::rtz>();
  return f.template operator()<Rounding::rne>();
}

template <int kCols>
Kernel select_cols(const F32Plan& plan) {
  const F32Rounder& acc = plan.accumulate;
  const int product = !plan.product ? 0 : plan.product->mode == Rounding::rne ? 2 : 1;
  Kernel kernel;
  kernel.width = static_cast<std::size_t>(W) * kCols;
  kernel.panel = with_mode(acc.mode, [&]<Rounding A>() {
    return with_bool(acc.ftz, [&]<bool AF>() {
      return with_bool(acc.odd_sum, [&]<bool AO>() -> KernelFn {
        if (product == 0) return &run_panel<kCols, A, AF, AO, 0, false>;
        return with_bool(plan.product->ftz, [&]<bool PF>() -> KernelFn {
          if (product == 1) return &run_panel<kCols, A, AF, AO, 1, PF>;
          return &run_panel<kCols, A, AF, AO, 2, PF>;
        });
      });
    });
  });
  if (plan.merge) {
    kernel.merge = with_mode(plan.merge->mode, [&]<Rounding M>() {
      return with_bool(plan.merge->ftz, [&]<bool MF>() {
        return with_bool(plan.merge->odd_sum, [&]<bool MO>() -> KernelFn { return &run_merge<kCols, M, MF, MO>; });
      });
    });
  }
  return kernel;
}

}  // namespace

Kernel select(const F32Plan& plan, bool narrow) {
  return narrow ? select_cols<1>(plan) : select_cols<kVectors>(plan);
}

}  // namespace accsim::ref::f32::ACCSIM_F32_NS
