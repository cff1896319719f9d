"""The light install (issue 17): the ``e2ee-chat-client`` wheel built from ``client/``
installs into a clean venv with the protocol's needs only (no Django, no server app),
its ``chat-client`` command runs, and ``mypy --strict`` passes on an example against the
installed package's shipped types (``py.typed``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVER_ONLY = ("django", "daphne", "twisted", "psycopg", "channels", "redis")
SERVER_APPS = ("accounts", "keys", "messaging", "chatsite")
CLIENT_NEEDS = {"e2ee-chat-client", "pycryptodome", "websockets", "httpx"}
PROBE = """
import importlib.metadata as md, importlib.util as iu, json, chatclient
print(json.dumps({
    "version": chatclient.__version__,
    "file": chatclient.__file__,
    "dists": sorted(d.metadata["Name"].lower() for d in md.distributions()),
    "present": [n for n in %r if iu.find_spec(n) is not None],
}))
"""


def run(argv: list[str], cwd: Path, timeout: float = 300) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{argv}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.timeout(600)
def test_the_client_wheel_installs_alone_and_type_checks(tmp_path):
    import json

    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip"]
    # The wheel of a copy of client/ (its link followed), so no build/ is left in the tree;
    # pip's cache serves the build backend and the dependencies.
    source = tmp_path / "client"
    ignore = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    shutil.copytree(ROOT / "client", source, symlinks=False, ignore=ignore)
    run([*pip, "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)], tmp_path)
    (wheel,) = wheels.glob("e2ee_chat_client-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    run([*pip, "--python", str(python), "install", "-q", str(wheel)], tmp_path)

    probe = json.loads(run([str(python), "-c", PROBE % (SERVER_ONLY + SERVER_APPS,)], tmp_path))
    assert probe["present"] == []  # no server dependency, no server app
    assert Path(probe["file"]).is_relative_to(venv)
    assert set(probe["dists"]) >= CLIENT_NEEDS, probe["dists"]
    assert len(probe["dists"]) <= 12, probe["dists"]  # the server's install: 45
    assert probe["version"] == "0.1.0"
    assert "chat-client" in run([str(venv / "bin" / "chat-client"), "--help"], tmp_path)

    # mypy --strict on an example, from a directory without the source tree: chatclient
    # comes from the venv, typed by its py.typed.
    work = tmp_path / "check"
    work.mkdir()
    shutil.copy(ROOT / "examples" / "echo_bot.py", work / "echo_bot.py")
    out = run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--python-executable",
            str(python),
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "echo_bot.py",
        ],
        work,
    )
    assert "Success: no issues found in 1 source file" in out
