// Errors a user can cause (a bad input file, flag value or output path).
// The CLI prints them as one line, "accsim: error: <what>", and exits with 2;
// what() always starts with the input it is about ("A.npy: ...", "--acc: ...").
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace accsim::sim {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInternal = 1;  // a bug or resource exhaustion, not the user's doing
inline constexpr int kExitUsage = 2;     // bad input, bad flag value, unwritable output

class InputError : public std::runtime_error {
 public:
  InputError(std::string_view input, std::string_view problem)
      : std::runtime_error(std::string(input) + ": " + std::string(problem)) {}
};

// A message made safe to print as one line: control characters (a newline in
// a file name, garbage from a header) become '?'.
[[nodiscard]] inline std::string one_line(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

}  // namespace accsim::sim
