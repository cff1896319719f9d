"""The hostile-server cases of the browser app's message code (static/chat) under node:
tests/adversarial/js/*.test.mjs, run here so their counts join the suite's figures."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.adversarial.figures import Figures

HERE = Path(__file__).parent


def test_browser_modules_against_hostile_server():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not installed (scripts/install-system-deps.sh)")
    files = sorted(str(p) for p in (HERE / "js").glob("*.test.mjs"))
    done = subprocess.run(
        [node, "--test", "--test-reporter=tap", *files],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=HERE.parents[1],
    )
    figures = Figures("hostile server/member vs browser modules (node)")
    counts = {k: int(v) for k, v in re.findall(r"^# (tests|pass|fail) (\d+)$", done.stdout, re.M)}
    figures.cases = counts.get("tests", 0)
    for name in re.findall(r"^not ok \d+ - (.*)$", done.stdout, re.M):
        figures.fail(name)
    if done.returncode != 0 and not figures.failures:
        figures.fail(done.stdout[-2000:] + done.stderr[-2000:])
    figures.assert_clean()
