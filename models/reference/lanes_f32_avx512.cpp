// The float lanes built for AVX-512 (F, BW, DQ, VL): 16 lanes per vector.
// Every function carries the target attribute (see lanes_f32_kernel.ipp).
#include <immintrin.h>

#define ACCSIM_F32_NS avx512
#define ACCSIM_F32_W 16
#define ACCSIM_F32_ENTRY __attribute__((target("avx2,fma,avx512f,avx512bw,avx512dq,avx512vl")))
#define ACCSIM_F32_FN ACCSIM_F32_ENTRY inline __attribute__((always_inline))
// (Masks are AVX-512's mask registers: no ACCSIM_F32_ANY.)
#include "models/reference/lanes_f32_kernel.ipp"

namespace accsim::ref::f32 {
Kernel select_avx512(const F32Plan& plan, bool narrow) { return avx512::select(plan, narrow); }
}  // namespace accsim::ref::f32
