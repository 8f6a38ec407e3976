#include "models/numerics/events.hpp"

namespace accsim::num {

std::string to_string_events(Events e) {
  std::string out;
  auto add = [&](Events bit, const char* name) {
    if ((e & bit) == 0) return;
    if (!out.empty()) out += '|';
    out += name;
  };
  add(kOverflow, "overflow");
  add(kUnderflow, "underflow");
  add(kSwamp, "swamp");
  add(kInexact, "inexact");
  add(kInvalid, "invalid");
  return out.empty() ? "none" : out;
}

}  // namespace accsim::num
