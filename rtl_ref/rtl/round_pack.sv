`include "fp_defs.svh"

// The one rounding routine, as HardFloat's RoundAnyRawFNToRecFN and
// SoftFloat's roundPack: every unit only produces a sign, an exponent, a wide
// significand and a sticky bit, and this module alone knows rounding modes,
// flush-to-zero, subnormals, overflow policies, specials and the events they
// raise. Bit for bit the semantics of accsim::num::round_pack.
//
// The significand need not be normalized (products of subnormals, sums after
// cancellation): a leading-zero count normalizes it first, and a second,
// right shift moves tiny results onto the subnormal grid.
module round_pack #(
    parameter int EXP_W = 4,
    parameter int MAN_W = 7,  // >= 1
    parameter int BIAS = (1 << (EXP_W - 1)) - 1,
    parameter int ROUND = `FP_RNE,
    parameter int SUBNORMALS = 1,
    parameter int SPECIALS = `FP_SPECIALS_NONE,
    parameter int SATURATE = 1,  // only read with IEEE specials
    parameter int SIG_W = 16,    // raw significand width
    parameter int IN_EXP_W = 8   // width of its signed exponent
) (
    input logic sign,
    input logic is_zero,
    input logic is_inf,
    input logic is_nan,
    input logic signed [IN_EXP_W-1:0] exp,  // sig[SIG_W-1] weighs 2^exp
    input logic [SIG_W-1:0] sig,  // non-zero unless a flag is set
    input logic sticky,  // a positive amount lies below sig's last place
    /* verilator lint_off UNUSEDSIGNAL */
    input logic [31:0] sr_rand,  // the stochastic-rounding draw (ROUND == FP_SR)
    /* verilator lint_on UNUSEDSIGNAL */
    output logic [EXP_W+MAN_W:0] bits,
    output logic [4:0] events
);
  localparam int EMIN = 1 - BIAS;
  localparam int EMAX = (1 << EXP_W) - ((SPECIALS == `FP_SPECIALS_IEEE) ? 2 : 1) - BIAS;
  // Bits kept exactly below the last kept place: the round bit and one more
  // that the sticky collects, or for stochastic rounding the 32-bit fraction
  // it compares with the draw, and one more.
  localparam int DISC_W = (ROUND == `FP_SR) ? 33 : 2;
  localparam int NW = `FP_MAX(SIG_W, MAN_W + 1 + DISC_W);
  localparam int DW = NW - MAN_W - 1;  // discarded-bit width, >= DISC_W
  localparam int LZ_W = $clog2(NW + 1);
  // Exponent arithmetic width: holds exp - lz, the format's exponent range
  // and its biased field, with a bit to spare for the rounding carry.
  localparam int RX = `FP_MAX(`FP_MAX(IN_EXP_W, LZ_W + 1),
                              `FP_MAX(EXP_W + 1, `FP_SBITS(EMIN, EMAX))) + 2;

  localparam logic signed [RX-1:0] EMIN_X = RX'(EMIN);
  localparam logic signed [RX-1:0] EMAX_X = RX'(EMAX);
  localparam logic signed [RX-1:0] BIAS_X = RX'(BIAS);
  localparam logic [EXP_W-1:0] EMAX_FIELD = EXP_W'(EMAX + BIAS);
  localparam logic [EXP_W-1:0] TOP_FIELD = {EXP_W{1'b1}};
  // OCP E4M3: S.1111.111 is NaN, so the largest finite fraction is 1..10.
  localparam logic [MAN_W-1:0] MAX_FRAC =
      {MAN_W{1'b1}} ^ MAN_W'((SPECIALS == `FP_SPECIALS_FN) ? 1 : 0);
  localparam logic [MAN_W-1:0] NAN_FRAC =
      (SPECIALS == `FP_SPECIALS_FN) ? {MAN_W{1'b1}} : MAN_W'(1) << (MAN_W - 1);
  localparam bit HAS_INF = SPECIALS == `FP_SPECIALS_IEEE;
  localparam bit HAS_NAN = SPECIALS != `FP_SPECIALS_NONE;
  localparam bit OVERFLOW_TO_INF = HAS_INF && SATURATE == 0;

  function automatic logic [LZ_W-1:0] leading_zeros(input logic [NW-1:0] x);
    leading_zeros = LZ_W'(NW);
    for (int i = 0; i < NW; i++) if (x[i]) leading_zeros = LZ_W'(NW - 1 - i);
  endfunction

  logic [NW-1:0] sig_n, norm, den, mant;
  logic [LZ_W-1:0] lz;
  logic signed [RX-1:0] top_exp, den_shift, e_res;
  logic tiny, den_sticky, use_den;
  logic [MAN_W:0] kept;
  logic [DW-1:0] disc;
  logic round_bit, below_round, inexact, inc, carry, overflow;
  logic [MAN_W+1:0] kept_r;
  logic [EXP_W-1:0] field;
  logic [MAN_W-1:0] frac;
  logic [EXP_W+MAN_W:0] max_bits, inf_bits, overflow_bits;

  always_comb begin
    // Normalize: the leading one to the top (exact, nothing is lost).
    sig_n = NW'(sig) << (NW - SIG_W);
    lz = leading_zeros(sig_n);
    norm = sig_n << lz;
    top_exp = RX'(exp) - $signed(RX'(lz));  // floor(log2 |x|)
    tiny = top_exp < EMIN_X;  // tininess before rounding

    // Below 2^emin the grid is the subnormal one: shift right onto it and
    // keep what falls off as sticky.
    den_shift = EMIN_X - top_exp;
    den = norm >> den_shift;
    den_sticky = |(norm & ~({NW{1'b1}} << den_shift));
    use_den = (SUBNORMALS != 0) && tiny;
    mant = use_den ? den : norm;

    kept = mant[NW-1-:MAN_W+1];
    disc = mant[DW-1:0];
    round_bit = disc[DW-1];
    below_round = |disc[DW-2:0] || sticky || (use_den && den_sticky);
    inexact = round_bit || below_round;
  end

  generate
    if (ROUND == `FP_SR) begin : g_sr
      // Away from zero iff frac * 2^32 > r; frac's top 32 bits are exact
      // in disc, anything below says whether frac * 2^32 exceeds them.
      logic [31:0] frac32;
      logic below32;
      always_comb begin
        frac32 = disc[DW-1-:32];
        below32 = |disc[DW-33:0] || sticky || (use_den && den_sticky);
        inc = inexact && (frac32 > sr_rand || (frac32 == sr_rand && below32));
      end
    end else begin : g_det
      always_comb begin
        case (ROUND)
          `FP_RNE: inc = round_bit && (below_round || kept[0]);
          `FP_RNA: inc = round_bit;
          `FP_RD: inc = inexact && sign;
          `FP_RU: inc = inexact && !sign;
          default: inc = 1'b0;  // rtz
        endcase
      end
    end
  endgenerate

  always_comb begin
    kept_r = {1'b0, kept} + (MAN_W + 2)'(inc);
    if (use_den) begin
      // Subnormal grid: a carry into the hidden bit makes the smallest
      // normal, whose field is 1; a zero here is the signed zero.
      carry = 1'b0;
      e_res = EMIN_X;
      field = EXP_W'(kept_r[MAN_W]);
      frac = kept_r[MAN_W-1:0];
      overflow = 1'b0;
    end else begin
      // Rounding up 1.11..1 carries into the next binade as 1.00..0.
      carry = kept_r[MAN_W+1];
      e_res = top_exp + $signed(RX'(carry));
      frac = carry ? '0 : kept_r[MAN_W-1:0];
      // Overflow is judged after rounding, with the exponent unbounded.
      overflow = e_res > EMAX_X || (e_res == EMAX_X && SPECIALS == `FP_SPECIALS_FN &&
                                    &frac);
      field = EXP_W'(e_res + BIAS_X);
    end

    max_bits = {sign, EMAX_FIELD, MAX_FRAC};
    inf_bits = {sign, TOP_FIELD, {MAN_W{1'b0}}};
    // IEEE 754 7.4: overflow goes to infinity unless the rounding points
    // back toward zero; formats without infinity always saturate.
    if (!OVERFLOW_TO_INF) overflow_bits = max_bits;
    else
      case (ROUND)
        `FP_RTZ: overflow_bits = max_bits;
        `FP_RU: overflow_bits = sign ? max_bits : inf_bits;
        `FP_RD: overflow_bits = sign ? inf_bits : max_bits;
        default: overflow_bits = inf_bits;
      endcase

    events = '0;
    if (is_nan) begin
      bits = HAS_NAN ? {1'b0, TOP_FIELD, NAN_FRAC} : '0;
      events[`FP_EV_INVALID] = 1'b1;
    end else if (is_inf) begin
      bits = HAS_INF ? inf_bits : max_bits;
      events[`FP_EV_OVERFLOW] = !HAS_INF;
      events[`FP_EV_INEXACT] = !HAS_INF;
    end else if (is_zero) begin
      bits = {sign, {(EXP_W + MAN_W) {1'b0}}};
    end else if (tiny && SUBNORMALS == 0) begin
      // Flush before rounding: hardware without subnormals zeroes the result.
      bits = {sign, {(EXP_W + MAN_W) {1'b0}}};
      events[`FP_EV_UNDERFLOW] = 1'b1;
      events[`FP_EV_INEXACT] = 1'b1;
    end else begin
      bits = overflow ? overflow_bits : {sign, field, frac};
      events[`FP_EV_OVERFLOW] = overflow;
      events[`FP_EV_UNDERFLOW] = tiny;
      events[`FP_EV_INEXACT] = inexact || overflow;
    end
  end
endmodule
