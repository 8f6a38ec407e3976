#include "sim/check/junit.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace accsim::sim::check {

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\n':
        out += "&#10;";  // kept in attributes too (a raw newline there would be normalized to a space)
        break;
      case '\t':
        out += "&#9;";
        break;
      default: {
        const auto c = static_cast<unsigned char>(ch);
        out += c < 0x20 || c == 0x7f ? '?' : ch;
      }
    }
  }
  return out;
}

std::string junit_xml(const std::vector<Check>& checks, std::string_view title) {
  std::vector<std::string> suites;
  for (const Check& c : checks) {
    if (std::find(suites.begin(), suites.end(), c.suite) == suites.end()) suites.push_back(c.suite);
  }
  const auto failures = std::count_if(checks.begin(), checks.end(), [](const Check& c) { return !c.passed; });
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x += fmt::format("<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" time=\"0\">\n",
                   xml_escape(title), checks.size(), failures);
  for (const std::string& suite : suites) {
    std::size_t tests = 0, failed = 0;
    for (const Check& c : checks) {
      if (c.suite != suite) continue;
      ++tests;
      if (!c.passed) ++failed;
    }
    x += fmt::format("  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\" time=\"0\">\n",
                     xml_escape(suite), tests, failed);
    for (const Check& c : checks) {
      if (c.suite != suite) continue;
      const std::string name = xml_escape(c.scope + ": " + c.metric);
      if (c.passed) {
        x += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"0\"/>\n", xml_escape(suite), name);
        continue;
      }
      x += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"0\">\n", xml_escape(suite), name);
      x += fmt::format("      <failure type=\"regression\" message=\"{}\">", xml_escape(c.message));
      x += xml_escape(fmt::format("field: {}\nbaseline: {}\ncurrent: {}\ndifference: {}\ntolerance: {}\n", c.field,
                                  c.baseline_text, c.current_text, c.difference, c.limit));
      x += "</failure>\n    </testcase>\n";
    }
    x += "  </testsuite>\n";
  }
  x += "</testsuites>\n";
  return x;
}

}  // namespace accsim::sim::check
