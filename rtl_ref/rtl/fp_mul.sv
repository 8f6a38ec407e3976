`include "fp_defs.svh"

// Exact product of two encodings (accsim::num::exact_product): the full
// 2(M+1)-bit significand product, never rounded, with its exponent and
// class flags. Feed it to fp_acc for a fused MAC, or to round_pack for a
// product format (fp_mul_round).
module fp_mul #(
    parameter int EXP_W = 4,
    parameter int MAN_W = 3,
    parameter int BIAS = (1 << (EXP_W - 1)) - 1,
    parameter int SPECIALS = `FP_SPECIALS_NONE,
    parameter int XW = `FP_PROD_XW(EXP_W, BIAS),
    parameter int SIG_W = 2 * (MAN_W + 1)
) (
    input logic [EXP_W+MAN_W:0] a,
    input logic [EXP_W+MAN_W:0] b,
    output logic sign,
    output logic is_zero,
    output logic is_inf,
    output logic is_nan,
    output logic signed [XW-1:0] exp,  // sig[SIG_W-1] weighs 2^exp
    output logic [SIG_W-1:0] sig
);
  localparam int DX = `FP_EXP_XW(EXP_W, BIAS);

  logic a_sign, a_zero, a_inf, a_nan, b_sign, b_zero, b_inf, b_nan;
  logic signed [DX-1:0] a_exp, b_exp;
  logic [MAN_W:0] a_sig, b_sig;

  fp_decode #(
      .EXP_W(EXP_W),
      .MAN_W(MAN_W),
      .BIAS(BIAS),
      .SPECIALS(SPECIALS),
      .XW(DX)
  ) u_dec_a (
      .bits(a),
      .sign(a_sign),
      .is_zero(a_zero),
      .is_inf(a_inf),
      .is_nan(a_nan),
      .exp(a_exp),
      .sig(a_sig)
  );
  fp_decode #(
      .EXP_W(EXP_W),
      .MAN_W(MAN_W),
      .BIAS(BIAS),
      .SPECIALS(SPECIALS),
      .XW(DX)
  ) u_dec_b (
      .bits(b),
      .sign(b_sign),
      .is_zero(b_zero),
      .is_inf(b_inf),
      .is_nan(b_nan),
      .exp(b_exp),
      .sig(b_sig)
  );

  always_comb begin
    sign = a_sign ^ b_sign;
    is_nan = a_nan || b_nan || (a_inf && b_zero) || (a_zero && b_inf);
    is_inf = !is_nan && (a_inf || b_inf);
    is_zero = !is_nan && !is_inf && (a_zero || b_zero);
    sig = SIG_W'(a_sig) * SIG_W'(b_sig);
    // 1.x * 1.y lies in [1, 4): the top bit weighs 2^(ea + eb + 1).
    exp = XW'(a_exp) + XW'(b_exp) + XW'(1);
  end
endmodule
