#include "models/reference/dataflow.hpp"

namespace accsim::ref {

std::string_view to_string(Dataflow d) {
  return d == Dataflow::weight_stationary ? "ws" : "os";
}

std::string_view to_string(WsPartialSums p) {
  return p == WsPartialSums::merge ? "merge" : "feedback";
}

std::optional<Dataflow> dataflow_from_string(std::string_view text) {
  if (text == "ws" || text == "weight-stationary") return Dataflow::weight_stationary;
  if (text == "os" || text == "output-stationary") return Dataflow::output_stationary;
  return std::nullopt;
}

std::optional<WsPartialSums> ws_partial_sums_from_string(std::string_view text) {
  if (text == "merge") return WsPartialSums::merge;
  if (text == "feedback") return WsPartialSums::feedback;
  return std::nullopt;
}

AccumulationOrder dataflow_order(Dataflow dataflow, std::size_t array_rows, WsPartialSums partial_sums,
                                 const std::optional<num::Format>& merge_format) {
  if (dataflow == Dataflow::output_stationary || partial_sums == WsPartialSums::feedback) return {};
  return AccumulationOrder{static_cast<int>(array_rows), merge_format};
}

bool same_order(const AccumulationOrder& a, const AccumulationOrder& b, const num::Format& accumulator) {
  if (a.chunk != b.chunk) return false;
  return a.sequential() || a.merge(accumulator) == b.merge(accumulator);
}

}  // namespace accsim::ref
