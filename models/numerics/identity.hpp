// The numerics identity: which definition of the formats, rounding and
// events this build computes with. Reports carry it, and `accsim check`
// refuses to compare a report with a baseline made under another definition
// (a difference there is a change of meaning, not a regression).
//
// Bump kNumericsVersion, in the same commit, whenever a format string comes
// to mean different arithmetic: a new default bias, a change to what ftz
// flushes, to when an event counts as swamping, to the stochastic-rounding
// generator, to the order a named order sums in. Do NOT bump it for a speed
// change or a bug fix: those must keep (or restore) the defined bits, and the
// regression gate is what tells whether they did.
#pragma once

namespace accsim::num {

inline constexpr int kNumericsVersion = 1;
// The form reports carry ("numerics_identity").
inline constexpr const char* kNumericsIdentity = "accsim-numerics-1";

}  // namespace accsim::num
