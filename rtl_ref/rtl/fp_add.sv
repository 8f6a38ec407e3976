`include "fp_defs.svh"

// Accumulator adder with an encoded addend (accsim::num::add): the addend,
// in its own format (a product format, or the accumulator's own for a plain
// adder), is decoded and added by fp_acc, rounding once. The unit the area
// grid synthesizes for "an accumulator of format X".
module fp_add #(
    parameter int ACC_EXP_W = 4,
    parameter int ACC_MAN_W = 7,
    parameter int ACC_BIAS = (1 << (ACC_EXP_W - 1)) - 1,
    parameter int ACC_ROUND = `FP_RNE,
    parameter int ACC_SUBNORMALS = 1,
    parameter int ACC_SPECIALS = `FP_SPECIALS_NONE,
    parameter int ACC_SATURATE = 1,
    parameter int ADD_EXP_W = ACC_EXP_W,
    parameter int ADD_MAN_W = ACC_MAN_W,
    parameter int ADD_BIAS = ACC_BIAS,
    parameter int ADD_SPECIALS = ACC_SPECIALS
) (
    input logic [ACC_EXP_W+ACC_MAN_W:0] acc,
    input logic [ADD_EXP_W+ADD_MAN_W:0] addend,
    input logic [31:0] sr_rand,  // the draw for ACC_ROUND == FP_SR
    output logic [ACC_EXP_W+ACC_MAN_W:0] sum,
    output logic [4:0] events
);
  localparam int DX = `FP_EXP_XW(ADD_EXP_W, ADD_BIAS);
  logic d_sign, d_zero, d_inf, d_nan;
  logic signed [DX-1:0] d_exp;
  logic [ADD_MAN_W:0] d_sig;

  fp_decode #(
      .EXP_W(ADD_EXP_W),
      .MAN_W(ADD_MAN_W),
      .BIAS(ADD_BIAS),
      .SPECIALS(ADD_SPECIALS),
      .XW(DX)
  ) u_dec (
      .bits(addend),
      .sign(d_sign),
      .is_zero(d_zero),
      .is_inf(d_inf),
      .is_nan(d_nan),
      .exp(d_exp),
      .sig(d_sig)
  );
  fp_acc #(
      .ACC_EXP_W(ACC_EXP_W),
      .ACC_MAN_W(ACC_MAN_W),
      .ACC_BIAS(ACC_BIAS),
      .ACC_ROUND(ACC_ROUND),
      .ACC_SUBNORMALS(ACC_SUBNORMALS),
      .ACC_SPECIALS(ACC_SPECIALS),
      .ACC_SATURATE(ACC_SATURATE),
      .ADD_SIG_W(ADD_MAN_W + 1),
      .ADD_EXP_W(DX)
  ) u_acc (
      .acc(acc),
      .add_sign(d_sign),
      .add_zero(d_zero),
      .add_inf(d_inf),
      .add_nan(d_nan),
      .add_exp(d_exp),
      .add_sig(d_sig),
      .sr_rand(sr_rand),
      .sum(sum),
      .events(events)
  );
endmodule
