`include "fp_defs.svh"

// Test wrapper, not reference RTL: one floating-point configuration with
// every unit the harness checks, behind uniform 64-bit ports so that one
// generated top holds all configurations in a single Verilated model.
//   m_*       fp_mul: exact product of a, b
//   p_*       fp_mul_round: a * b rounded into the product format
//   fused_*   fp_acc: acc + exact product of a, b            (num::mac, no product format)
//   add_*     fp_add: acc + p_in, a product-format encoding          (num::add)
//   pe_*      pe, clocked by clk
/* verilator lint_off UNUSEDSIGNAL */
module check_unit #(
    parameter int A_EXP_W = 4,
    parameter int A_MAN_W = 3,
    parameter int A_BIAS = 7,
    parameter int A_SPECIALS = 2,
    parameter int P_EXP_W = 4,
    parameter int P_MAN_W = 7,
    parameter int P_BIAS = 12,
    parameter int P_ROUND = 2,
    parameter int P_SUBNORMALS = 0,
    parameter int P_SPECIALS = 0,
    parameter int P_SATURATE = 1,
    parameter int ACC_EXP_W = 4,
    parameter int ACC_MAN_W = 7,
    parameter int ACC_BIAS = 10,
    parameter int ACC_ROUND = 2,
    parameter int ACC_SUBNORMALS = 0,
    parameter int ACC_SPECIALS = 0,
    parameter int ACC_SATURATE = 1,
    parameter int PE_PRODUCT_ROUNDED = 1
) (
    input logic clk,
    input logic [63:0] a,
    input logic [63:0] b,
    input logic [63:0] acc,
    input logic [63:0] p_in,
    input logic [63:0] sr_prod,
    input logic [63:0] sr_acc,
    input logic [63:0] pe_ctl,  // {.., clear, valid, rst_n}
    input logic [63:0] pe_a,
    input logic [63:0] pe_b,
    input logic [63:0] pe_sr,  // {sr_acc, sr_prod}
    output logic [63:0] m_flags,  // {nan, inf, zero, sign}
    output logic [63:0] m_exp,  // sign-extended
    output logic [63:0] m_sig,
    output logic [63:0] p_bits,
    output logic [63:0] p_events,
    output logic [63:0] fused_sum,
    output logic [63:0] fused_events,
    output logic [63:0] add_sum,
    output logic [63:0] add_events,
    output logic [63:0] pe_acc,
    output logic [63:0] pe_status  // {out_valid, prod_events[4:0], acc_events[4:0]} at 16, 8, 0
);
  localparam int A_W = 1 + A_EXP_W + A_MAN_W;
  localparam int P_W = 1 + P_EXP_W + P_MAN_W;
  localparam int ACC_W = 1 + ACC_EXP_W + ACC_MAN_W;
  localparam int PX = `FP_PROD_XW(A_EXP_W, A_BIAS);
  localparam int PW = 2 * (A_MAN_W + 1);

  logic m_sign, m_zero, m_inf, m_nan;
  logic signed [PX-1:0] m_e;
  logic [PW-1:0] m_s;
  fp_mul #(
      .EXP_W(A_EXP_W),
      .MAN_W(A_MAN_W),
      .BIAS(A_BIAS),
      .SPECIALS(A_SPECIALS)
  ) u_mul (
      .a(a[A_W-1:0]),
      .b(b[A_W-1:0]),
      .sign(m_sign),
      .is_zero(m_zero),
      .is_inf(m_inf),
      .is_nan(m_nan),
      .exp(m_e),
      .sig(m_s)
  );
  assign m_flags = {60'd0, m_nan, m_inf, m_zero, m_sign};
  assign m_exp = 64'($signed(m_e));
  assign m_sig = 64'(m_s);

  logic [P_W-1:0] p;
  logic [4:0] p_ev;
  fp_mul_round #(
      .A_EXP_W(A_EXP_W),
      .A_MAN_W(A_MAN_W),
      .A_BIAS(A_BIAS),
      .A_SPECIALS(A_SPECIALS),
      .P_EXP_W(P_EXP_W),
      .P_MAN_W(P_MAN_W),
      .P_BIAS(P_BIAS),
      .P_ROUND(P_ROUND),
      .P_SUBNORMALS(P_SUBNORMALS),
      .P_SPECIALS(P_SPECIALS),
      .P_SATURATE(P_SATURATE)
  ) u_mul_round (
      .a(a[A_W-1:0]),
      .b(b[A_W-1:0]),
      .sr_rand(sr_prod[31:0]),
      .p(p),
      .events(p_ev)
  );
  assign p_bits = 64'(p);
  assign p_events = 64'(p_ev);

  logic [ACC_W-1:0] f_sum;
  logic [4:0] f_ev;
  fp_acc #(
      .ACC_EXP_W(ACC_EXP_W),
      .ACC_MAN_W(ACC_MAN_W),
      .ACC_BIAS(ACC_BIAS),
      .ACC_ROUND(ACC_ROUND),
      .ACC_SUBNORMALS(ACC_SUBNORMALS),
      .ACC_SPECIALS(ACC_SPECIALS),
      .ACC_SATURATE(ACC_SATURATE),
      .ADD_SIG_W(PW),
      .ADD_EXP_W(PX)
  ) u_fused (
      .acc(acc[ACC_W-1:0]),
      .add_sign(m_sign),
      .add_zero(m_zero),
      .add_inf(m_inf),
      .add_nan(m_nan),
      .add_exp(m_e),
      .add_sig(m_s),
      .sr_rand(sr_acc[31:0]),
      .sum(f_sum),
      .events(f_ev)
  );
  assign fused_sum = 64'(f_sum);
  assign fused_events = 64'(f_ev);

  logic [ACC_W-1:0] a_sum;
  logic [4:0] a_ev;
  fp_add #(
      .ACC_EXP_W(ACC_EXP_W),
      .ACC_MAN_W(ACC_MAN_W),
      .ACC_BIAS(ACC_BIAS),
      .ACC_ROUND(ACC_ROUND),
      .ACC_SUBNORMALS(ACC_SUBNORMALS),
      .ACC_SPECIALS(ACC_SPECIALS),
      .ACC_SATURATE(ACC_SATURATE),
      .ADD_EXP_W(P_EXP_W),
      .ADD_MAN_W(P_MAN_W),
      .ADD_BIAS(P_BIAS),
      .ADD_SPECIALS(P_SPECIALS)
  ) u_add (
      .acc(acc[ACC_W-1:0]),
      .addend(p_in[P_W-1:0]),
      .sr_rand(sr_acc[31:0]),
      .sum(a_sum),
      .events(a_ev)
  );
  assign add_sum = 64'(a_sum);
  assign add_events = 64'(a_ev);

  logic [A_W-1:0] pe_a_out, pe_b_out;
  logic pe_valid;
  logic [ACC_W-1:0] pe_acc_q;
  logic [4:0] pe_acc_ev, pe_prod_ev;
  pe #(
      .A_EXP_W(A_EXP_W),
      .A_MAN_W(A_MAN_W),
      .A_BIAS(A_BIAS),
      .A_SPECIALS(A_SPECIALS),
      .PRODUCT_ROUNDED(PE_PRODUCT_ROUNDED),
      .P_EXP_W(P_EXP_W),
      .P_MAN_W(P_MAN_W),
      .P_BIAS(P_BIAS),
      .P_ROUND(P_ROUND),
      .P_SUBNORMALS(P_SUBNORMALS),
      .P_SPECIALS(P_SPECIALS),
      .P_SATURATE(P_SATURATE),
      .ACC_EXP_W(ACC_EXP_W),
      .ACC_MAN_W(ACC_MAN_W),
      .ACC_BIAS(ACC_BIAS),
      .ACC_ROUND(ACC_ROUND),
      .ACC_SUBNORMALS(ACC_SUBNORMALS),
      .ACC_SPECIALS(ACC_SPECIALS),
      .ACC_SATURATE(ACC_SATURATE)
  ) u_pe (
      .clk(clk),
      .rst_n(pe_ctl[0]),
      .in_valid(pe_ctl[1]),
      .in_clear(pe_ctl[2]),
      .a(pe_a[A_W-1:0]),
      .b(pe_b[A_W-1:0]),
      .sr_prod(pe_sr[31:0]),
      .sr_acc(pe_sr[63:32]),
      .a_out(pe_a_out),
      .b_out(pe_b_out),
      .out_valid(pe_valid),
      .acc(pe_acc_q),
      .acc_events(pe_acc_ev),
      .prod_events(pe_prod_ev)
  );
  assign pe_acc = 64'(pe_acc_q);
  assign pe_status = {47'd0, pe_valid, 3'd0, pe_prod_ev, 3'd0, pe_acc_ev};
endmodule
/* verilator lint_on UNUSEDSIGNAL */
