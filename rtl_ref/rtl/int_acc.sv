`include "fp_defs.svh"

// Integer accumulator adder (accsim::num::accumulate with an integer
// format): the exact sum, wrapped (overflow event) or saturated (overflow
// and inexact). Swamping is a non-zero addend that leaves acc unchanged,
// which only saturation can do.
module int_acc #(
    parameter int ACC_W = 32,
    parameter int ADD_W = 32,
    parameter int SATURATE = 0
) (
    input logic [ACC_W-1:0] acc,
    input logic [ADD_W-1:0] addend,
    output logic [ACC_W-1:0] sum,
    output logic [4:0] events
);
  localparam int SW = `FP_MAX(ACC_W, ADD_W) + 1;
  logic signed [SW-1:0] full;
  logic fits;

  always_comb begin
    full = SW'($signed(acc)) + SW'($signed(addend));
    fits = full[SW-1:ACC_W-1] == {(SW - ACC_W + 1) {full[ACC_W-1]}};
    events = '0;
    events[`FP_EV_OVERFLOW] = !fits;
    if (fits || SATURATE == 0) begin
      sum = full[ACC_W-1:0];
    end else begin
      sum = {full[SW-1], {(ACC_W - 1) {!full[SW-1]}}};
      events[`FP_EV_INEXACT] = 1'b1;
    end
    events[`FP_EV_SWAMP] = addend != '0 && sum == acc;
  end
endmodule
