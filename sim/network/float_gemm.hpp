// Plain GEMMs in the machine's own arithmetic, for the two jobs that do not
// need the emulated formats: the FP32 baseline and the exact yardstick of
// the error statistics. Row-major C[m x n] = A[m x k] * B[k x n].
#pragma once

#include <cstddef>
#include <optional>

#include "models/numerics/format.hpp"
#include "models/reference/lanes_f32.hpp"

namespace accsim::net {

// IEEE binary32, sequential and FMA-free: every C element starts at +0 and,
// for k = 0, 1, ..., K-1, becomes fl(c + fl(a * b)), with round-to-nearest-
// even and subnormals (the default floating-point environment). That is
// exactly accsim's --mul fp32 --prod fp32 --acc fp32 with sequential order
// and no scaling (fp32 operands are exact in fp32, each product is rounded
// once into fp32 and each sum once into fp32), at hardware speed;
// tests/network checks the two bit for bit. Lanes of the SIMD loop are
// distinct output columns, so vectorizing never reorders a sum.
void gemm_fp32_sequential(const float* a, const float* b, float* c, std::size_t m, std::size_t k, std::size_t n);

// The yardsticks of the error statistics: C = A·B summed in double,
// sequentially from +0 for k = 0, 1, ..., K-1, where every product is exact
// in double, so each step rounds once (a fused multiply-add where the CPU
// has one gives the same bits as a multiply and an add). Its error, about
// 2^-53 relative per addition, is far below any format accsim studies.
// Float operands: a product of two floats is always exact in double.
void gemm_f64(const float* a, const float* b, double* c, std::size_t m, std::size_t k, std::size_t n);
// The same with A already widened to double (every value a float's): the
// same bits, without widening A on every call (the executor prepares a
// layer's constant weights so once).
void gemm_f64(const double* a, const float* b, double* c, std::size_t m, std::size_t k, std::size_t n);
// Doubles: `exact_products` says that every product is exact in double (the
// caller knows it from the operands' format: products_exact_in_double);
// otherwise each product is rounded and then added, still sequentially.
void gemm_f64(const double* a, const double* b, double* c, std::size_t m, std::size_t k, std::size_t n,
              bool exact_products);
// Whether the product of any two values of `format` is exact in double:
// both significands together within 53 bits, the product's grid inside
// double's (subnormals included).
[[nodiscard]] bool products_exact_in_double(const num::Format& format);
// Whether every partial sum of k such products, in any order, is exact in
// double: the products' grid (num::fast::product_span), widened by the
// ceil(log2 k) bits that k of them can carry, within a double's 53 bits and
// its normal range.
[[nodiscard]] bool sums_exact_in_double(const num::Format& format, std::size_t k);

// The same where every partial sum, in any order, is exact in double
// (sums_exact_in_double): the order then changes no bit, so OpenBLAS's
// dgemm computes it, in whatever order and with whatever kernel it picks on
// this CPU, and gives exactly what gemm_f64 gives.
void gemm_f64_exact_sums(const double* a, const double* b, double* c, std::size_t m, std::size_t k, std::size_t n);

// The same for operands holding values of `format`, where
// sums_exact_in_double(format, k) holds. Every partial sum being exact, any
// exact arithmetic gives those bits: where the format's values are integers
// of at most 15 bits in units of its last place (int16_grid: e3m4, M5E2,
// int8, ...), they are multiplied as int16 and summed two products per
// int32 lane and step (pmaddwd, or VNNI's vpdpwssd: int16_vnni), in blocks
// too short to overflow, whose sums are added in double; on lane_isa()'s
// kernel (AVX-512BW, AVX2, SSE2), four times the values per register of
// dgemm's. Other formats, and operands holding anything off the grid (a
// NaN, an infinity), take gemm_f64_exact_sums.
void gemm_exact_sums(const num::Format& format, const double* a, const double* b, double* c, std::size_t m,
                     std::size_t k, std::size_t n);
// The same for operands holding those values as floats (exact: the
// format's values fit a float) in the float lanes' layout: what a
// convolution lowered straight into that layout hands the lanes.
void gemm_exact_sums(const num::Format& format, const ref::F32Operands& ops, double* c);
// Whether the values of `format` are integers of at most 15 bits (sign
// apart) in units of its last place, 2^lsb of num::fast::span_of.
[[nodiscard]] bool int16_grid(const num::Format& format);
// Whether that kernel, on AVX-512, adds each pair with one VNNI
// instruction (vpdpwssd) in place of AVX-512BW's two: where the CPU has
// VNNI, unless set_int16_vnni(false) turned it off. The bits are the same.
[[nodiscard]] bool int16_vnni();
// Overrides that (nullopt: back to the CPU's choice; true is capped to
// what the CPU runs), so that tests run both kernels on one machine. Not
// for use while a GEMM runs.
void set_int16_vnni(std::optional<bool> use);

}  // namespace accsim::net
