"""One Redis connection pool per process for Django's cache (`CACHES` OPTIONS `pool_class`).

Django keeps a cache object per async context, so under ASGI every request builds its own
`RedisCacheClient` and, with redis-py's stock pool, opens a new Redis connection (a
connect, a DNS lookup and a teardown per rate-limited request). `SharedConnectionPool`
hands every client of one URL and options the same thread-safe pool, so connections are
reused across requests; redis-py resets a pool it finds in a forked child.
"""

import threading

from redis import ConnectionPool


class SharedConnectionPool(ConnectionPool):
    """A redis-py pool whose `from_url` returns one pool per (url, options) per process."""

    _shared: dict[str, ConnectionPool] = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs) -> ConnectionPool:
        key = f"{url}|{sorted(kwargs.items(), key=lambda item: item[0])!r}"
        with cls._lock:
            pool = cls._shared.get(key)
            if pool is None:
                pool = cls._shared[key] = super().from_url(url, **kwargs)
            return pool
