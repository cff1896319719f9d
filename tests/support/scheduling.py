"""pytest plugin: the order of the unit stage's tests on pytest-xdist workers
(`scripts/run-tests.sh` runs it with `-n 2 --dist loadfile --no-loadscope-reorder`).

`--dist loadfile` sends each test file to one worker as a whole, so a module-scoped
fixture (one live stack for the module) starts once. (`--dist loadgroup` and
`xdist_group` marks do nothing with pytest 9: xdist 3.8 renames items through an
attribute pytest no longer reads.) Tests marked `load` (they measure throughput or
latency) are left out of that run and run alone after it.

In a worker, this plugin puts first the files whose tests use no in-process database,
slowest first, from the durations recorded in `tests/support/durations.json` (longest
job first: no 90-second file starts last while the other worker idles). Files with
database tests keep pytest-django's order (plain, then transactional); unknown tests
keep their place. `python -m tests.support.scheduling LOG...` rewrites the file from
`--durations=0` output. Without xdist nothing changes.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import pytest

DURATIONS = Path(__file__).with_name("durations.json")
#: Tests (or groups) shorter than this keep their place: ordering them gains nothing.
MOVE_AFTER = 3.0
_DB_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    "live_server",
}


def _uses_database(item: pytest.Item) -> bool:
    if item.get_closest_marker("django_db"):
        return True
    if _DB_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    cls = getattr(item, "cls", None)
    try:
        from django.test import SimpleTestCase

        return cls is not None and issubclass(cls, SimpleTestCase)
    except ImportError:
        return False


def load_durations(path: Path = DURATIONS) -> dict[str, float]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # trylast: after pytest-django has put the database tests in its order.
    if hasattr(config, "workerinput"):
        _slowest_first(items, load_durations())


def _slowest_first(items: list[pytest.Item], seconds: dict[str, float]) -> None:
    def file_of(item: pytest.Item) -> str:
        return item.nodeid.split("::")[0]

    cost: dict[str, float] = defaultdict(float)
    movable: dict[str, bool] = defaultdict(lambda: True)
    for item in items:
        cost[file_of(item)] += seconds.get(item.nodeid, 0.0)
        movable[file_of(item)] = movable[file_of(item)] and not _uses_database(item)

    def key(item: pytest.Item) -> float:
        unit = file_of(item)
        return -cost[unit] if movable[unit] and cost[unit] >= MOVE_AFTER else 0.0

    items.sort(key=key)  # stable: everything else keeps its order


_DURATION_LINE = re.compile(r"^(\d+(?:\.\d+)?)s (?:setup|call|teardown)\s+(\S.*)$")


def parse_durations(lines) -> dict[str, float]:
    """Seconds per test id (setup + call + teardown) from pytest's `--durations=0` lines."""
    total: dict[str, float] = defaultdict(float)
    for line in lines:
        match = _DURATION_LINE.match(line.strip())
        if match:
            total[match.group(2)] += float(match.group(1))
    return dict(total)


def main(argv: list[str]) -> int:
    """Rewrite durations.json from the `--durations=0` output in the given log files
    (tests under 1 s are left out; the file only has to rank the slow ones)."""
    if not argv:
        print(f"usage: python -m tests.support.scheduling LOG... (rewrites {DURATIONS})")
        return 2
    found: dict[str, float] = {}
    for name in argv:
        with open(name, encoding="utf-8", errors="replace") as log:
            found.update(parse_durations(log))
    slow = {k: round(v, 1) for k, v in sorted(found.items(), key=lambda kv: -kv[1]) if v >= 1.0}
    DURATIONS.write_text(json.dumps(slow, indent=0) + "\n")
    print(f"{DURATIONS}: {len(slow)} tests of 1 s or more, {sum(slow.values()):.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
