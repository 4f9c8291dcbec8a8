#!/usr/bin/env python3
"""junit_summary.py FILE — print "passed failed skipped" for one JUnit XML report.

The one reader of the JUnit files make test collects (CTest's --output-junit, pytest's
--junitxml, the browser tests' reporter): every <testcase> counts once. A failure or error
element, or CTest's status "fail" or "notrun" (the test binary did not build), is a failure;
a skipped element or status "disabled" a skip; anything else a pass. A missing or unreadable
file prints "0 0 0" (the caller decides what a phase without a report means)."""
import sys
import xml.etree.ElementTree as ET


def summary(path):
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return 0, 0, 0
    passed = failed = skipped = 0
    for tc in root.iter("testcase"):
        status = tc.get("status", "")
        if status in ("fail", "notrun") or tc.find("failure") is not None \
                or tc.find("error") is not None:
            failed += 1
        elif status == "disabled" or tc.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: junit_summary.py FILE")
    print(*summary(sys.argv[1]))
