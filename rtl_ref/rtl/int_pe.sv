`include "fp_defs.svh"

// Integer processing element, the int8/int32 baseline: the same three
// stages as pe (operand registers, product register, accumulator).
module int_pe #(
    parameter int IN_W = 8,
    parameter int PROD_W = 2 * IN_W,  // exact product width
    parameter int ACC_W = 32,
    parameter int SATURATE = 0
) (
    input logic clk,
    input logic rst_n,  // synchronous, active low
    input logic in_valid,
    input logic in_clear,  // this pair starts a new sum
    input logic [IN_W-1:0] a,
    input logic [IN_W-1:0] b,
    output logic [IN_W-1:0] a_out,
    output logic [IN_W-1:0] b_out,
    output logic out_valid,
    output logic [ACC_W-1:0] acc,
    output logic [4:0] acc_events
);
  logic [IN_W-1:0] a_q, b_q;
  logic v1, clear1, v2, clear2, v3;
  logic [PROD_W-1:0] p, p_q;
  logic [ACC_W-1:0] acc_q, acc_in, sum;
  logic [4:0] sum_events;
  /* verilator lint_off UNUSEDSIGNAL */
  logic [4:0] p_events;  // always 0: PROD_W holds every product
  /* verilator lint_on UNUSEDSIGNAL */

  int_mul #(
      .IN_W(IN_W),
      .OUT_W(PROD_W),
      .SATURATE(SATURATE)
  ) u_mul (
      .a(a_q),
      .b(b_q),
      .p(p),
      .events(p_events)
  );
  assign acc_in = clear2 ? '0 : acc_q;
  int_acc #(
      .ACC_W(ACC_W),
      .ADD_W(PROD_W),
      .SATURATE(SATURATE)
  ) u_acc (
      .acc(acc_in),
      .addend(p_q),
      .sum(sum),
      .events(sum_events)
  );

  always_ff @(posedge clk) begin
    if (!rst_n) begin
      v1 <= 1'b0;
      v2 <= 1'b0;
      v3 <= 1'b0;
      acc_q <= '0;
      acc_events <= '0;
    end else begin
      v1 <= in_valid;
      v2 <= v1;
      v3 <= v2;
      if (v2) begin
        acc_q <= sum;
        acc_events <= sum_events;
      end
    end
    if (in_valid) begin
      a_q <= a;
      b_q <= b;
      clear1 <= in_clear;
    end
    if (v1) begin
      p_q <= p;
      clear2 <= clear1;
    end
  end
  assign a_out = a_q;
  assign b_out = b_q;
  assign acc = acc_q;
  assign out_valid = v3;
endmodule
