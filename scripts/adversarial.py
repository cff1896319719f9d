#!/usr/bin/env python3
"""Run the adversarial suite (tests/adversarial) and print its figures as a table.

    scripts/adversarial.py            the CI variant (also part of `make test`)
    scripts/adversarial.py --soak     1,000 devices x 100 messages, longer schemathesis
    scripts/adversarial.py --table F  only print the table of a figures file
    scripts/adversarial.py --markdown ... the table as Markdown (for docs/reliability.md)

Each scenario appends one JSON line (tests/adversarial/figures.py) to the file named by
ADVERSARIAL_FIGURES; this script points it at a fresh file under var/, runs pytest twice
(non-browser, then browser in its own process, as scripts/run-tests.sh does), and
summarises: cases tried, failures, messages sent / stored / delivered / lost / duplicated.
Extra arguments go to pytest. Exit status: non-zero if any pytest run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["cases", "failures", "sent", "stored", "delivered", "lost", "duplicated", "seconds"]
MESSAGE_COLUMNS = {"stored", "delivered", "lost", "duplicated"}


def load(path: Path) -> list[dict]:
    """The last line of each scenario (a re-run replaces an earlier one)."""
    rows: dict[str, dict] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            rows[row["scenario"]] = row
    return list(rows.values())


def cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(rows: list[dict], markdown: bool = False) -> str:
    header = ["scenario", *COLUMNS]
    body = [[row["scenario"], *(cell(row.get(c)) for c in COLUMNS)] for row in rows]
    totals = ["TOTAL"]
    for column in COLUMNS:
        # message columns add up over the scenarios that send messages (fuzz rows count
        # the rows their still-valid mutations stored, with no "sent")
        counted = [r for r in rows if column not in MESSAGE_COLUMNS or r.get("sent") is not None]
        values = [r.get(column) for r in counted if isinstance(r.get(column), int | float)]
        totals.append(cell(sum(values)) if values else "-")
    body.append(totals)
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
        return "\n".join(lines)
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]

    def fmt(r):
        return "  ".join(
            str(v).ljust(widths[i]) if i == 0 else str(v).rjust(widths[i]) for i, v in enumerate(r)
        )

    rule = "-" * len(fmt(header))
    return "\n".join([fmt(header), rule, *map(fmt, body[:-1]), rule, fmt(body[-1])])


def notes(rows: list[dict]) -> str:
    out = []
    for row in rows:
        if row.get("notes"):
            out.append(f"- {row['scenario']}: {row['notes']}")
        for problem in row.get("problems") or []:
            out.append(f"  ! {problem[:300]}")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--soak", action="store_true", help="1,000 devices x 100 messages")
    parser.add_argument("--table", type=Path, help="only print the table of this figures file")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--no-browser", action="store_true", help="skip the browser tests")
    args, pytest_args = parser.parse_known_args()
    if args.table:
        rows = load(args.table)
        print(table(rows, args.markdown))
        print(notes(rows))
        return 0

    python = os.environ.get("PYTHON") or str(ROOT / ".venv" / "bin" / "python")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    figures = ROOT / "var" / f"adversarial-figures-{stamp}.jsonl"
    figures.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, ADVERSARIAL_FIGURES=str(figures))
    if args.soak:
        env.setdefault("LOAD_MESSAGES", "100")
        env.setdefault("SCHEMATHESIS_EXAMPLES", "100")
        env.setdefault("SCHEMATHESIS_MAX_TIME", "900")
    runs = [["-m", "not browser"]]
    if not args.no_browser:
        runs.append(["-m", "browser"])
    failed = False
    started = time.monotonic()
    for marker in runs:
        argv = [python, "-m", "pytest", "-q", "-rfEs", *marker, "tests/adversarial", *pytest_args]
        print("$", " ".join(argv), flush=True)
        code = subprocess.call(argv, cwd=ROOT, env=env)
        failed |= code not in (0, 5)  # 5: no tests collected
    rows = load(figures)
    print()
    print(
        f"Adversarial suite figures ({figures.relative_to(ROOT)}, {time.monotonic() - started:.0f} s):"
    )
    print(table(rows, args.markdown))
    print(notes(rows))
    if failed:
        print("FAILED: see the pytest output above")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
