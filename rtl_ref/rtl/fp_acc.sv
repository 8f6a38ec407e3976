`include "fp_defs.svh"

// Accumulator adder: acc + addend, the exact sum rounded once into the
// accumulator format, with events (accsim::num::accumulate). The addend is
// a raw value (sign, flags, exponent, significand of any width): fp_mul's
// exact product for a fused MAC, or fp_decode's view of a rounded product.
//
// One path, sized so that the exact sum reaches round_pack intact wherever
// it can matter. Both significands are top-aligned in a window of
// W = SA + SB + G bits and the one with the smaller exponent is shifted
// right by the difference d. While d is below the big operand's width
// nothing falls off the window (the small one's last bit stays above bit G);
// from there on the big operand is strictly the larger in magnitude, the
// sum's leading one lies at most one place below the big operand's, and the
// rounding position (of the sum's binade, or the subnormal grid above it)
// stays at least G places above the window's end, so everything that falls
// off only matters as a sticky bit. In a subtraction
// the lost bits are taken as a borrow (big - small - 1 with sticky set), so
// that the window always holds the floor of the exact magnitude, as
// exact_sum does.
module fp_acc #(
    parameter int ACC_EXP_W = 4,
    parameter int ACC_MAN_W = 7,
    parameter int ACC_BIAS = (1 << (ACC_EXP_W - 1)) - 1,
    parameter int ACC_ROUND = `FP_RNE,
    parameter int ACC_SUBNORMALS = 1,
    parameter int ACC_SPECIALS = `FP_SPECIALS_NONE,
    parameter int ACC_SATURATE = 1,
    parameter int ADD_SIG_W = 8,  // addend significand width
    parameter int ADD_EXP_W = 6   // width of its signed exponent
) (
    input logic [ACC_EXP_W+ACC_MAN_W:0] acc,
    input logic add_sign,
    input logic add_zero,
    input logic add_inf,
    input logic add_nan,
    input logic signed [ADD_EXP_W-1:0] add_exp,  // add_sig[ADD_SIG_W-1] weighs 2^add_exp
    input logic [ADD_SIG_W-1:0] add_sig,
    input logic [31:0] sr_rand,  // the draw for ACC_ROUND == FP_SR
    output logic [ACC_EXP_W+ACC_MAN_W:0] sum,
    output logic [4:0] events
);
  localparam int SA = ACC_MAN_W + 1;
  localparam int SB = ADD_SIG_W;
  // Guard bits below both operands: one is enough for every deterministic
  // mode (the rounding position then stays at least one place above the
  // window's end; with none, the harness finds mismatches), and stochastic
  // rounding needs the 32-bit fraction below that position exact as well.
  localparam int G = (ACC_ROUND == `FP_SR) ? 33 : 1;
  localparam int W = SA + SB + G;
  localparam int AX = `FP_EXP_XW(ACC_EXP_W, ACC_BIAS);
  localparam int XW = `FP_MAX(AX, ADD_EXP_W) + 2;

  logic a_sign, a_zero, a_inf, a_nan;
  logic signed [AX-1:0] a_exp;
  logic [SA-1:0] a_sig;

  fp_decode #(
      .EXP_W(ACC_EXP_W),
      .MAN_W(ACC_MAN_W),
      .BIAS(ACC_BIAS),
      .SPECIALS(ACC_SPECIALS),
      .XW(AX)
  ) u_dec_acc (
      .bits(acc),
      .sign(a_sign),
      .is_zero(a_zero),
      .is_inf(a_inf),
      .is_nan(a_nan),
      .exp(a_exp),
      .sig(a_sig)
  );

  logic signed [XW-1:0] a_exp_x, b_exp_x, big_exp, shift;
  logic b_big, big_sign, eff_sub, lost, neg, cancel, both_zero, rd;
  logic [SB-1:0] b_sig;
  logic [W-1:0] a_win, b_win, big_win, small_win, small_al;
  logic [W+1:0] total;
  logic [W:0] mag;
  logic r_sign, r_zero, r_inf, r_nan;

  always_comb begin
    a_exp_x = XW'(a_exp);
    b_exp_x = XW'(add_exp);
    // The operand with the larger exponent stays put; a zero never does.
    b_big = a_zero || (!add_zero && b_exp_x > a_exp_x);
    big_exp = b_big ? b_exp_x : a_exp_x;
    shift = b_big ? b_exp_x - a_exp_x : a_exp_x - b_exp_x;  // shifting a zero: any amount
    a_win = W'(a_sig) << (W - SA);
    b_sig = add_zero ? '0 : add_sig;
    b_win = W'(b_sig) << (W - SB);
    big_win = b_big ? b_win : a_win;
    small_win = b_big ? a_win : b_win;
    small_al = small_win >> shift;
    lost = |(small_win & ~({W{1'b1}} << shift));
    big_sign = b_big ? add_sign : a_sign;
    eff_sub = a_sign ^ add_sign;
    // big - small - lost = big + ~small + !lost
    total = {2'b00, big_win} + (eff_sub ? ~{2'b00, small_al} : {2'b00, small_al}) +
        (W + 2)'(eff_sub && !lost);
    neg = total[W+1];  // only when nothing was lost: then the sum is exact
    mag = neg ? -total[W:0] : total[W:0];
    cancel = mag == '0;

    // Classes: NaN, then infinity, then exact zeros (IEEE 754 6.3: +0 unless
    // rounding toward -inf), then the finite sum.
    rd = ACC_ROUND == `FP_RD;
    both_zero = a_zero && add_zero;
    r_nan = a_nan || add_nan || (a_inf && add_inf && eff_sub);
    r_inf = !r_nan && (a_inf || add_inf);
    r_zero = !r_nan && !r_inf && (both_zero || cancel);
    if (r_inf) r_sign = a_inf ? a_sign : add_sign;
    else if (both_zero) r_sign = rd ? a_sign || add_sign : a_sign && add_sign;
    else if (cancel) r_sign = rd;
    else r_sign = big_sign ^ neg;
  end

  logic [ACC_EXP_W+ACC_MAN_W:0] rounded;
  logic [4:0] round_events;

  round_pack #(
      .EXP_W(ACC_EXP_W),
      .MAN_W(ACC_MAN_W),
      .BIAS(ACC_BIAS),
      .ROUND(ACC_ROUND),
      .SUBNORMALS(ACC_SUBNORMALS),
      .SPECIALS(ACC_SPECIALS),
      .SATURATE(ACC_SATURATE),
      .SIG_W(W + 1),
      .IN_EXP_W(XW)
  ) u_round (
      .sign(r_sign),
      .is_zero(r_zero),
      .is_inf(r_inf),
      .is_nan(r_nan),
      .exp(big_exp + XW'(1)),  // mag[W] is the carry place above big_win's top
      .sig(mag),
      .sticky(lost),
      .sr_rand(sr_rand),
      .bits(rounded),
      .events(round_events)
  );

  always_comb begin
    sum = rounded;
    events = round_events;
    // Swamping: a non-zero addend left the accumulator unchanged, bit for bit.
    events[`FP_EV_SWAMP] = !add_zero && !add_nan && rounded == acc;
  end
endmodule
