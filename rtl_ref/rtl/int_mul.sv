`include "fp_defs.svh"

// Two's-complement product (accsim::num::multiply with integer formats):
// exact when OUT_W >= 2 IN_W (int8 x int8 -> int32), otherwise wrapped or
// saturated with an overflow event.
module int_mul #(
    parameter int IN_W = 8,
    parameter int OUT_W = 32,
    parameter int SATURATE = 0
) (
    input logic [IN_W-1:0] a,
    input logic [IN_W-1:0] b,
    output logic [OUT_W-1:0] p,
    output logic [4:0] events
);
  localparam int FW = 2 * IN_W;
  logic signed [FW-1:0] full;
  assign full = FW'($signed(a)) * FW'($signed(b));

  generate
    if (OUT_W >= FW) begin : g_exact
      assign p = OUT_W'(full);
      assign events = '0;
    end else begin : g_narrow
      logic fits;
      always_comb begin
        // Fits iff the bits above the result's sign bit repeat it.
        fits = full[FW-1:OUT_W-1] == {(FW - OUT_W + 1) {full[OUT_W-1]}};
        events = '0;
        events[`FP_EV_OVERFLOW] = !fits;
        if (fits || SATURATE == 0) begin
          p = full[OUT_W-1:0];
        end else begin
          p = {full[FW-1], {(OUT_W - 1) {!full[FW-1]}}};
          events[`FP_EV_INEXACT] = 1'b1;
        end
      end
    end
  endgenerate
endmodule
