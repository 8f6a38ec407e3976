#!/usr/bin/python3
"""Checks a JUnit XML file against the structure CI reporters read.

The rules are those of the JUnit schema Jenkins' xunit plugin validates with
(junit-10.xsd) and GitLab's parser relies on, written out here as checks:
  - the root is <testsuites> (attributes name, time, tests, failures, errors)
    holding only <testsuite> elements;
  - a <testsuite> has name, tests, failures and errors (skipped, time, ... are
    optional) and holds testcase/properties/system-out/system-err/testsuite;
  - a <testcase> has a name (classname and time optional) and holds only
    failure/error/skipped/system-out/system-err;
  - a <failure> has only the attributes type and message;
  - time attributes are decimal numbers;
and, beyond the schema, that the counts add up and every failure has a
message. Usage: check_junit.py FILE [EXPECTED_TESTS EXPECTED_FAILURES].
"""
import re
import sys
import xml.etree.ElementTree as ET

TIME = re.compile(r"^(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?$")
SUITES_ATTRS = {"name", "time", "tests", "failures", "errors"}
SUITE_ATTRS = {"name", "tests", "failures", "errors", "group", "time", "skipped", "timestamp", "hostname", "id",
               "package", "file", "log", "url"}
SUITE_CHILDREN = {"testsuite", "properties", "testcase", "system-out", "system-err"}
CASE_ATTRS = {"name", "time", "classname", "group"}
CASE_CHILDREN = {"skipped", "error", "failure", "system-out", "system-err"}
FAILURE_ATTRS = {"type", "message"}


def fail(why):
    print(f"check_junit: {why}")
    sys.exit(1)


def check_time(element):
    t = element.get("time")
    if t is not None and not TIME.match(t):
        fail(f"<{element.tag}> time={t!r} is not a decimal number")


def main():
    root = ET.parse(sys.argv[1]).getroot()
    if root.tag != "testsuites":
        fail(f"root is <{root.tag}>, not <testsuites>")
    if set(root.attrib) - SUITES_ATTRS:
        fail(f"<testsuites> has unknown attributes {set(root.attrib) - SUITES_ATTRS}")
    check_time(root)
    total = failed = 0
    for suite in root:
        if suite.tag != "testsuite":
            fail(f"<testsuites> holds <{suite.tag}>")
        for attr in ("name", "tests", "failures", "errors"):
            if attr not in suite.attrib:
                fail(f"<testsuite> lacks {attr}")
        if set(suite.attrib) - SUITE_ATTRS:
            fail(f"<testsuite> has unknown attributes {set(suite.attrib) - SUITE_ATTRS}")
        check_time(suite)
        cases = suite_failures = 0
        for case in suite:
            if case.tag not in SUITE_CHILDREN:
                fail(f"<testsuite> holds <{case.tag}>")
            if case.tag != "testcase":
                continue
            cases += 1
            if not case.get("name"):
                fail("<testcase> without a name")
            if not case.get("classname"):
                fail(f"<testcase {case.get('name')}> without a classname (GitLab and Jenkins group by it)")
            if set(case.attrib) - CASE_ATTRS:
                fail(f"<testcase> has unknown attributes {set(case.attrib) - CASE_ATTRS}")
            check_time(case)
            for child in case:
                if child.tag not in CASE_CHILDREN:
                    fail(f"<testcase> holds <{child.tag}>")
                if child.tag == "failure":
                    suite_failures += 1
                    if set(child.attrib) - FAILURE_ATTRS:
                        fail(f"<failure> has unknown attributes {set(child.attrib) - FAILURE_ATTRS}")
                    if not child.get("message"):
                        fail("<failure> without a message")
        if int(suite.get("tests")) != cases or int(suite.get("failures")) != suite_failures:
            fail(f"<testsuite {suite.get('name')}> says {suite.get('tests')} tests, {suite.get('failures')} failures; "
                 f"holds {cases}, {suite_failures}")
        total += cases
        failed += suite_failures
    if root.get("tests") is not None and int(root.get("tests")) != total:
        fail(f"<testsuites> says {root.get('tests')} tests, holds {total}")
    if root.get("failures") is not None and int(root.get("failures")) != failed:
        fail(f"<testsuites> says {root.get('failures')} failures, holds {failed}")
    if len(sys.argv) == 4 and (total, failed) != (int(sys.argv[2]), int(sys.argv[3])):
        fail(f"{total} tests, {failed} failures; expected {sys.argv[2]}, {sys.argv[3]}")
    print(f"check_junit: valid: {total} testcases, {failed} failures")


if __name__ == "__main__":
    main()
