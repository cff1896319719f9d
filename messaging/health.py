"""GET /healthz for load balancers: database and channel layer, 200 or 503.

Cheap enough to poll every second: one `SELECT 1` and one message sent to and received
from a fresh channel of the channel layer (a round trip through Redis when REDIS_URL
is set), each bounded by HEALTH_TIMEOUT. The body says which part failed, never why
(details go to the log, without secrets).
"""

import asyncio
import logging
import secrets
import time

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


async def _channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    # The default prefix: channels_redis reads every "specific." channel of this process
    # through one shared BZPOPMIN, which another prefix would wait behind.
    channel = await layer.new_channel()
    token = secrets.token_hex(8)
    await layer.send(channel, {"type": "healthz.ping", "token": token})
    message = await layer.receive(channel)
    if message.get("token") != token:
        raise RuntimeError("the channel layer gave back another message")


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
