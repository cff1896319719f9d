"""GET /healthz: 200 when the database and the channel layer answer, 503 when one does not."""

import json
import statistics
import time
import urllib.error
import urllib.request

import pytest
from django.test import Client

from messaging import health
from scripts.devstack import PostgresServer, RedisServer


def get_health(client: Client):
    response = client.get("/healthz")
    return response.status_code, response.json()


@pytest.mark.django_db
def test_healthy_in_process():
    status, body = get_health(Client())
    assert status == 200
    assert body["status"] == "ok" and body["database"] == "ok" and body["channel_layer"] == "ok"
    head = Client().head("/healthz")
    assert head.status_code == 200 and "no-cache" in head["Cache-Control"]
    assert Client().post("/healthz").status_code == 405


@pytest.mark.django_db
def test_database_failure_is_503(monkeypatch):
    def broken():
        raise RuntimeError("database is down")

    monkeypatch.setattr(health, "_database", broken)
    status, body = get_health(Client())
    assert status == 503
    assert body == {**body, "status": "fail", "database": "error", "channel_layer": "ok"}


class StuckLayer:
    async def new_channel(self, prefix="specific."):
        return prefix + "x"

    async def send(self, channel, message):
        pass

    async def group_add(self, group, channel):
        pass

    async def group_send(self, group, message):
        pass

    async def receive(self, channel):
        import asyncio

        await asyncio.sleep(3600)


@pytest.mark.django_db
def test_channel_layer_failure_and_timeout_are_503(monkeypatch):
    monkeypatch.setattr(health, "get_channel_layer", lambda: None)
    status, body = get_health(Client())
    assert status == 503 and body["channel_layer"] == "error" and body["database"] == "ok"

    monkeypatch.setattr(health, "get_channel_layer", StuckLayer)
    monkeypatch.setattr(health, "HEALTH_TIMEOUT", 0.2)
    started = time.monotonic()
    status, body = get_health(Client())
    assert status == 503 and body["channel_layer"] == "timeout"
    assert time.monotonic() - started < 2


# --------------------------------------------------------------------------- real processes


def fetch(url: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Host": "127.0.0.1"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.processes
@pytest.mark.load
def test_healthz_follows_redis_and_postgres(live_stack):
    """A worker on its own Redis and PostgreSQL: 200, then 503 naming what went away."""
    from scripts.devstack import postgres_unavailable_reason

    if postgres_unavailable_reason():
        pytest.skip(postgres_unavailable_reason())
    with RedisServer() as redis, PostgresServer() as postgres:
        stack = live_stack(1, db=postgres.url, redis=redis.url)
        url = stack.base_url + "/healthz"

        timings = []
        for _ in range(40):  # what a load balancer polling every second would see
            started = time.monotonic()
            status, body = fetch(url)
            timings.append(time.monotonic() - started)
            assert status == 200 and body["status"] == "ok", body
        median = statistics.median(timings)
        print(f"healthz: median {median * 1000:.1f} ms, max {max(timings) * 1000:.1f} ms")
        assert median < 0.1

        redis.kill()
        status, body = fetch(url)
        assert status == 503
        assert body["channel_layer"] in {"error", "timeout"} and body["database"] == "ok"

        redis.restart()
        deadline = time.monotonic() + 10
        while (status := fetch(url)[0]) != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status == 200, "healthz did not recover after Redis came back"

        postgres.stop()
        started = time.monotonic()
        status, body = fetch(url)
        assert status == 503 and body["database"] in {"error", "timeout"}, body
        assert body["channel_layer"] == "ok"
        assert time.monotonic() - started < 5
