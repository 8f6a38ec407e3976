// libsystemc.so's main() calls sc_main, so the shared library refers to it.
// accsim's executables have their own main and start the SystemC kernel
// through hw::run_cycle_gemm; this definition only satisfies the linker. It
// is compiled into every target that links accsim::hw (an INTERFACE source).
extern "C" int sc_main(int /*argc*/, char* /*argv*/[]) { return 2; }  // as sysc/kernel/sc_externs.h declares it
