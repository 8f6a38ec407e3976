`include "fp_defs.svh"

// Processing element: operand registers, a multiplier, a product pipeline
// register, and the accumulator adder with its register. Three stages:
//   1. a, b (and the draws) are registered; a_out, b_out forward them to a
//      neighbour, as in a systolic array;
//   2. the product is registered: exact (PRODUCT_ROUNDED = 0, a fused MAC)
//      or rounded into the product format;
//   3. acc <= Q_acc(acc + product), or Q_acc(+0 + product) when the operand
//      pair came in with in_clear (the first term of a new sum).
// acc after each valid step equals accsim::num::mac chained over the same
// operands, events included (acc_events: of the sum; prod_events: of the
// product rounding, 0 when fused).
module pe #(
    parameter int A_EXP_W = 4,
    parameter int A_MAN_W = 3,
    parameter int A_BIAS = 7,
    parameter int A_SPECIALS = `FP_SPECIALS_FN,
    parameter int PRODUCT_ROUNDED = 1,
    parameter int P_EXP_W = 4,
    parameter int P_MAN_W = 7,
    parameter int P_BIAS = 12,
    parameter int P_ROUND = `FP_RTZ,
    parameter int P_SUBNORMALS = 0,
    parameter int P_SPECIALS = `FP_SPECIALS_NONE,
    parameter int P_SATURATE = 1,
    parameter int ACC_EXP_W = 4,
    parameter int ACC_MAN_W = 7,
    parameter int ACC_BIAS = 10,
    parameter int ACC_ROUND = `FP_RTZ,
    parameter int ACC_SUBNORMALS = 0,
    parameter int ACC_SPECIALS = `FP_SPECIALS_NONE,
    parameter int ACC_SATURATE = 1
) (
    input logic clk,
    input logic rst_n,  // synchronous, active low
    input logic in_valid,
    input logic in_clear,  // this pair starts a new sum
    input logic [A_EXP_W+A_MAN_W:0] a,
    input logic [A_EXP_W+A_MAN_W:0] b,
    /* verilator lint_off UNUSEDSIGNAL */
    input logic [31:0] sr_prod,  // draws, used by stochastic-rounding formats only
    input logic [31:0] sr_acc,
    /* verilator lint_on UNUSEDSIGNAL */
    output logic [A_EXP_W+A_MAN_W:0] a_out,
    output logic [A_EXP_W+A_MAN_W:0] b_out,
    output logic out_valid,
    output logic [ACC_EXP_W+ACC_MAN_W:0] acc,
    output logic [4:0] acc_events,
    output logic [4:0] prod_events
);
  localparam int A_W = 1 + A_EXP_W + A_MAN_W;
  localparam int ACC_W = 1 + ACC_EXP_W + ACC_MAN_W;
  localparam int PX = `FP_PROD_XW(A_EXP_W, A_BIAS);
  localparam int PW = 2 * (A_MAN_W + 1);
  localparam int P_W = 1 + P_EXP_W + P_MAN_W;
  localparam int DX = `FP_EXP_XW(P_EXP_W, P_BIAS);
  // What reaches the adder: the exact product, or the decoded rounded one.
  localparam int ADD_SIG_W = PRODUCT_ROUNDED != 0 ? P_MAN_W + 1 : PW;
  localparam int ADD_EXP_W = PRODUCT_ROUNDED != 0 ? DX : PX;

  // Stage 1: operand registers.
  logic [A_W-1:0] a_q, b_q;
  logic v1, clear1;
  /* verilator lint_off UNUSEDSIGNAL */
  logic [31:0] sr_prod1, sr_acc1;  // synthesis removes them unless a format draws
  /* verilator lint_on UNUSEDSIGNAL */
  always_ff @(posedge clk) begin
    if (!rst_n) v1 <= 1'b0;
    else v1 <= in_valid;
    if (in_valid) begin
      a_q <= a;
      b_q <= b;
      clear1 <= in_clear;
      sr_prod1 <= sr_prod;
      sr_acc1 <= sr_acc;
    end
  end
  assign a_out = a_q;
  assign b_out = b_q;

  // Stage 2: the product, registered in the form the adder takes.
  logic m_sign, m_zero, m_inf, m_nan;
  logic signed [PX-1:0] m_exp;
  logic [PW-1:0] m_sig;
  fp_mul #(
      .EXP_W(A_EXP_W),
      .MAN_W(A_MAN_W),
      .BIAS(A_BIAS),
      .SPECIALS(A_SPECIALS),
      .XW(PX),
      .SIG_W(PW)
  ) u_mul (
      .a(a_q),
      .b(b_q),
      .sign(m_sign),
      .is_zero(m_zero),
      .is_inf(m_inf),
      .is_nan(m_nan),
      .exp(m_exp),
      .sig(m_sig)
  );

  logic v2, clear2;
  logic [31:0] sr_acc2;
  logic [4:0] p_events2;
  logic d_sign, d_zero, d_inf, d_nan;
  logic signed [ADD_EXP_W-1:0] d_exp;
  logic [ADD_SIG_W-1:0] d_sig;

  always_ff @(posedge clk) begin
    if (!rst_n) v2 <= 1'b0;
    else v2 <= v1;
    if (v1) begin
      clear2 <= clear1;
      sr_acc2 <= sr_acc1;
    end
  end

  generate
    if (PRODUCT_ROUNDED != 0) begin : g_rounded
      logic [P_W-1:0] p, p_q;
      logic [4:0] p_events;
      round_pack #(
          .EXP_W(P_EXP_W),
          .MAN_W(P_MAN_W),
          .BIAS(P_BIAS),
          .ROUND(P_ROUND),
          .SUBNORMALS(P_SUBNORMALS),
          .SPECIALS(P_SPECIALS),
          .SATURATE(P_SATURATE),
          .SIG_W(PW),
          .IN_EXP_W(PX)
      ) u_round_prod (
          .sign(m_sign),
          .is_zero(m_zero),
          .is_inf(m_inf),
          .is_nan(m_nan),
          .exp(m_exp),
          .sig(m_sig),
          .sticky(1'b0),
          .sr_rand(sr_prod1),
          .bits(p),
          .events(p_events)
      );
      always_ff @(posedge clk) begin
        if (v1) begin
          p_q <= p;
          p_events2 <= p_events;
        end
      end
      fp_decode #(
          .EXP_W(P_EXP_W),
          .MAN_W(P_MAN_W),
          .BIAS(P_BIAS),
          .SPECIALS(P_SPECIALS),
          .XW(DX)
      ) u_dec_prod (
          .bits(p_q),
          .sign(d_sign),
          .is_zero(d_zero),
          .is_inf(d_inf),
          .is_nan(d_nan),
          .exp(d_exp),
          .sig(d_sig)
      );
    end else begin : g_fused
      always_ff @(posedge clk) begin
        if (v1) begin
          d_sign <= m_sign;
          d_zero <= m_zero;
          d_inf <= m_inf;
          d_nan <= m_nan;
          d_exp <= m_exp;
          d_sig <= m_sig;
        end
      end
      assign p_events2 = '0;
    end
  endgenerate

  // Stage 3: the accumulator.
  logic [ACC_W-1:0] acc_q, acc_in, sum;
  logic [4:0] sum_events;
  assign acc_in = clear2 ? '0 : acc_q;
  fp_acc #(
      .ACC_EXP_W(ACC_EXP_W),
      .ACC_MAN_W(ACC_MAN_W),
      .ACC_BIAS(ACC_BIAS),
      .ACC_ROUND(ACC_ROUND),
      .ACC_SUBNORMALS(ACC_SUBNORMALS),
      .ACC_SPECIALS(ACC_SPECIALS),
      .ACC_SATURATE(ACC_SATURATE),
      .ADD_SIG_W(ADD_SIG_W),
      .ADD_EXP_W(ADD_EXP_W)
  ) u_acc (
      .acc(acc_in),
      .add_sign(d_sign),
      .add_zero(d_zero),
      .add_inf(d_inf),
      .add_nan(d_nan),
      .add_exp(d_exp),
      .add_sig(d_sig),
      .sr_rand(sr_acc2),
      .sum(sum),
      .events(sum_events)
  );

  logic v3;
  always_ff @(posedge clk) begin
    if (!rst_n) begin
      v3 <= 1'b0;
      acc_q <= '0;
      acc_events <= '0;
      prod_events <= '0;
    end else begin
      v3 <= v2;
      if (v2) begin
        acc_q <= sum;
        acc_events <= sum_events;
        prod_events <= p_events2;
      end
    end
  end
  assign acc = acc_q;
  assign out_valid = v3;
endmodule
