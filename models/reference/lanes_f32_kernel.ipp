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
//                      a mask is set
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
constexpr int kVectors = 4;  // independent accumulators per panel
constexpr std::size_t kWidth = static_cast<std::size_t>(W) * kVectors;
typedef float F __attribute__((vector_size(4 * W)));
typedef std::uint32_t U __attribute__((vector_size(4 * W)));
typedef std::int32_t I __attribute__((vector_size(4 * W)));
typedef float UnalignedF __attribute__((vector_size(4 * W), aligned(4), may_alias));

constexpr std::uint32_t kSign = 0x80000000u;
constexpr std::uint32_t kMagnitude = 0x7fffffffu;

ACCSIM_F32_ANY

ACCSIM_F32_FN F load(const float* p) { return *reinterpret_cast<const UnalignedF*>(p); }
ACCSIM_F32_FN void store(float* p, F v) { *reinterpret_cast<UnalignedF*>(p) = v; }
// By the bit pattern: adding to a zero vector would turn -0 into +0.
ACCSIM_F32_FN F broadcast(float x) { return (F)(U{} + std::bit_cast<std::uint32_t>(x)); }

// Lanes with 0 < |x| < 2^emin, as one signed compare (as num::fast's
// round_lanes: a - 1 with its sign bit flipped orders like an unsigned
// a - 1, which wraps zero to the top).
ACCSIM_F32_FN I tiny_lanes(const F32Rounder& r, U a) {
  return (I)(a + kMagnitude) < static_cast<std::int32_t>((r.min_normal_bits - 1) ^ kSign);
}
// Lanes above the largest finite value (a is non-negative as a signed int).
ACCSIM_F32_FN I big_lanes(const F32Rounder& r, U a) { return (I)(a) > static_cast<std::int32_t>(r.max_bits); }

// The rounded bits of u (zero, or a normal of the format up to its largest
// value; with flush, tiny lanes too, which become zeros of their sign).
// Toward zero truncates the bit pattern; nearest-even adds half an ulp less
// one, plus the kept last bit (ties to even), and truncates: a carry moves
// into the exponent as the value moves into the next binade.
template <Rounding Mode>
ACCSIM_F32_FN U round_bits(const F32Rounder& r, U u, I flush) {
  U m;
  if constexpr (Mode == Rounding::rtz) {
    m = u & r.keep;
  } else {
    static_assert(Mode == Rounding::rne);
    m = (u + r.half_less_one + ((u >> r.drop) & 1u)) & r.keep;
  }
  return flush ? (u & kSign) : m;
}

// acc + p as float bits: exact, or (kOdd) rounded to odd in 24 bits.
// Fast2Sum's error e = p - ((acc + p) - acc) is exact when acc's binade is
// at least p's, and plan_f32 admits kOdd only where every sum with p's
// binade above acc's is exact in float (then e = 0, rightly). Where e != 0,
// s moves one unit toward e when even, as num::fast::sum_to_odd does.
template <bool kOdd>
ACCSIM_F32_FN U sum_bits(F acc, F p) {
  const F s = acc + p;
  if constexpr (!kOdd) {
    return (U)(s);
  } else {
    const F z = s - acc;
    const F e = p - z;
    const U su = (U)(s);
    const U inexact = (U)(e != 0.0f);
    const U down = ((su ^ (U)(e)) >> 31) & inexact;
    return (su - down) | (inexact >> 31);
  }
}

// Per-lane tallies of one kind of rounding (a true mask lane is -1, so
// subtracting counts). "Swamped or exact" is counted in one: a swamped lane
// is inexact, so swamp = that count less the exact one.
struct VectorTally {
  I exact{}, swamp_or_exact{}, underflow{};
  void drain(Tally& t) const {
    for (int l = 0; l < W; ++l) {
      t.exact += static_cast<std::uint32_t>(exact[l]);
      t.swamp += static_cast<std::uint32_t>(swamp_or_exact[l] - exact[l]);
      t.underflow += static_cast<std::uint32_t>(underflow[l]);
    }
  }
};

// One vector of a sum step, split so that every vector is tested before any
// is committed: the sum's bits, and whether a lane needs the fallback.
struct Pending {
  U u, a;
  I tiny;
};
template <bool kOdd, bool kFtz>
ACCSIM_F32_FN Pending pend(const F32Rounder& r, F acc, F addend, I& special) {
  Pending out;
  out.u = sum_bits<kOdd>(acc, addend);
  out.a = out.u & kMagnitude;
  out.tiny = tiny_lanes(r, out.a);
  special |= big_lanes(r, out.a);
  if constexpr (!kFtz) special |= out.tiny;  // subnormal rounding: the fallback's
  return out;
}
template <Rounding Mode, bool kFtz>
ACCSIM_F32_FN void commit(const F32Rounder& r, F& acc, const Pending& s, VectorTally& t) {
  const I flush = kFtz ? s.tiny : I{};
  const U m = round_bits<Mode>(r, s.u, flush);
  const I exact = (I)(m == s.u);
  t.exact -= exact;
  // Swamped: a non-zero addend, and the accumulator kept its bits (the
  // sum, exact or odd, then differs from them, so the lane is inexact; a
  // zero addend leaves an exact sum).
  t.swamp_or_exact -= (I)(m == (U)(acc)) | exact;
  if constexpr (kFtz) t.underflow -= s.tiny;
  acc = (F)(m);
}

// A product rounded into the product format (kProduct), or left exact.
struct Product {
  F value;  // the addend
  I exact, underflow;
};
template <Rounding Mode>
ACCSIM_F32_FN Product round_product(const F32Rounder& r, I ftz, F p, I& special) {
  const U u = (U)(p), a = u & kMagnitude;
  const I tiny = tiny_lanes(r, a);
  special |= big_lanes(r, a) | (tiny & ~ftz);
  const I flush = tiny & ftz;
  const U m = round_bits<Mode>(r, u, flush);
  return {(F)(m), (I)(m == u), flush};
}

ACCSIM_F32_FN void slow(const Job& job, F& acc, F p) {
  alignas(64) float accs[W], products[W];
  store(accs, acc);
  store(products, p);
  slow_step(*job.plan, accs, products, W, job.tallies);
  acc = load(accs);
}

// The chunk sums of one row of A against one panel. kProduct: 0 for exact
// products, else the product format's mode (1: rtz, 2: rne), its
// flush-to-zero read at run time.
template <Rounding AccMode, bool kAccFtz, bool kOdd, int kProduct>
ACCSIM_F32_FN void panel_kernel(const Job& job) {
  constexpr Rounding kProdMode = kProduct == 2 ? Rounding::rne : Rounding::rtz;
  const F32Rounder acc_r = job.plan->accumulate;
  const F32Rounder prod_r = kProduct != 0 ? *job.plan->product : F32Rounder{};
  const I prod_ftz = I{} - (prod_r.ftz ? 1 : 0);
  VectorTally product_tally, acc_tally;
  std::size_t chunks = 0;
  for (std::size_t c0 = 0; c0 < job.k; c0 += job.chunk, ++chunks) {
    const std::size_t c1 = job.k - c0 < job.chunk ? job.k : c0 + job.chunk;
    // Named, not an array: GCC would keep an array in memory.
    F acc0{}, acc1{}, acc2{}, acc3{};
    for (std::size_t kk = c0; kk < c1; ++kk) {
      const F av = broadcast(job.a_row[kk]);
      const float* brow = job.panel + kk * kWidth;
      // Exact: plan_f32 checked the products' significands and range.
      const F p0 = av * load(brow), p1 = av * load(brow + W), p2 = av * load(brow + 2 * W),
              p3 = av * load(brow + 3 * W);
      I special{};
      Product q0{p0, I{}, I{}}, q1{p1, I{}, I{}}, q2{p2, I{}, I{}}, q3{p3, I{}, I{}};
      if constexpr (kProduct != 0) {
        q0 = round_product<kProdMode>(prod_r, prod_ftz, p0, special);
        q1 = round_product<kProdMode>(prod_r, prod_ftz, p1, special);
        q2 = round_product<kProdMode>(prod_r, prod_ftz, p2, special);
        q3 = round_product<kProdMode>(prod_r, prod_ftz, p3, special);
      }
      const Pending s0 = pend<kOdd, kAccFtz>(acc_r, acc0, q0.value, special);
      const Pending s1 = pend<kOdd, kAccFtz>(acc_r, acc1, q1.value, special);
      const Pending s2 = pend<kOdd, kAccFtz>(acc_r, acc2, q2.value, special);
      const Pending s3 = pend<kOdd, kAccFtz>(acc_r, acc3, q3.value, special);
      if (any(special)) [[unlikely]] {
        // An overflow (or a tiny sum to round onto subnormals) somewhere in
        // this step: the whole step through the double rounders.
        slow(job, acc0, p0);
        slow(job, acc1, p1);
        slow(job, acc2, p2);
        slow(job, acc3, p3);
        continue;
      }
      if constexpr (kProduct != 0) {
        product_tally.exact -= q0.exact + q1.exact + q2.exact + q3.exact;
        product_tally.underflow -= q0.underflow + q1.underflow + q2.underflow + q3.underflow;
      }
      commit<AccMode, kAccFtz>(acc_r, acc0, s0, acc_tally);
      commit<AccMode, kAccFtz>(acc_r, acc1, s1, acc_tally);
      commit<AccMode, kAccFtz>(acc_r, acc2, s2, acc_tally);
      commit<AccMode, kAccFtz>(acc_r, acc3, s3, acc_tally);
    }
    float* out = job.chunk_sums + chunks * kWidth;
    store(out, acc0);
    store(out + W, acc1);
    store(out + 2 * W, acc2);
    store(out + 3 * W, acc3);
  }
  product_tally.swamp_or_exact = product_tally.exact;  // a product never swamps
  product_tally.drain(job.tallies[0]);
  acc_tally.drain(job.tallies[1]);
}

// Merges the chunk sums of each column in order (chunk 0 first) into the
// merge format, starting from +0 (a single chunk too, as the general path).
template <Rounding Mode, bool kFtz, bool kOdd>
ACCSIM_F32_FN void merge_kernel(const Job& job, std::size_t chunks) {
  const F32Rounder r = *job.plan->merge;
  VectorTally tally;
  for (int v = 0; v < kVectors; ++v) {
    F merged{};
    for (std::size_t c = 0; c < chunks; ++c) {
      const F addend = load(job.chunk_sums + c * kWidth + v * W);
      I special{};
      const Pending s = pend<kOdd, kFtz>(r, merged, addend, special);
      if (any(special)) [[unlikely]] {
        alignas(64) float m[W], sums[W];
        store(m, merged);
        store(sums, addend);
        slow_merge(*job.plan, m, sums, W, job.tallies);
        merged = load(m);
        continue;
      }
      commit<Mode, kFtz>(r, merged, s, tally);
    }
    store(job.out + v * W, merged);
  }
  tally.drain(job.tallies[2]);
}

template <Rounding AccMode, bool kAccFtz, bool kOdd, int kProduct>
ACCSIM_F32_ENTRY void run_panel(const Job& job) {
  panel_kernel<AccMode, kAccFtz, kOdd, kProduct>(job);
}
template <Rounding Mode, bool kFtz, bool kOdd>
ACCSIM_F32_ENTRY void run_merge(const Job& job) {
  merge_kernel<Mode, kFtz, kOdd>(job, (job.k + job.chunk - 1) / job.chunk);
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

}  // namespace

Kernel select(const F32Plan& plan) {
  const F32Rounder& acc = plan.accumulate;
  const int product = !plan.product ? 0 : plan.product->mode == Rounding::rne ? 2 : 1;
  Kernel kernel;
  kernel.width = kWidth;
  kernel.panel = with_mode(acc.mode, [&]<Rounding A>() {
    return with_bool(acc.ftz, [&]<bool AF>() {
      return with_bool(acc.odd_sum, [&]<bool AO>() -> KernelFn {
        if (product == 0) return &run_panel<A, AF, AO, 0>;
        if (product == 1) return &run_panel<A, AF, AO, 1>;
        return &run_panel<A, AF, AO, 2>;
      });
    });
  });
  if (plan.merge) {
    kernel.merge = with_mode(plan.merge->mode, [&]<Rounding M>() {
      return with_bool(plan.merge->ftz, [&]<bool MF>() {
        return with_bool(plan.merge->odd_sum, [&]<bool MO>() -> KernelFn { return &run_merge<M, MF, MO>; });
      });
    });
  }
  return kernel;
}

}  // namespace accsim::ref::f32::ACCSIM_F32_NS
