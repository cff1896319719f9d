"""pytest plugin: the unit stage's plumbing for pytest-xdist (`scripts/run-tests.sh` runs it
with `-n 2 --dist loadgroup --no-loadscope-reorder`).

* Tests of a module with a module-scoped fixture (one live stack for the module) go to one
  worker together (an `xdist_group` named after the module), so the stack starts once.
* Tests marked `load` (they measure throughput or latency) share the `xdist_group` "load":
  one worker runs them one after another, never two at once.
* In a worker, the slow tests that use no in-process database go first, slowest first,
  from the durations recorded in `tests/support/durations.json` (longest job first: no
  90-second test starts last while the other worker idles). Tests using the database keep
  pytest-django's order (plain, then transactional); unknown tests keep their place.
  `python -m tests.support.scheduling LOG...` rewrites the file from `--durations=0` output.

Without xdist nothing changes but the `xdist_group` marks, which only xdist reads.
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
_SHARED_SCOPES = {"module", "class", "package"}


def _shares_a_fixture(item: pytest.Item) -> bool:
    """True if the item uses a fixture set up once for several tests of its module."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    for defs in info.name2fixturedefs.values():
        # the project's own fixtures (plugins' have no baseid: pytest-django's class-scoped
        # autouse one is in every test's closure)
        if defs and defs[-1].scope in _SHARED_SCOPES and defs[-1].baseid:
            return True
    return False


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


def _group(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    if mark is None:
        return None
    return str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))


def load_durations(path: Path = DURATIONS) -> dict[str, float]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(session, config, items):
    # Before the other implementations: xdist's worker turns xdist_group marks into groups.
    for item in items:
        if _group(item) is not None:
            continue
        if item.get_closest_marker("load"):
            item.add_marker(pytest.mark.xdist_group("load"))
        elif _shares_a_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    plain_ids = {id(item): item.nodeid for item in items}
    result = yield
    # After them: pytest-django has put the database tests in its order.
    if hasattr(config, "workerinput"):
        _slowest_first(items, plain_ids, load_durations())
    return result


def _slowest_first(items: list[pytest.Item], plain_ids: dict[int, str], seconds) -> None:
    unit_of = {id(item): _group(item) or plain_ids[id(item)] for item in items}
    cost: dict[str, float] = defaultdict(float)
    movable: dict[str, bool] = defaultdict(lambda: True)
    for item in items:
        unit = unit_of[id(item)]
        cost[unit] += seconds.get(plain_ids[id(item)], 0.0)
        movable[unit] = movable[unit] and not _uses_database(item)

    def key(item: pytest.Item) -> float:
        unit = unit_of[id(item)]
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
