"""Figures of the adversarial suite: each scenario appends one JSON line to a file that
`scripts/adversarial.py` summarises as a table (and docs/reliability.md records).

The file is $ADVERSARIAL_FIGURES, else var/adversarial-figures.jsonl in the repository.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_STARTED: float | None = None  # set by tests/adversarial/conftest.py for each test


def figures_path() -> Path:
    return Path(
        os.environ.get("ADVERSARIAL_FIGURES") or REPO_ROOT / "var" / "adversarial-figures.jsonl"
    )


@dataclass
class Figures:
    """Counts of one scenario; `record()` appends them as a JSON line."""

    scenario: str
    cases: int = 0
    failures: int = 0
    sent: int | None = None
    stored: int | None = None
    delivered: int | None = None
    lost: int | None = None
    duplicated: int | None = None
    notes: str = ""
    started: float = field(default_factory=lambda: TEST_STARTED or time.monotonic(), repr=False)
    problems: list[str] = field(default_factory=list, repr=False)

    def fail(self, problem: str) -> None:
        """Count one failed case and remember why (the first few are kept)."""
        self.failures += 1
        if len(self.problems) < 20:
            self.problems.append(problem)

    def check(self, ok: bool, problem: str) -> bool:
        self.cases += 1
        if not ok:
            self.fail(problem)
        return ok

    def record(self) -> None:
        line = {k: v for k, v in asdict(self).items() if k not in ("started", "problems")}
        line["seconds"] = round(time.monotonic() - self.started, 1)
        line["problems"] = self.problems[:5]
        path = figures_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line, ensure_ascii=False) + "\n")

    def assert_clean(self) -> None:
        """Record, then fail the test if any case failed."""
        self.record()
        assert self.failures == 0, f"{self.scenario}: {self.failures} failures: {self.problems}"
