"""Tests of scripts/devstack (and the fixtures of tests/support): real redis-server,
PostgreSQL and daphne processes."""

from __future__ import annotations

import http.client
import os
import socket

import pytest

from scripts.devstack import (
    REPO_ROOT,
    DaphneServer,
    DjangoStack,
    RedisServer,
    ServiceError,
    find_redis_server,
    free_port,
    port_open,
)
from tests.support.ci import skip_or_fail

pytestmark = pytest.mark.processes

# Redundant once tests/conftest.py has this line; harmless when both do.
pytest_plugins = ["tests.support.fixtures"]

ECHO_APP = "tests.support.echo_asgi:application"
HAS_ASGI = (REPO_ROOT / "chatsite" / "asgi.py").exists()
needs_asgi = pytest.mark.skipif(
    not HAS_ASGI, reason="chatsite/asgi.py does not exist yet: no server to start"
)


def http_get(base_url: str, path: str = "/") -> tuple[int, bytes]:
    """Status and body of a plain GET, via http.client (no test client of ours needed)."""
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path, headers={"Host": "127.0.0.1"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def http_status(base_url: str, path: str = "/") -> int:
    return http_get(base_url, path)[0]


def test_free_port_is_bindable():
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_redis_fixture_ping_set_get(redis_server):
    import redis

    client = redis.Redis.from_url(redis_server.url)
    try:
        assert client.ping()
        client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        client.close()


def test_redis_restart_keeps_port_and_loses_data():
    if find_redis_server() is None:
        skip_or_fail("redis-server not found")
    import redis

    server = RedisServer().start()
    try:
        port, first_pid = server.port, server.pid
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        server.restart()
        assert server.port == port and server.pid != first_pid
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        assert client.get("k") is None, "started with --save '' --appendonly no"
        client.close()
    finally:
        server.stop()
    assert not server.running
    assert not port_open(port)


def test_redis_flushdb_empties_one_db(redis_server):
    import redis

    a = redis.Redis.from_url(redis_server.url_for(5))
    b = redis.Redis.from_url(redis_server.url_for(6))
    try:
        a.set("x", 1)
        b.set("x", 1)
        redis_server.flushdb(5)
        assert a.get("x") is None and b.get("x") == b"1"
    finally:
        a.close()
        b.close()


def test_postgres_select_1(postgres_server):
    import psycopg

    with psycopg.connect(postgres_server.url, connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_postgres_new_database(postgres_server):
    import psycopg

    url = postgres_server.new_database("extra")
    with psycopg.connect(url, connect_timeout=10) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
    assert url.endswith("/" + name) and name.startswith("extra_")


def test_daphne_serves_http_and_websocket_kill_restart(tmp_path):
    from websockets.sync.client import connect

    server = DaphneServer({**os.environ}, tmp_path, app=ECHO_APP).start()
    try:
        status, body = http_get(server.base_url)
        assert status == 200 and body == f"ok {server.pid}".encode()
        with connect(server.ws_url + "/echo", open_timeout=10) as ws:
            ws.send("hello")
            assert ws.recv(timeout=10) == "hello"
        port, first_pid = server.port, server.pid
        server.kill()
        assert not server.running and not port_open(port)
        server.restart()
        assert server.port == port and server.pid != first_pid
        assert http_get(server.base_url)[1] == f"ok {server.pid}".encode()
    finally:
        server.stop()
    assert not server.running and server.pid is None and not port_open(port)


def test_daphne_start_failure_reports_log(tmp_path):
    server = DaphneServer({"PATH": "/usr/bin:/bin"}, tmp_path, app="no_such_module:app")
    with pytest.raises(ServiceError, match="daphne exited"):
        server.start(timeout=20)
    assert not server.running


@needs_asgi
def test_stack_two_workers_kill_and_restart(live_stack):
    stack = live_stack(2)
    assert len({s.port for s in stack.servers}) == 2
    assert stack.ws_url == stack.base_url.replace("http://", "ws://")
    for url in stack.base_urls:
        assert http_status(url) < 500
    port = stack.servers[0].port
    stack.kill(0)
    assert not stack.servers[0].running and not port_open(port)
    assert http_status(stack.servers[1].base_url) < 500
    stack.restart(0)
    assert stack.servers[0].port == port
    assert http_status(stack.base_url) < 500


@needs_asgi
def test_stack_on_postgres(live_stack):
    stack = live_stack(1, db="postgres", redis=False)
    assert stack.database_url.startswith("postgresql://")
    assert "REDIS_URL" not in stack.env
    assert http_status(stack.base_url) < 500


@needs_asgi
def test_stack_stop_leaves_nothing_running():
    stack = DjangoStack(1).start()
    server, directory = stack.servers[0], stack.dir
    pid = server.pid
    stack.stop()
    assert not server.running
    with pytest.raises(ProcessLookupError):  # stopped and reaped
        os.kill(pid, 0)
    assert not directory.exists()


@needs_asgi
def test_stack_collectstatic_into_its_own_dir(live_stack):
    stack = live_stack(1, redis=False, collectstatic=True)
    assert stack.database_url.startswith("sqlite:////")
    assert stack.env["DJANGO_STATIC_ROOT"].startswith(str(stack.dir))
    assert (stack.dir / "staticfiles" / "staticfiles.json").exists()
    assert http_status(stack.base_url) < 500
