// JUnit XML for CI test reporters (GitLab, Jenkins, GitHub): one testsuite
// per compared unit (a report, a sweep point), one testcase per check.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sim/check/compare.hpp"

namespace accsim::sim::check {

// The document: <testsuites> with the totals, a <testsuite> per suite in
// order of first appearance, each check a <testcase classname=suite
// name="scope: metric">; a failed check has a <failure> whose message gives
// the baseline, the current value and the tolerance. No timestamps or
// durations (time="0"), so the same comparison gives the same bytes.
[[nodiscard]] std::string junit_xml(const std::vector<Check>& checks, std::string_view title);

// Text made safe for an XML attribute or element: markup escaped, and
// characters XML 1.0 forbids (control characters) replaced by '?'.
[[nodiscard]] std::string xml_escape(std::string_view text);

}  // namespace accsim::sim::check
