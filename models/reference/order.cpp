#include "models/reference/order.hpp"

#include <charconv>

namespace accsim::ref {

AccumulationOrder parse_order(std::string_view text) {
  auto fail = [&](const std::string& what) -> AccumulationOrder {
    throw num::FormatError("order '" + std::string(text) + "': " + what);
  };
  if (text == "sequential") return {};
  constexpr std::string_view kChunked = "chunked:";
  if (!text.starts_with(kChunked)) return fail("expected sequential or chunked:C[:FMT]");
  std::string_view rest = text.substr(kChunked.size());
  const std::size_t colon = rest.find(':');
  const std::string_view size = rest.substr(0, colon);
  int chunk = 0;
  auto [ptr, ec] = std::from_chars(size.data(), size.data() + size.size(), chunk);
  if (size.empty() || ec != std::errc() || ptr != size.data() + size.size() || chunk < 1 || chunk > (1 << 24)) {
    return fail("chunk size '" + std::string(size) + "' must be an integer 1..16777216");
  }
  AccumulationOrder order{chunk, std::nullopt};
  if (colon != std::string_view::npos) {
    try {
      order.merge_format = num::parse_format(rest.substr(colon + 1));
    } catch (const num::FormatError& e) {
      return fail(std::string("merge format ") + e.what());
    }
  }
  return order;
}

std::string to_string(const AccumulationOrder& order) {
  if (order.sequential()) return "sequential";
  std::string out = "chunked:";
  out += std::to_string(order.chunk);
  if (order.merge_format) {
    out += ':';
    out += num::to_string(*order.merge_format);
  }
  return out;
}

}  // namespace accsim::ref
