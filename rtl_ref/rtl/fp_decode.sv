`include "fp_defs.svh"

// Unpacks an encoding into sign, class flags, exponent and significand with
// its hidden bit: accsim::num::decode. Exponent field 0 is read as a
// subnormal in every format, ftz ones included (they never produce one, but
// an encoding handed in is still that value), so a subnormal costs only the
// hidden bit's OR and the exponent's "field 0 reads as 1".
module fp_decode #(
    parameter int EXP_W = 4,
    parameter int MAN_W = 3,
    parameter int BIAS = (1 << (EXP_W - 1)) - 1,
    parameter int SPECIALS = `FP_SPECIALS_NONE,
    parameter int XW = `FP_EXP_XW(EXP_W, BIAS)
) (
    input logic [EXP_W+MAN_W:0] bits,
    output logic sign,
    output logic is_zero,
    output logic is_inf,
    output logic is_nan,
    output logic signed [XW-1:0] exp,  // sig[MAN_W] weighs 2^exp
    output logic [MAN_W:0] sig
);
  logic [EXP_W-1:0] field;
  logic [MAN_W-1:0] frac;
  logic top, hidden;

  always_comb begin
    sign = bits[EXP_W+MAN_W];
    field = bits[MAN_W+:EXP_W];
    frac = bits[MAN_W-1:0];
    top = &field;
    hidden = |field;
    case (SPECIALS)
      `FP_SPECIALS_IEEE: begin
        is_nan = top && |frac;
        is_inf = top && !(|frac);
      end
      `FP_SPECIALS_FN: begin
        is_nan = top && &frac;
        is_inf = 1'b0;
      end
      default: begin
        is_nan = 1'b0;
        is_inf = 1'b0;
      end
    endcase
    is_zero = !hidden && !(|frac);
    sig = {hidden, frac};
    // Field 0 sits on the same grid as field 1; modular arithmetic in XW bits
    // is exact because the true exponent fits.
    exp = XW'({field[EXP_W-1:1], field[0] | !hidden}) - XW'(BIAS);
  end
endmodule
