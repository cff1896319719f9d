"""pytest fixtures for real processes. Enable with, in tests/conftest.py:

    pytest_plugins = ["tests.support.fixtures"]

Fixtures:
    redis_server   (session) -> RedisServer, a shared redis-server
    postgres_server (session) -> PostgresServer, a shared throwaway cluster
    sqlite_template (session) -> Path of a migrated SQLite file that stacks copy
    live_stack     (function) -> factory(workers=1, *, db="sqlite", redis=True,
                                 env=None, collectstatic=False) -> DjangoStack

"Session" means one per pytest process: under pytest-xdist every worker has its own
servers, on ports of its own (free ports, each checked to be held by our process) and
temp dirs of its own. A live stack's fresh database is a copy of a database migrated
once per session (SQLite file or PostgreSQL template), not a `manage.py migrate` each.

A missing redis-server or PostgreSQL skips the test with the reason, except
when the CI environment variable is set, where it fails instead.
"""

from __future__ import annotations

import itertools
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from scripts.devstack import (
    DjangoStack,
    PostgresServer,
    RedisServer,
    find_redis_server,
    migrated_sqlite_template,
    postgres_unavailable_reason,
)
from tests.support.ci import skip_or_fail


def _sigterm_as_interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """Turn SIGTERM into KeyboardInterrupt so fixture teardown and atexit stop the services."""
    main = threading.current_thread() is threading.main_thread()
    if main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server on 127.0.0.1 for the whole session; `.url` is db 0."""
    if find_redis_server() is None:
        skip_or_fail("redis-server not found (run scripts/install-system-deps.sh)")
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster on 127.0.0.1 for the whole session; `.url` is its `chat_test` db."""
    reason = postgres_unavailable_reason()
    if reason:
        skip_or_fail(reason)
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session; `live_stack(db="sqlite")` copies it."""
    return migrated_sqlite_template(tmp_path_factory.mktemp("sqlite-template"))


_redis_db_index = itertools.cycle(range(1, 16))


@pytest.fixture
def live_stack(request: pytest.FixtureRequest) -> Iterator[Callable[..., DjangoStack]]:
    """Factory for running DjangoStacks, all stopped at the end of the test.

    make(workers=1, *, db="sqlite", redis=True, env=None, collectstatic=False):
      db:    "sqlite" (fresh file), "postgres" (fresh database on postgres_server) or a URL.
      redis: True (a flushed logical db of its own on redis_server), False (no REDIS_URL)
             or a URL. Workers > 1 need a redis for the channel layer to span them.
      env:   extra environment variables for migrate and daphne.
    """
    stacks: list[DjangoStack] = []

    def make(
        workers: int = 1,
        *,
        db: str = "sqlite",
        redis: bool | str = True,
        env: Mapping[str, str] | None = None,
        collectstatic: bool = False,
    ) -> DjangoStack:
        template, migrated = None, False
        if db == "sqlite":
            database_url = None
            template = request.getfixturevalue("sqlite_template")
        elif db == "postgres":
            postgres: PostgresServer = request.getfixturevalue("postgres_server")
            database_url = postgres.new_database("stack", template=postgres.migrated_template())
            migrated = True
        else:
            database_url = db
        if redis is True:
            server: RedisServer = request.getfixturevalue("redis_server")
            index = next(_redis_db_index)
            server.flushdb(index)
            redis_url = server.url_for(index)
        else:
            redis_url = redis or None
        stack = DjangoStack(
            workers,
            database_url=database_url,
            redis_url=redis_url,
            env=env,
            collectstatic=collectstatic,
            sqlite_template=template,
            migrated=migrated,
        )
        stacks.append(stack)
        return stack.start()

    try:
        yield make
    finally:
        for stack in stacks:
            stack.stop()
