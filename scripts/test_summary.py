"""Print one line totalling the test reports in a directory.

Reads pytest JUnit XML (*.xml), node --test TAP (*.tap) and stage failure markers
(NAME.failed, written by run-tests.sh when a stage exits non-zero). A failed
stage whose report counts no failure (a crash, a timeout) adds one failure, so the
line never reads "0 failed" for a failing run. Prints:
    total: N passed, N failed, N skipped
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def junit_counts(path: Path) -> tuple[int, int, int]:
    """(passed, failed, skipped) from a JUnit XML file; failed includes errors."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    passed = failed = skipped = 0
    for suite in suites:
        tests = int(suite.get("tests", 0))
        bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skip = int(suite.get("skipped", 0))
        passed += tests - bad - skip
        failed += bad
        skipped += skip
    return passed, failed, skipped


def tap_counts(path: Path) -> tuple[int, int, int]:
    """(passed, failed, skipped) from node's TAP summary comments."""
    found = dict.fromkeys(("pass", "fail", "cancelled", "skipped", "todo"), 0)
    for line in path.read_text(errors="replace").splitlines():
        m = re.fullmatch(r"# (pass|fail|cancelled|skipped|todo) (\d+)", line.strip())
        if m:
            found[m.group(1)] = int(m.group(2))
    return found["pass"], found["fail"] + found["cancelled"], found["skipped"] + found["todo"]


def report_counts(path: Path) -> tuple[int, int, int]:
    """Counts of one report file; (0, 0, 0) for other files or an unreadable report."""
    try:
        if path.suffix == ".xml":
            return junit_counts(path)
        if path.suffix == ".tap":
            return tap_counts(path)
    except (ET.ParseError, OSError, ValueError) as e:
        print(f"unreadable report {path.name}: {e}")
    return 0, 0, 0


def main(directory: str) -> None:
    reports = Path(directory)
    counts = [report_counts(p) for p in sorted(reports.iterdir())]
    passed, failed, skipped = (sum(c[i] for c in counts) for i in range(3))
    for marker in sorted(reports.glob("*.failed")):
        if not any(report_counts(r)[1] for r in reports.glob(marker.stem + ".*")):
            failed += 1
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped")


if __name__ == "__main__":
    main(sys.argv[1])
