`include "fp_defs.svh"

// Product of two encodings rounded once into a product format
// (accsim::num::multiply): fp_mul's exact product through round_pack.
module fp_mul_round #(
    parameter int A_EXP_W = 4,
    parameter int A_MAN_W = 3,
    parameter int A_BIAS = (1 << (A_EXP_W - 1)) - 1,
    parameter int A_SPECIALS = `FP_SPECIALS_NONE,
    parameter int P_EXP_W = 4,
    parameter int P_MAN_W = 7,
    parameter int P_BIAS = (1 << (P_EXP_W - 1)) - 1,
    parameter int P_ROUND = `FP_RNE,
    parameter int P_SUBNORMALS = 1,
    parameter int P_SPECIALS = `FP_SPECIALS_NONE,
    parameter int P_SATURATE = 1
) (
    input logic [A_EXP_W+A_MAN_W:0] a,
    input logic [A_EXP_W+A_MAN_W:0] b,
    input logic [31:0] sr_rand,  // the draw for P_ROUND == FP_SR
    output logic [P_EXP_W+P_MAN_W:0] p,
    output logic [4:0] events
);
  localparam int XW = `FP_PROD_XW(A_EXP_W, A_BIAS);
  localparam int SIG_W = 2 * (A_MAN_W + 1);

  logic sign, is_zero, is_inf, is_nan;
  logic signed [XW-1:0] exp;
  logic [SIG_W-1:0] sig;

  fp_mul #(
      .EXP_W(A_EXP_W),
      .MAN_W(A_MAN_W),
      .BIAS(A_BIAS),
      .SPECIALS(A_SPECIALS),
      .XW(XW),
      .SIG_W(SIG_W)
  ) u_mul (
      .a(a),
      .b(b),
      .sign(sign),
      .is_zero(is_zero),
      .is_inf(is_inf),
      .is_nan(is_nan),
      .exp(exp),
      .sig(sig)
  );

  round_pack #(
      .EXP_W(P_EXP_W),
      .MAN_W(P_MAN_W),
      .BIAS(P_BIAS),
      .ROUND(P_ROUND),
      .SUBNORMALS(P_SUBNORMALS),
      .SPECIALS(P_SPECIALS),
      .SATURATE(P_SATURATE),
      .SIG_W(SIG_W),
      .IN_EXP_W(XW)
  ) u_round (
      .sign(sign),
      .is_zero(is_zero),
      .is_inf(is_inf),
      .is_nan(is_nan),
      .exp(exp),
      .sig(sig),
      .sticky(1'b0),
      .sr_rand(sr_rand),
      .bits(p),
      .events(events)
  );
endmodule
