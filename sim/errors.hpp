// Errors a user can cause (a bad input file, flag value or output path), and
// the one way every subcommand reports them and exits.
//
// The CLI prints a user error as one line, "accsim: error: <what>", and exits
// with 2; what() always starts with the input it is about ("A.npy: ...",
// "--acc: ..."). Anything else that escapes a command is "accsim: internal
// error: <what>" with exit code 1.
#pragma once

#include <functional>
#include <iosfwd>
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

// Runs a command's body and turns what escapes it into a message on `err` and
// an exit code: InputError and cost::CostError (a cost the model cannot give
// for the formats the user named) are user errors, exit 2; std::bad_alloc is
// "out of memory", exit 1; any other exception is an internal error, exit 1.
// `before_message` runs first when something escaped (a progress line to
// clear). Every run_x of sim/ goes through this, so all commands report alike.
int guarded(std::ostream& err, const std::function<int()>& body, const std::function<void()>& before_message = {});

}  // namespace accsim::sim
