#!/usr/bin/env python3
"""Counts the tests in a ctest JUnit report (ctest --output-junit FILE).

Usage: ctest_junit.py FILE [NAME_PREFIX]

Prints one line, "PASSED SKIPPED FAILED TOTAL", over the test cases whose
name starts with NAME_PREFIX (all of them without it). ctest marks a test
that passed status="run", one that failed "fail", and one that did not run
(skipped, disabled, not built) "notrun" or "disabled". The Makefile's
test-<preset> and test-summary stages use it instead of parsing ctest's
human-readable output. Exits 2 if the file is missing or not a JUnit report.
"""
import sys
import xml.etree.ElementTree as ET


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    prefix = argv[2] if len(argv) == 3 else ""
    try:
        root = ET.parse(argv[1]).getroot()
    except (OSError, ET.ParseError) as e:
        print("ctest_junit.py: %s: %s" % (argv[1], e), file=sys.stderr)
        return 2
    if root.tag != "testsuite":
        print("ctest_junit.py: %s: not a ctest JUnit report" % argv[1], file=sys.stderr)
        return 2
    passed = skipped = failed = 0
    for case in root.iter("testcase"):
        if not case.get("name", "").startswith(prefix):
            continue
        status = case.get("status", "")
        if status == "run" and case.find("failure") is None:
            passed += 1
        elif status in ("notrun", "disabled") or case.find("skipped") is not None:
            skipped += 1
        else:
            failed += 1
    print(passed, skipped, failed, passed + skipped + failed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
