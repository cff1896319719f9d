"""The cache's Redis connections are reused across requests (chatsite/cache_pool.py)."""

import asyncio
import contextvars

import pytest
import redis
from asgiref.sync import sync_to_async
from django.core.cache import caches

pytestmark = pytest.mark.processes


def _connections_received(probe: redis.Redis) -> int:
    return int(probe.info("stats")["total_connections_received"])


async def test_requests_share_one_redis_pool(settings, redis_server):
    """Each request's context gets its own cache object (as under daphne); 50 of them open
    at most a couple of connections instead of one each."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server.url_for(15),
            "OPTIONS": {"pool_class": "chatsite.cache_pool.SharedConnectionPool"},
        }
    }

    def one_request(n: int) -> None:
        caches["default"].set(f"k{n}", n)

    probe = redis.Redis.from_url(redis_server.url)
    before = _connections_received(probe)
    for n in range(50):
        # A fresh context per request, as daphne gives each one: a new cache object.
        await asyncio.create_task(sync_to_async(one_request)(n), context=contextvars.Context())
    opened = _connections_received(probe) - before
    probe.close()
    assert opened <= 2, f"{opened} Redis connections for 50 requests"
