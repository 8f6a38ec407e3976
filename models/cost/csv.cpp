#include "models/cost/csv.hpp"

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include "models/cost/cost.hpp"

namespace accsim::cost {

std::vector<std::string> split_csv_line(std::string_view line, bool* unterminated) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c != '\r') {
      fields.back() += c;
    }
  }
  if (unterminated != nullptr) *unterminated = quoted;
  return fields;
}

CsvTable CsvTable::read(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CostError(path.string(), "cannot be read (ACCSIM_DATA_DIR must name accsim's source tree)");
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), path.string());
}

CsvTable CsvTable::parse(std::string_view text, const std::string& name) {
  CsvTable t;
  t.name_ = name;
  std::vector<std::string> header;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    bool unterminated = false;
    std::vector<std::string> fields = split_csv_line(line, &unterminated);
    if (unterminated) throw CostError(name, "line " + std::to_string(line_no) + ": unterminated quote");
    if (header.empty()) {
      header = std::move(fields);
      continue;
    }
    if (fields.size() != header.size()) {
      throw CostError(name, "line " + std::to_string(line_no) + ": " + std::to_string(fields.size()) +
                                " fields, the header has " + std::to_string(header.size()));
    }
    Row row;
    for (std::size_t i = 0; i < header.size(); ++i) row.emplace(header[i], std::move(fields[i]));
    t.rows_.push_back(std::move(row));
  }
  if (header.empty()) throw CostError(name, "no header line");
  return t;
}

const std::string& CsvTable::text(const Row& row, std::string_view column) const {
  const auto it = row.find(column);
  if (it == row.end()) throw CostError(name_, "no column '" + std::string(column) + "'");
  return it->second;
}

double CsvTable::number(const Row& row, std::string_view column) const {
  const std::string& s = text(row, column);
  double v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || ptr != s.data() + s.size() || !std::isfinite(v)) {
    throw CostError(name_, "column '" + std::string(column) + "': '" + s + "' is not a finite number");
  }
  return v;
}

}  // namespace accsim::cost
