// The accumulation order: the one place that says in which order the
// products of a dot product are summed. The reference path and the hardware
// models both follow it, so "bit-identical" compares like with like.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "models/numerics/format.hpp"

namespace accsim::ref {

struct AccumulationOrder {
  // 0: sequential, k = 0..K-1 into one running sum from +0.
  // C > 0: chunks of C consecutive k, each summed from +0 in the accumulator
  // format; chunk results added in order into a running sum (from +0) in
  // merge_format (the accumulator format when unset). A weight-stationary
  // column of R rows produces chunked:R:<output buffer format>.
  int chunk = 0;
  std::optional<num::Format> merge_format;

  [[nodiscard]] bool sequential() const { return chunk == 0; }
  // The format chunk results are merged in.
  [[nodiscard]] const num::Format& merge(const num::Format& accumulator) const {
    return merge_format ? *merge_format : accumulator;
  }
  friend bool operator==(const AccumulationOrder&, const AccumulationOrder&) = default;
};

// "sequential", "chunked:16", "chunked:16:fp32"; throws num::FormatError
// naming the bad part.
[[nodiscard]] AccumulationOrder parse_order(std::string_view text);
[[nodiscard]] std::string to_string(const AccumulationOrder& order);

}  // namespace accsim::ref
