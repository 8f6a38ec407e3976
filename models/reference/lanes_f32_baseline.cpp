// The float lanes for any x86-64 (SSE2): 4 lanes per vector.
#include <emmintrin.h>

#define ACCSIM_F32_NS baseline
#define ACCSIM_F32_W 4
#define ACCSIM_F32_ENTRY
#define ACCSIM_F32_FN inline __attribute__((always_inline))
#define ACCSIM_F32_ANY \
  ACCSIM_F32_FN bool any(I mask) { return _mm_movemask_epi8((__m128i)(mask)) != 0; }
#include "models/reference/lanes_f32_kernel.ipp"

namespace accsim::ref::f32 {
Kernel select_baseline(const F32Plan& plan, bool narrow) { return baseline::select(plan, narrow); }
}  // namespace accsim::ref::f32
