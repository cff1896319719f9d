"""Run one test of the suite again, in its own pytest process, on a fresh PostgreSQL
database: the twin of a test that otherwise runs on the suite's SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Only the plugins such a run needs (autoloading all of them costs seconds).
PLUGINS = ["-p", "pytest_django.plugin", "-p", "pytest_asyncio.plugin", "-p", "pytest_timeout"]


def rerun_on_postgresql(node_id: str, database_url: str, **env: str) -> None:
    """Run `node_id` (`path::test`) against `database_url`, with tables made from the
    models (no migrations), no Redis and `env` added; fails with its output unless it
    passed."""
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": "",
        "PYTHONPATH": str(ROOT),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        **env,
    }
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *PLUGINS, node_id, "-q", "--nomigrations"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr
