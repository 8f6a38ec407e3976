// Events an operation raises, returned with its value ({bits, events}).
#pragma once

#include <cstdint>
#include <string>

namespace accsim::num {

using Events = std::uint8_t;

inline constexpr Events kOverflow = 1u << 0;   // rounded magnitude exceeded the largest finite value
inline constexpr Events kUnderflow = 1u << 1;  // non-zero exact result below the smallest normal
                                               // (tininess before rounding): flushed or subnormal
inline constexpr Events kSwamp = 1u << 2;      // non-zero addend, sum equal to the accumulator
inline constexpr Events kInexact = 1u << 3;    // rounded result differs from the exact one
inline constexpr Events kInvalid = 1u << 4;    // NaN produced or consumed (inf - inf, NaN input,
                                               // NaN into a format without NaN)

// Tallies of events over many operations; plain integers, so partial tallies
// from threads add up to the same totals in any order.
struct EventCounts {
  std::uint64_t ops = 0;
  std::uint64_t overflow = 0;
  std::uint64_t underflow = 0;
  std::uint64_t swamp = 0;
  std::uint64_t inexact = 0;
  std::uint64_t invalid = 0;

  constexpr void record(Events e) {
    ++ops;
    overflow += (e & kOverflow) != 0;
    underflow += (e & kUnderflow) != 0;
    swamp += (e & kSwamp) != 0;
    inexact += (e & kInexact) != 0;
    invalid += (e & kInvalid) != 0;
  }
  constexpr EventCounts& operator+=(const EventCounts& o) {
    ops += o.ops;
    overflow += o.overflow;
    underflow += o.underflow;
    swamp += o.swamp;
    inexact += o.inexact;
    invalid += o.invalid;
    return *this;
  }
  friend bool operator==(const EventCounts&, const EventCounts&) = default;
};

// "overflow|inexact", or "none".
std::string to_string_events(Events e);

}  // namespace accsim::num
