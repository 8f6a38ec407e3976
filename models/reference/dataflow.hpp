// The accumulation order each dataflow of the MAC array produces. The
// reference path and the cycle-accurate array (models/hw) both take the order
// from here, so that "bit-identical" compares the same sums in the same order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "models/numerics/format.hpp"
#include "models/reference/order.hpp"

namespace accsim::ref {

enum class Dataflow : std::uint8_t {
  weight_stationary,  // B tile held in the PEs, A streamed in from the left, partial sums flow down
  output_stationary,  // C tile held in the PEs, A from the left and B from the top
};

// How a weight-stationary array combines the partial sums of successive
// k-tiles (R consecutive k, one per array row).
enum class WsPartialSums : std::uint8_t {
  // Every column sums its R products from +0 in the accumulator format; the
  // column result is added into the output buffer in the merge format:
  // chunked:R:<merge format>.
  merge,
  // The previous k-tile's partial sum enters at the top of the column, so
  // one running sum in the accumulator format covers all of k: sequential.
  feedback,
};

[[nodiscard]] std::string_view to_string(Dataflow d);  // "ws", "os"
[[nodiscard]] std::string_view to_string(WsPartialSums p);  // "merge", "feedback"
// Accepts the short names above and "weight-stationary" / "output-stationary".
[[nodiscard]] std::optional<Dataflow> dataflow_from_string(std::string_view text);
[[nodiscard]] std::optional<WsPartialSums> ws_partial_sums_from_string(std::string_view text);

// The order a dataflow produces on an array of `array_rows` rows:
//   output-stationary                 sequential (each PE sums its output over k)
//   weight-stationary, feedback       sequential
//   weight-stationary, merge          chunked:R[:merge_format] (unset: the accumulator format)
[[nodiscard]] AccumulationOrder dataflow_order(Dataflow dataflow, std::size_t array_rows, WsPartialSums partial_sums,
                                               const std::optional<num::Format>& merge_format);

// Whether two orders sum identically: same chunking, and the same merge
// format once an unset one is read as the accumulator format.
[[nodiscard]] bool same_order(const AccumulationOrder& a, const AccumulationOrder& b, const num::Format& accumulator);

}  // namespace accsim::ref
