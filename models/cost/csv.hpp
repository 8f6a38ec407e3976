// The data files models/cost reads (rtl_ref/area/*.csv, models/cost/data/*.csv):
// '#' comment lines, one header line, RFC 4180 fields (quotes for commas).
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace accsim::cost {

class CsvTable {
 public:
  using Row = std::map<std::string, std::string, std::less<>>;

  // Throws CostError naming the file on a missing file, a row whose field
  // count differs from the header's, or an unterminated quote.
  static CsvTable read(const std::filesystem::path& path);
  static CsvTable parse(std::string_view text, const std::string& name);

  [[nodiscard]] const std::vector<Row>& rows() const { return rows_; }
  [[nodiscard]] const std::string& name() const { return name_; }

  // A field as a number; throws CostError naming the file, row and column.
  [[nodiscard]] double number(const Row& row, std::string_view column) const;
  [[nodiscard]] const std::string& text(const Row& row, std::string_view column) const;

 private:
  std::string name_;
  std::vector<Row> rows_;
};

// One CSV line's fields (no trailing newline).
[[nodiscard]] std::vector<std::string> split_csv_line(std::string_view line, bool* unterminated = nullptr);

}  // namespace accsim::cost
