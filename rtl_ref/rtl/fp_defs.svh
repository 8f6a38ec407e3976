// Shared constants and width formulas of the reference RTL. Macros rather
// than a package: both Verilator 5.006 and Yosys 0.23 accept them in
// parameter port lists, where callers need the same widths as callees.
`ifndef ACCSIM_FP_DEFS_SVH
`define ACCSIM_FP_DEFS_SVH

// Rounding modes, numbered as accsim::num::Rounding.
`define FP_RNE 0  // nearest, ties to even
`define FP_RNA 1  // nearest, ties away from zero
`define FP_RTZ 2  // toward zero (the paper's accumulator)
`define FP_RD 3   // toward -infinity
`define FP_RU 4   // toward +infinity
`define FP_SR 5   // stochastic: the 32-bit draw comes in on a port

// Reserved encodings, numbered as accsim::num::Specials.
`define FP_SPECIALS_NONE 0  // every encoding is finite (the paper's accumulators)
`define FP_SPECIALS_IEEE 1  // top exponent field: infinity (fraction 0) or NaN
`define FP_SPECIALS_FN 2    // OCP E4M3: only S.1..1.1..1 is NaN, no infinity

// Event bits, numbered as accsim::num::Events.
`define FP_EV_OVERFLOW 0
`define FP_EV_UNDERFLOW 1
`define FP_EV_SWAMP 2
`define FP_EV_INEXACT 3
`define FP_EV_INVALID 4

`define FP_MAX(a, b) (((a) > (b)) ? (a) : (b))
// Bits of a two's-complement signal that holds every integer in [lo, hi].
`define FP_SBITS(lo, hi) ($clog2(`FP_MAX(-(lo), (hi) + 1)) + 1)
// Signed width of a decoded exponent (that of the hidden bit): every field
// value, the subnormal field 0 included, lies in [1 - bias, 2^E - 1 - bias].
`define FP_EXP_XW(E, BIAS) `FP_SBITS(1 - (BIAS), (1 << (E)) - 1 - (BIAS))
// Signed width of an exact product's exponent (that of its top bit, which
// has weight 2 in [1,4)): ea + eb + 1.
`define FP_PROD_XW(E, BIAS) `FP_SBITS(2 * (1 - (BIAS)) + 1, 2 * ((1 << (E)) - 1 - (BIAS)) + 1)

`endif
