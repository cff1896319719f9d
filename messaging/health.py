"""GET /healthz for load balancers: database and channel layer, 200 or 503.

Cheap enough to poll every second: one `SELECT 1` and one message group-sent to this
process's probe channel (published through Redis when REDIS_URL is set, so a Redis that
does not take it fails the probe), each bounded by HEALTH_TIMEOUT. The body says which part failed, never why
(details go to the log, without secrets).
"""

import asyncio
import logging
import secrets
import time
import weakref

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

HEALTH_TIMEOUT = 2.0


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        if cursor.fetchone() != (1,):
            raise RuntimeError("SELECT 1 gave something else")


# event loop -> (its probe channel, group): one, not one per probe
_probes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def _channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    loop = asyncio.get_running_loop()
    try:
        if loop not in _probes:
            _probes[loop] = (await layer.new_channel(), "healthz." + secrets.token_hex(8))
        channel, group = _probes[loop]
        await layer.group_add(group, channel)
        token = secrets.token_hex(8)
        await layer.group_send(group, {"type": "healthz.ping", "token": token})
        while (await layer.receive(channel)).get("token") != token:
            pass  # a late answer to an earlier probe
    except BaseException:  # timed out or failed: a fresh channel next time
        _probes.pop(loop, None)
        raise


async def _probe(name: str, check) -> str:
    try:
        await asyncio.wait_for(check(), HEALTH_TIMEOUT)
    except TimeoutError:
        logger.warning("healthz: %s timed out after %ss", name, HEALTH_TIMEOUT)
        return "timeout"
    except Exception as exc:  # any failure is a 503, with the reason in the log
        logger.warning("healthz: %s failed: %s: %.200s", name, type(exc).__name__, exc)
        return "error"
    return "ok"


@never_cache
@require_safe
async def healthz(request):
    """`{"status": "ok"|"fail", "database": ..., "channel_layer": ..., "ms": ...}`."""
    started = time.monotonic()
    database, channel_layer = await asyncio.gather(
        _probe("database", sync_to_async(_database)),
        _probe("channel layer", _channel_layer),
    )
    healthy = database == channel_layer == "ok"
    body = {
        "status": "ok" if healthy else "fail",
        "database": database,
        "channel_layer": channel_layer,
        "ms": round((time.monotonic() - started) * 1000, 1),
    }
    return JsonResponse(body, status=200 if healthy else 503)
