"""Who is online, across processes: one `Connection` row per open socket.

Each process refreshes `seen` on its own rows every `HEARTBEAT_SECONDS` in one UPDATE;
rows of a process that died stop counting after `STALE_SECONDS` and are purged later.
Each row names its process (`WORKER_ID`, host, port, pid): a worker that stops cleanly
deletes its rows, one that starts on a port deletes the rows of the process that held it
before, and `manage.py clear_presence` deletes stale ones (or all, at a cold start).
"""

import asyncio
import os
import socket
import uuid
from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from keys.actions import mark_devices_seen

from .dbthread import database_call
from .models import Connection

WORKER_ID = uuid.uuid4().hex
HOST = socket.gethostname()[:255]
#: The port this process serves on, once known (chatsite.serve sets it); None elsewhere.
PORT: int | None = None
HEARTBEAT_SECONDS = 30
STALE_SECONDS = 90
PURGE_AFTER = timedelta(days=1)

_heartbeat_task: asyncio.Task | None = None


def _fresh():
    return Connection.objects.filter(seen__gte=timezone.now() - timedelta(seconds=STALE_SECONDS))


def presence_frame(user, online: bool) -> dict:
    """The `presence` frame that says whether this user is online."""
    return {"type": "presence", "user": user.username, "user_id": user.pk, "online": online}


def register(channel_name: str, user_id: int, device_id: int) -> bool:
    """Record an open socket; True when it is the user's only live one (she came online)."""
    Connection.objects.update_or_create(
        channel_name=channel_name,
        defaults={
            "user_id": user_id,
            "device_id": device_id,
            "worker": WORKER_ID,
            "host": HOST,
            "port": PORT,
            "pid": os.getpid(),
            "seen": timezone.now(),
        },
    )
    mark_devices_seen([device_id])
    return _fresh().filter(user_id=user_id).count() == 1


def open_counts(user_id: int, device_id: int) -> tuple[int, int]:
    """The live sockets of this user and of this device of hers (their rows), in one query."""
    counts = (
        _fresh()
        .filter(user_id=user_id)
        .aggregate(user=Count("pk"), device=Count("pk", filter=Q(device_id=device_id)))
    )
    return counts["user"], counts["device"]


def unregister(channel_name: str, user_id: int) -> bool:
    """Forget a closed socket; True when the user has no live socket left (she went offline)."""
    gone = Connection.objects.filter(channel_name=channel_name)
    mark_devices_seen(gone.values_list("device_id", flat=True))
    gone.delete()
    return not _fresh().filter(user_id=user_id).exists()


def forget_worker(worker_id: str = WORKER_ID) -> int:
    """Delete the rows of one process (this one by default: at a clean stop)."""
    return Connection.objects.filter(worker=worker_id).delete()[0]


def forget_earlier_on_port(port: int, host: str = HOST) -> int:
    """Delete the rows of processes that served `host:port` before this one: whoever held
    the port is gone (this process listens on it now), so are its sockets."""
    return Connection.objects.filter(host=host, port=port).exclude(worker=WORKER_ID).delete()[0]


def clear_stale(everything: bool = False) -> int:
    """Delete the rows that no longer count (not seen for STALE_SECONDS), or every row
    (`everything`: a cold start or a restored backup, with no worker running)."""
    rows = Connection.objects.all()
    if not everything:
        rows = rows.filter(seen__lt=timezone.now() - timedelta(seconds=STALE_SECONDS))
    return rows.delete()[0]


def online_among(user_ids) -> set[int]:
    return set(
        _fresh().filter(user_id__in=list(user_ids)).values_list("user_id", flat=True).distinct()
    )


def refresh_worker() -> None:
    """Mark this process's sockets as seen now and purge long-dead rows."""
    now = timezone.now()
    mine = Connection.objects.filter(worker=WORKER_ID)
    mine.update(seen=now)
    mark_devices_seen(mine.values_list("device_id", flat=True), now)
    Connection.objects.filter(seen__lt=now - PURGE_AFTER).delete()


_refresh_worker_in_db = database_call(refresh_worker)


async def _heartbeat() -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        await _refresh_worker_in_db()


def ensure_heartbeat() -> None:
    """Start this process's heartbeat task once (from inside the event loop)."""
    global _heartbeat_task
    loop = asyncio.get_running_loop()
    task = _heartbeat_task
    if task is None or task.done() or task.get_loop() is not loop:
        _heartbeat_task = loop.create_task(_heartbeat())
