`include "fp_defs.svh"

// Test wrapper, not reference RTL: one integer configuration (int_mul,
// int_acc, int_pe) behind uniform 64-bit ports; see check_unit.
/* verilator lint_off UNUSEDSIGNAL */
module int_check_unit #(
    parameter int IN_W = 8,
    parameter int PROD_W = 32,
    parameter int PROD_SATURATE = 0,
    parameter int ACC_W = 32,
    parameter int ACC_SATURATE = 0
) (
    input logic clk,
    input logic [63:0] a,
    input logic [63:0] b,
    input logic [63:0] acc,
    input logic [63:0] p_in,
    input logic [63:0] pe_ctl,  // {.., clear, valid, rst_n}
    input logic [63:0] pe_a,
    input logic [63:0] pe_b,
    output logic [63:0] p_bits,
    output logic [63:0] p_events,
    output logic [63:0] add_sum,
    output logic [63:0] add_events,
    output logic [63:0] pe_acc,
    output logic [63:0] pe_status  // {out_valid, acc_events[4:0]} at 16, 0
);
  logic [PROD_W-1:0] p;
  logic [4:0] p_ev;
  int_mul #(
      .IN_W(IN_W),
      .OUT_W(PROD_W),
      .SATURATE(PROD_SATURATE)
  ) u_mul (
      .a(a[IN_W-1:0]),
      .b(b[IN_W-1:0]),
      .p(p),
      .events(p_ev)
  );
  assign p_bits = 64'(p);
  assign p_events = 64'(p_ev);

  logic [ACC_W-1:0] s;
  logic [4:0] s_ev;
  int_acc #(
      .ACC_W(ACC_W),
      .ADD_W(PROD_W),
      .SATURATE(ACC_SATURATE)
  ) u_acc (
      .acc(acc[ACC_W-1:0]),
      .addend(p_in[PROD_W-1:0]),
      .sum(s),
      .events(s_ev)
  );
  assign add_sum = 64'(s);
  assign add_events = 64'(s_ev);

  logic [IN_W-1:0] a_out, b_out;
  logic valid;
  logic [ACC_W-1:0] acc_q;
  logic [4:0] acc_ev;
  int_pe #(
      .IN_W(IN_W),
      .PROD_W(2 * IN_W),
      .ACC_W(ACC_W),
      .SATURATE(ACC_SATURATE)
  ) u_pe (
      .clk(clk),
      .rst_n(pe_ctl[0]),
      .in_valid(pe_ctl[1]),
      .in_clear(pe_ctl[2]),
      .a(pe_a[IN_W-1:0]),
      .b(pe_b[IN_W-1:0]),
      .a_out(a_out),
      .b_out(b_out),
      .out_valid(valid),
      .acc(acc_q),
      .acc_events(acc_ev)
  );
  assign pe_acc = 64'(acc_q);
  assign pe_status = {47'd0, valid, 11'd0, acc_ev};
endmodule
/* verilator lint_on UNUSEDSIGNAL */
