// The float lanes built for AVX2: 8 lanes per vector. Every function
// carries the target attribute (see lanes_f32_kernel.ipp).
#include <immintrin.h>

#define ACCSIM_F32_NS avx2
#define ACCSIM_F32_W 8
#define ACCSIM_F32_ENTRY __attribute__((target("avx2,fma")))
#define ACCSIM_F32_FN ACCSIM_F32_ENTRY inline __attribute__((always_inline))
#define ACCSIM_F32_ANY \
  ACCSIM_F32_FN bool any(I mask) { return !_mm256_testz_si256((__m256i)(mask), (__m256i)(mask)); }
#include "models/reference/lanes_f32_kernel.ipp"

namespace accsim::ref::f32 {
Kernel select_avx2(const F32Plan& plan, bool narrow) { return avx2::select(plan, narrow); }
}  // namespace accsim::ref::f32
