// GoogleTest's main for the hw suite. The SystemC kernel is started by the
// first run_cycle_gemm and lives for the whole process; sc_main is never
// entered.
#include <gtest/gtest.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
