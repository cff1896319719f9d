"""The deploy/ files and production settings: check --deploy, the env template, static files
under daphne alone, JSON logs."""

import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from pythonjsonlogger.json import JsonFormatter

from scripts.devstack import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
SETTINGS = REPO_ROOT / "chatsite" / "settings.py"


def template_env() -> dict[str, str]:
    """KEY=value lines of deploy/chat.env.example."""
    env = {}
    for line in (DEPLOY / "chat.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def settings_variables() -> set[str]:
    source = SETTINGS.read_text()
    pattern = r"""(?:os\.environ\.get|os\.environ\[|env_bool|env_list|env_rate)\(?\s*["']([A-Z_][A-Z0-9_]*)["']"""
    return set(re.findall(pattern, source))


def test_env_template_lists_every_setting():
    documented = template_env()
    read = settings_variables()
    assert read, "no environment variables found in settings.py?"
    assert read - documented.keys() == set(), "add these to deploy/chat.env.example"
    assert documented.keys() - read - {"DJANGO_SETTINGS_MODULE"} == set(), "stale names"
    text = (DEPLOY / "chat.env.example").read_text()
    for name in documented:  # each one is explained on the lines above it
        block = text.split(f"\n{name}=")[0].rsplit("\n\n", 1)[-1]
        assert "#" in block.splitlines()[-1], f"{name} has no comment above it"


def production_env(tmp_path: Path) -> dict[str, str]:
    """The template's values, with a real secret and writable paths."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.update(template_env())
    env.update(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        CHAT_VAR_DIR=str(tmp_path / "var"),
        DJANGO_STATIC_ROOT=str(tmp_path / "static"),
    )
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_check_deploy_passes_with_the_production_environment(tmp_path):
    env = production_env(tmp_path)
    done = manage(env, "check", "--deploy")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    issues = set(re.findall(r"\(([a-z_]+\.[EW]\d+)\)", output))
    assert not issues, output
    strict = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert strict.returncode == 0, strict.stdout + strict.stderr


def test_check_deploy_catches_an_unsafe_environment(tmp_path):
    env = production_env(tmp_path)
    env.update(DJANGO_DEBUG="1", DJANGO_BEHIND_TLS_PROXY="0", DJANGO_SECRET_KEY="short")
    done = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    output = done.stdout + done.stderr
    assert done.returncode != 0
    for code in ("security.W018", "security.W012", "security.W016", "security.W009"):
        assert code in output


def test_systemd_unit_runs_daphne_behind_the_proxy():
    unit = (DEPLOY / "systemd" / "chat-daphne@.service").read_text()
    exec_start = next(x for x in unit.splitlines() if x.startswith("ExecStart="))
    assert "--proxy-headers" in exec_start and "--bind 127.0.0.1" in exec_start
    assert "--port %i" in exec_start and "chatsite.asgi:application" in exec_start
    assert "EnvironmentFile=/etc/chat/chat.env" in unit
    target = (DEPLOY / "systemd" / "chat.target").read_text()
    site = (DEPLOY / "nginx" / "chat.conf").read_text()
    for port in re.findall(r"chat-daphne@(\d+)\.service", target):
        assert f"server 127.0.0.1:{port} " in site


def test_json_log_lines_leave_requests_out(settings, capsys):
    if not settings.DEBUG and "LOG_FORMAT" not in os.environ:
        assert settings.LOG_FORMAT == "json"  # the default when DEBUG is off
        assert settings.LOGGING["handlers"]["stdout"]["formatter"] == "json"

    options = dict(settings.LOGGING["formatters"]["json"])
    options.pop("()")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(**options))
    logger = logging.getLogger("test.deploy.json")
    logger.addHandler(handler)
    logger.propagate = False

    class Request:
        META = {"HTTP_COOKIE": "sessionid=must-not-show"}

        def __str__(self):
            return "sessionid=must-not-show"

    try:
        logger.error(
            "Internal Server Error: %s", "/x", extra={"request": Request(), "status_code": 500}
        )
    finally:
        logger.removeHandler(handler)
    line = capsys.readouterr().out.strip()
    record = json.loads(line)
    assert record["level"] == "ERROR" and record["logger"] == "test.deploy.json"
    assert record["message"] == "Internal Server Error: /x" and record["status_code"] == 500
    assert "must-not-show" not in line


@pytest.mark.processes
def test_static_files_under_daphne_alone_with_manifest(live_stack):
    """No nginx: WhiteNoise serves collectstatic's hashed, compressed files."""
    # As deploy/chat.env.example sets it: the automatic choice looks for collectstatic's
    # manifest, which a first collectstatic with plain storage never writes.
    stack = live_stack(1, redis=False, collectstatic=True, env={"DJANGO_MANIFEST_STATIC": "1"})
    with urllib.request.urlopen(stack.base_url + "/login/", timeout=10) as response:
        page = response.read().decode()
    css = re.search(r'href="(/static/chat/app\.[0-9a-f]{12}\.css)"', page)
    assert css, "the page does not link the hashed file (manifest storage off?)"
    request = urllib.request.Request(stack.base_url + css.group(1))
    request.add_header("Accept-Encoding", "gzip")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert "immutable" in response.headers["Cache-Control"]
        assert response.headers.get("Content-Encoding") == "gzip"
    module = re.search(r'src="(/static/chat/main\.[0-9a-f]{12}\.js)"', page) or re.search(
        r'src="(/static/chat/[^"]+\.js)"', page
    )
    if module:
        with urllib.request.urlopen(stack.base_url + module.group(1), timeout=10) as response:
            assert response.status == 200
    # Unhashed names still answer (ES module imports use them).
    with urllib.request.urlopen(stack.base_url + "/static/chat/protocol.js", timeout=10) as r:
        assert r.status == 200 and "javascript" in r.headers["Content-Type"]


def test_chat_manage_reads_secrets_from_the_file_not_the_command_line(tmp_path):
    """deploy/chat-manage: values with spaces, `#` and `$` arrive intact, and no setting is
    on any process's command line (the old `env $(grep … | xargs)` put them in `ps`)."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("runuser needs root")
    secret = "s3cret with spaces # and $dollar " + secrets.token_hex(8)
    env_file = tmp_path / "chat.env"
    env_file.write_text(
        f"# settings\nDJANGO_SECRET_KEY='{secret}'\nCHAT_VAR_DIR={tmp_path / 'var'}\n"
        f"DATABASE_URL=sqlite:///{tmp_path / 'db.sqlite3'}\n"
    )
    probe = (
        "import os, pathlib; "
        "print(repr(os.environ['DJANGO_SECRET_KEY'])); "
        "print(all(os.environ['DJANGO_SECRET_KEY'] not in p.read_bytes().decode(errors='replace')"
        " for p in pathlib.Path('/proc').glob('[0-9]*/cmdline') if p.exists()))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    env.update(CHAT_USER="root", CHAT_ENV_FILE=str(env_file), CHAT_APP=str(REPO_ROOT),
               CHAT_VENV=str(Path(sys.executable).parents[1]))  # fmt: skip
    done = subprocess.run(
        ["sh", str(DEPLOY / "chat-manage"), "shell", "-c", probe],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-2:] == [repr(secret), "True"]
