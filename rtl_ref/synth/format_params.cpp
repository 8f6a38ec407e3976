// Prints the RTL parameters of accsim format strings, one line of
// key=value pairs per argument, so that scripts (synth/synth.py) read a
// format exactly as accsim::num::parse_format does:
//   rtl_format_params 'M7E4,bias=10,round=rtz,ftz' int8
//   format=M7E4,bias=10,round=rtz,ftz kind=float EXP_W=4 MAN_W=7 BIAS=10 ROUND=2 SUBNORMALS=0 SPECIALS=0 SATURATE=1
//   format=int8 kind=int BITS=8 SATURATE=0
// An invalid string prints its FormatError and exits with 2.
#include <iostream>
#include <variant>

#include "models/numerics/format.hpp"

int main(int argc, char** argv) {
  namespace num = accsim::num;
  for (int i = 1; i < argc; ++i) {
    try {
      const num::Format f = num::parse_format(argv[i]);
      std::cout << "format=" << num::to_string(f);
      if (const auto* ff = std::get_if<num::FloatFormat>(&f)) {
        std::cout << " kind=float EXP_W=" << ff->exp_bits << " MAN_W=" << ff->man_bits << " BIAS=" << ff->bias
                  << " ROUND=" << static_cast<int>(ff->rounding) << " SUBNORMALS=" << (ff->subnormals ? 1 : 0)
                  << " SPECIALS=" << static_cast<int>(ff->specials) << " SATURATE=" << (ff->saturate ? 1 : 0);
      } else {
        const auto& fi = std::get<num::IntFormat>(f);
        std::cout << " kind=int BITS=" << fi.bits << " SATURATE=" << (fi.saturate ? 1 : 0);
      }
      std::cout << "\n";
    } catch (const num::FormatError& e) {
      std::cerr << "rtl_format_params: " << e.what() << "\n";
      return 2;
    }
  }
  return 0;
}
