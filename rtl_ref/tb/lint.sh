#!/bin/sh
# verilator --lint-only -Wall on every reference module, at its defaults and
# at parameter sets that reach the other generate branches (stochastic
# rounding, flush-to-zero, IEEE and fn specials, fused PE, narrow integers).
#   rtl_ref/tb/lint.sh [verilator]
set -eu
VERILATOR=${1:-verilator}
RTL=$(cd "$(dirname "$0")/../rtl" && pwd)
TB=$(cd "$(dirname "$0")" && pwd)
fail=0
lint() {
  top=$1
  shift
  if "$VERILATOR" --lint-only -Wall -I"$RTL" -y "$RTL" "$@" --top-module "$top" "$RTL/$top.sv" 2>&1; then
    echo "lint ok: $top $*"
  else
    echo "LINT FAILED: $top $*"
    fail=1
  fi
}
for m in fp_decode round_pack fp_mul fp_mul_round fp_acc fp_add pe int_mul int_acc int_pe; do lint $m; done
lint fp_add -GADD_EXP_W=4 -GADD_MAN_W=7 -GADD_BIAS=12 -GACC_BIAS=10 -GACC_ROUND=2 -GACC_SUBNORMALS=0
lint round_pack -GROUND=5
lint round_pack -GROUND=2 -GSUBNORMALS=0 -GSPECIALS=2 -GMAN_W=3
lint round_pack -GROUND=4 -GSPECIALS=1 -GSATURATE=0 -GEXP_W=8 -GMAN_W=23 -GSIG_W=48 -GIN_EXP_W=10
lint fp_decode -GSPECIALS=1 -GEXP_W=8 -GMAN_W=23
lint fp_decode -GSPECIALS=2 -GBIAS=-3
lint fp_mul -GEXP_W=8 -GMAN_W=23 -GBIAS=127 -GSPECIALS=1
lint fp_mul_round -GP_ROUND=5 -GP_SPECIALS=1 -GP_SATURATE=0
lint fp_acc -GACC_ROUND=5 -GACC_SUBNORMALS=0
lint fp_acc -GACC_EXP_W=8 -GACC_MAN_W=23 -GACC_BIAS=127 -GACC_SPECIALS=1 -GACC_SATURATE=0 -GADD_SIG_W=48 -GADD_EXP_W=10
lint pe -GPRODUCT_ROUNDED=0
lint pe -GP_ROUND=5 -GACC_ROUND=5
lint int_mul -GOUT_W=12 -GSATURATE=1
lint int_acc -GACC_W=16 -GADD_W=32 -GSATURATE=1
lint int_pe -GSATURATE=1
# The test wrappers (they waive UNUSEDSIGNAL for their uniform 64-bit ports).
for m in check_unit int_check_unit; do
  if "$VERILATOR" --lint-only -Wall -I"$RTL" -y "$RTL" --top-module $m "$TB/$m.sv" 2>&1; then
    echo "lint ok: $m"
  else
    echo "LINT FAILED: $m"
    fail=1
  fi
done
exit $fail
