// What the float lanes' per-ISA translation units share with lanes_f32.cpp:
// plain data and function pointers only (no vector type crosses between
// code built for different ISAs).
#pragma once

#include <cstddef>
#include <cstdint>

#include "models/reference/fast_plan.hpp"

namespace accsim::ref::f32 {

// Raw counts of one kind of rounding over every lane of a panel, padding
// lanes included (which only ever round +-0 exactly, without events).
struct Tally {
  std::uint64_t exact = 0, swamp = 0, overflow = 0, underflow = 0;
};

// A block of rows of A against one panel of B (`width` columns,
// zero-padded).
struct Job {
  const float* a_rows;   // `rows` rows of k values
  std::size_t rows;
  const float* panel;    // k rows of `width` values, kF32PanelCols apart (F32Operands' B)
  std::size_t k, chunk;  // chunk == k: sequential
  const F32Plan* plan;
  float* chunk_sums;     // per row, ceil(k / chunk) rows of `width` chunk sums
  float* out;            // per row, `width` merged results (merge kernels only)
  Tally* tallies;        // [3]: product, accumulate, merge; added to
};
using KernelFn = void (*)(const Job&);

// Each ISA's kernels for a plan: the chunk sums of a panel, their merge
// (chunked orders only), and the panel width (lanes per vector times
// vectors per panel). Every step keeps four vectors of sums in flight: a
// panel of four vectors a row at a time, or (narrow) a panel of one vector
// four rows at a time, for a GEMM's last few columns. Defined in
// lanes_f32_<isa>.cpp.
struct Kernel {
  KernelFn panel = nullptr;
  KernelFn merge = nullptr;
  std::size_t width = 0;
};
Kernel select_avx512(const F32Plan& plan, bool narrow);
Kernel select_avx2(const F32Plan& plan, bool narrow);
Kernel select_baseline(const F32Plan& plan, bool narrow);

// The fallback of one vector's step where some lane overflows (or is tiny
// in a format with subnormals): every lane through plan_fast's double
// rounders (num::fast's scalar entry points). `products` are the exact
// products, or (rounded) already rounded and counted; `acc` is updated in
// place. Defined in lanes_f32.cpp.
void slow_step(const F32Plan& plan, float* acc, const float* products, bool rounded, int lanes, Tally* tallies);
// The same for one vector of the merge: merged += sums, in the merge format.
void slow_merge(const F32Plan& plan, float* merged, const float* sums, int lanes, Tally* tallies);

}  // namespace accsim::ref::f32
