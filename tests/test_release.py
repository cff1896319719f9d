"""Releases for real (docs/deploy.md section 5a): `scripts/release` run as ops runs it,
against a checkout whose `origin` is a local git repository, with two workers behind the
shipped nginx site, PostgreSQL and Redis, and clients chatting through nginx throughout.

The workers are started the way `chat-daphne@.service` starts them (its ExecStart, the
env file read by the shell); without systemd, the release's three system steps are given
as commands (`CHAT_INSTALL`, `CHAT_MIGRATE`, `CHAT_RESTART`, documented in the script):
`CHAT_MIGRATE` runs `chat-migrate.service`'s ExecStart lines, `CHAT_RESTART` is
`python tests/test_release.py restart PORT` (below), which does what `systemctl restart`
does for a `Type=simple` unit: SIGTERM, wait for the exit (SIGKILL after the unit's
TimeoutStopSec), start again. The install step is a marker: a real `pip install -e` took
~90 s here (an isolated build of setuptools), so the release's pip line is what the
production runbook exercises.

Also here: a worker stopped with SIGTERM while clients chat exits promptly (chatsite/serve.py:
closes its sockets with a close frame and drains) and every client reconnects without losing a
message.
"""

from __future__ import annotations

import os
import select
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

STOP_TIMEOUT = 15.0  # chat-daphne@.service: TimeoutStopSec=15
ROOT = Path(__file__).resolve().parents[1]


def unit_exec_lines(unit: str) -> list[list[str]]:
    """A deploy/systemd unit's ExecStart lines as argv lists."""
    text = (ROOT / "deploy" / "systemd" / unit).read_text()
    return [shlex.split(x.removeprefix("ExecStart=")) for x in text.splitlines() if x.startswith("ExecStart=")]  # fmt: skip


def pid_exited(pid: int, timeout: float) -> bool:
    """Wait (a pidfd, no polling) until process `pid` exits; False after `timeout`."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def restart_worker(port: int) -> None:
    """`systemctl restart chat-daphne@PORT` for the test's workers (CHAT_TEST_DIR holds
    pid files, logs and the env file; CHAT_APP the checkout; CHAT_TEST_PYTHON the venv's
    python): stop the running one, start the unit's ExecStart with the env file read by
    the shell, detached (it outlives this command, as a unit's process does)."""
    work = Path(os.environ["CHAT_TEST_DIR"])
    pid_file = work / f"worker-{port}.pid"
    if pid_file.exists():
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        else:
            if not pid_exited(pid, STOP_TIMEOUT):
                os.kill(pid, signal.SIGKILL)
                pid_exited(pid, STOP_TIMEOUT)
    (argv,) = unit_exec_lines("chat-daphne@.service")
    argv = [os.environ["CHAT_TEST_PYTHON"], *(a.replace("%i", str(port)) for a in argv[1:])]
    env_file = shlex.quote(str(work / "chat.env"))
    script = f"set -a; . {env_file}; set +a; exec {shlex.join(argv)}"
    with (work / f"worker-{port}.log").open("ab") as log:
        proc = subprocess.Popen(
            ["sh", "-c", script], cwd=os.environ["CHAT_APP"], stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    pid_file.write_text(str(proc.pid))


if __name__ == "__main__":  # python tests/test_release.py restart PORT
    assert sys.argv[1] == "restart", sys.argv
    restart_worker(int(sys.argv[2]))
    sys.exit(0)


import asyncio  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import secrets  # noqa: E402

import psycopg  # noqa: E402
import pytest  # noqa: E402

from scripts.devstack import NGINX, SHARED_ADDRESS_LIMITS, TlsProxy, free_port, port_open  # noqa: E402
from tests.support.ci import skip_or_fail  # noqa: E402
from tests.support.fixtures import _redis_db_index  # noqa: E402
from tests.support.production_clients import Peer, new_keys  # noqa: E402

# The module's stack (two clones, two workers, nginx) takes 30-80 s to start under load.
pytestmark = [pytest.mark.processes, pytest.mark.timeout(300)]

#: SIGTERM to exit for a worker with open, busy sockets: 0.4 s measured (load 9). Before
#: the drain and the prompt exit: 2.2-3.9 s (load 12-27), and never by itself when a store
#: was in flight (systemd's SIGKILL after 15 s ended it).
EXIT_BOUND = 2.0
SERVICE_RESTART = 1000  # chatsite.serve's close code (before: 1006, no close frame)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=release test", "-c", "user.email=t@example.org", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def make_checkout(tmp: Path) -> tuple[Path, Path]:
    """`origin.git` holding this tree (its uncommitted changes committed on top) and `app`,
    a clone of it: the /srv/chat/app of these tests."""
    origin = tmp / "origin.git"
    git(tmp, "clone", "--quiet", "--bare", str(ROOT), str(origin))
    work = tmp / "work"
    git(tmp, "clone", "--quiet", str(origin), str(work))
    diff = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=ROOT, capture_output=True)
    if diff.stdout.strip():
        subprocess.run(["git", "apply"], cwd=work, input=diff.stdout, check=True)
        git(work, "commit", "--quiet", "-am", "the tree under test")
    git(work, "push", "--quiet", "origin", "HEAD:refs/heads/release")
    app = tmp / "app"
    git(tmp, "clone", "--quiet", "--branch", "release", str(origin), str(app))
    return origin, app


def worker_pid(work: Path, port: int) -> int:
    return int((work / f"worker-{port}.pid").read_text())


def wait_healthy(port: int, timeout: float = 60.0) -> None:
    """Until the worker answers /healthz 200 (scripts/release_restart.py's own check)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import release_restart
    finally:
        sys.path.pop(0)
    release_restart.wait_healthy(port, "127.0.0.1", timeout)


@pytest.fixture(scope="module")
def site(tmp_path_factory, postgres_server, redis_server):
    """Two workers started as their unit starts them, from a checkout with a local
    `origin`, behind the shipped nginx site with TLS; PostgreSQL and Redis."""
    if not os.access(NGINX, os.X_OK):
        skip_or_fail("nginx not found (run scripts/install-system-deps.sh)")
    tmp = tmp_path_factory.mktemp("release")
    origin, app = make_checkout(tmp)
    http_port, https_port, ports = free_port(), free_port(), [free_port(), free_port()]
    redis_db = next(_redis_db_index)
    redis_server.flushdb(redis_db)
    database_url = postgres_server.new_database(
        "release", template=postgres_server.migrated_template()
    )
    url = f"https://127.0.0.1:{https_port}"
    settings = {
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_DEBUG": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_CSRF_TRUSTED_ORIGINS": url,
        "DJANGO_BEHIND_TLS_PROXY": "1",
        "DJANGO_HSTS_SECONDS": "60",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_server.url_for(redis_db),
        "REGISTRATION_OPEN": "1",
        "LOG_FORMAT": "json",
        "DJANGO_STATIC_ROOT": str(tmp / "static"),
        "CHAT_VAR_DIR": str(tmp / "var"),
        "PYTHONUNBUFFERED": "1",
        **SHARED_ADDRESS_LIMITS,
    }
    (tmp / "chat.env").write_text("".join(f"{k}='{v}'\n" for k, v in settings.items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.update(
        CHAT_TEST_DIR=str(tmp), CHAT_APP=str(app), CHAT_TEST_PYTHON=sys.executable,
        CHAT_ENV_FILE=str(tmp / "chat.env"), CHAT_VENV=str(Path(sys.executable).parent.parent),
        CHAT_PORTS=" ".join(map(str, ports)), CHAT_USER="",
    )  # fmt: skip
    restart = f"{shlex.quote(sys.executable)} {shlex.quote(__file__)} restart {{port}}"
    nginx = None
    try:
        for port in ports:
            subprocess.run(shlex.split(restart.format(port=port)), env=env, check=True)
        for port in ports:
            wait_healthy(port)
        nginx = TlsProxy(
            ports, tmp / "static", folder=tmp, http_port=http_port, https_port=https_port
        ).start()
        yield {
            "tmp": tmp, "origin": origin, "app": app, "ports": ports, "env": env, "url": url,
            "restart": restart, "database_url": database_url,
            "tls": nginx.tls_context(),
        }  # fmt: skip
    finally:
        if nginx is not None:
            nginx.stop()
        for port in ports:
            with contextlib.suppress(OSError, ValueError):
                pid = worker_pid(tmp, port)
                os.kill(pid, signal.SIGTERM)
                if not pid_exited(pid, STOP_TIMEOUT):
                    os.kill(pid, signal.SIGKILL)


class Chat:
    """Two peers in one conversation through nginx, each sending every 50 ms (at most 20
    unacknowledged) until `stop`; a closed socket is recovered as a client does
    (reconnect, sync, resend unacknowledged by client_msg_id). Records close codes."""

    def __init__(self, site: dict, tag: str):
        self.peers = [Peer(f"{tag}{i}", site["url"], site["tls"], new_keys()) for i in range(2)]
        self.stop = asyncio.Event()
        self.close_codes: list[int | None] = []

    async def open(self) -> None:
        for peer in self.peers:
            await asyncio.to_thread(peer.sign_up)
        a, b = self.peers
        status, body, _ = await asyncio.to_thread(
            a.browser.call, "POST", "/api/conversations/", {"members": [b.name]}
        )
        assert status == 201, body
        self.conversation = body["conversation"]
        self.keys = await asyncio.to_thread(a.recipients, self.conversation)
        for peer in self.peers:
            await peer.connect()

    async def run(self) -> None:
        await asyncio.gather(*(self._chatter(peer) for peer in self.peers))

    async def _chatter(self, peer: Peer) -> None:
        cid, sent = self.conversation["id"], 0
        while not self.stop.is_set() or sent < 3:
            if peer.closed.is_set():
                self.close_codes.append(peer.ws.close_code)
                await peer.recover(cid)
            if len(peer.pending) < 20:
                await peer.send_text(self.conversation, self.keys, f"{peer.name} #{sent}")
                sent += 1
            await asyncio.sleep(0.05)  # pacing (the traffic's shape), not synchronization
        deadline = time.monotonic() + 30
        while peer.pending:
            left = deadline - time.monotonic()
            assert left > 0, f"{peer.name}: unacknowledged {list(peer.pending)}"
            if peer.closed.is_set():
                self.close_codes.append(peer.ws.close_code)
                await peer.recover(cid)
                continue
            peer.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(peer.changed.wait(), left)

    async def check_nothing_lost(self) -> None:
        """Both peers hold every message sent, once, at seq 1..n; no handshake failed."""
        cid = self.conversation["id"]
        expected = {k: v for peer in self.peers for k, v in peer.sent_texts.items()}
        for peer in self.peers:
            await peer.sync(cid)
            seen = sorted(
                (m for m in peer.messages.values() if m["conversation"] == cid),
                key=lambda m: m["seq"],
            )
            assert [m["seq"] for m in seen] == list(range(1, len(expected) + 1))
            assert {m["client_msg_id"] for m in seen} == expected.keys(), "lost or extra"
        assert sum(peer.failed_handshakes for peer in self.peers) == 0, "a handshake failed"
        for peer in self.peers:
            await peer.close()

    def acked(self, n: int) -> bool:
        return all(len(peer.acks) >= n for peer in self.peers)


def worker_events(site: dict, port: int) -> list[dict]:
    lines = (site["tmp"] / f"worker-{port}.log").read_text().splitlines()
    records = [json.loads(x) for x in lines if x.startswith("{")]
    return [r for r in records if r.get("logger") == "chatsite.worker"]


async def until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_stopped_worker_closes_its_sockets_and_exits_promptly(site):
    """SIGTERM to a worker whose clients are sending: it closes their sockets with a close
    frame (1000; before, they saw 1006: no close frame) and exits within EXIT_BOUND; the clients reconnect through nginx
    to the other worker at their first handshake, and no message is lost or doubled."""
    chat = Chat(site, "stop")
    await chat.open()
    running = asyncio.create_task(chat.run())
    await until(lambda: chat.acked(5))
    port = site["ports"][0]
    pid = worker_pid(site["tmp"], port)
    started = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    exited = await asyncio.to_thread(pid_exited, pid, STOP_TIMEOUT)
    seconds = time.monotonic() - started
    if not exited:
        os.kill(pid, signal.SIGKILL)
    await until(lambda: len(chat.close_codes) >= 1 and chat.acked(10))
    chat.stop.set()
    await running
    print(f"worker SIGTERM to exit: {seconds:.2f}s; close codes {chat.close_codes}")
    assert exited and seconds < EXIT_BOUND, f"worker took {seconds:.1f}s to exit"
    assert set(chat.close_codes) == {SERVICE_RESTART}, chat.close_codes
    await chat.check_nothing_lost()
    drained = [e for e in worker_events(site, port) if e["message"] == "worker drained"]
    assert drained and drained[-1]["applications_left"] == 0, drained
    subprocess.run(shlex.split(site["restart"].format(port=port)), env=site["env"], check=True)
    await asyncio.to_thread(wait_healthy, port)


EXPAND = '''from django.db import migrations


class Migration(migrations.Migration):
    """A release's expand step: a nullable column the old workers do not know."""

    dependencies = [("messaging", "{previous}")]
    operations = [
        migrations.RunSQL(
            "ALTER TABLE messaging_message ADD COLUMN release_probe text NULL",
            "ALTER TABLE messaging_message DROP COLUMN release_probe",
        )
    ]
'''


def commit_expand_migration(site: dict) -> str:
    """A new commit on origin's `release` branch: an additive migration (section 5a)."""
    work = site["tmp"] / "work"
    migrations = work / "messaging" / "migrations"
    previous = max(p.stem for p in migrations.glob("0*.py"))
    number = int(previous[:4]) + 1
    (migrations / f"{number:04d}_release_probe.py").write_text(EXPAND.format(previous=previous))
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "release test: an expand migration")
    git(work, "push", "--quiet", "origin", "HEAD:refs/heads/release")
    return git(work, "rev-parse", "HEAD")


async def test_scripts_release_restarts_one_worker_at_a_time_under_chat(site):
    """`scripts/release origin/release` for real: fetches the new commit, installs,
    migrates (an additive migration, while the old workers serve), then restarts each
    worker and waits for its /healthz before the next, while two clients chat through
    nginx: 0 failed handshakes, every message stored once and seen by both."""
    commit = commit_expand_migration(site)
    app, tmp, ports = site["app"], site["tmp"], site["ports"]
    migrate = " && ".join(
        f"{shlex.quote(sys.executable)} {shlex.join(line[1:])}"
        for line in unit_exec_lines("chat-migrate.service")
    )
    env_file = shlex.quote(str(tmp / "chat.env"))
    env = {
        **site["env"],
        "CHAT_INSTALL": f"git rev-parse HEAD > {shlex.quote(str(tmp / 'installed'))}",
        "CHAT_MIGRATE": f"cd {shlex.quote(str(app))} && set -a && . {env_file} && set +a && {migrate}",
        "CHAT_RESTART": site["restart"],
    }
    old_pids = {port: worker_pid(tmp, port) for port in ports}
    chat = Chat(site, "rel")
    await chat.open()
    running = asyncio.create_task(chat.run())
    await until(lambda: chat.acked(3))
    started = time.monotonic()
    done = await asyncio.to_thread(
        subprocess.run, ["bash", str(ROOT / "scripts" / "release"), "origin/release"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    seconds = time.monotonic() - started
    chat.stop.set()
    await running
    assert done.returncode == 0, done.stdout + done.stderr
    events = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    print(f"release {seconds:.1f}s: {events}")
    assert [e["event"] for e in events] == [
        "release_started", "checked_out", "installed", "migrated",
        "worker_restarted", "worker_restarted", "release_done",
    ]  # fmt: skip
    assert commit.startswith(events[1]["commit"])
    assert (tmp / "installed").read_text().strip() == commit == git(app, "rev-parse", "HEAD")
    assert [e["port"] for e in events if e["event"] == "worker_restarted"] == ports
    with psycopg.connect(site["database_url"]) as db:
        column = db.execute(
            "SELECT 1 FROM information_schema.columns"
            " WHERE table_name = 'messaging_message' AND column_name = 'release_probe'"
        ).fetchone()
    assert column, "the new migration did not run"
    for port in ports:  # one stop and one start each, new process, all healthy
        assert worker_pid(tmp, port) != old_pids[port] and port_open(port)
        stops = [e["pid"] for e in worker_events(site, port) if e["message"] == "worker stopping"]
        assert stops[-1] == old_pids[port]
    # One at a time: the second worker began to stop after the first was back.
    first_back = next(
        e for e in worker_events(site, ports[0])
        if e["message"] == "worker started" and e["pid"] == worker_pid(tmp, ports[0])
    )  # fmt: skip
    second_stop = next(
        e for e in worker_events(site, ports[1]) if e["message"] == "worker stopping"
    )
    assert second_stop["time"] >= first_back["time"]
    await chat.check_nothing_lost()
    log = (tmp / "chat.access.log").read_text().splitlines()
    assert not [x for x in log if '"status":502' in x or '"status":504' in x]
