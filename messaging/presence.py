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
from typing import NamedTuple

from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from keys.actions import mark_devices_seen

from . import realtime, visibility
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


async def announce(user_ids, user, online: bool) -> None:
    """Tell these users' sockets that `user` is online or offline for them: a
    `chat.presence` event (the frame's text, and who and what it says) to each user
    group (`realtime.send_to_groups`). Every `presence` frame but a connect's snapshot
    goes this way, so a socket can leave out one that repeats what it was last told of
    that user (see `ChatConsumer.chat_presence`)."""
    groups = sorted({realtime.user_group(uid) for uid in user_ids})
    event = {
        "type": "chat.presence",
        "user_id": user.pk,
        "online": online,
        "text": realtime.encode(presence_frame(user, online)),
    }
    await realtime.send_to_groups(groups, event)


announce_sync = async_to_sync(announce)


class Peer(NamedTuple):
    """An online user to name in a `presence` frame."""

    pk: int
    username: str


class Opened(NamedTuple):
    """A socket recorded: whether its user came online with it, and the online users in
    touch with her (§6), to name in her snapshot and, when she came online, to tell."""

    came_online: bool
    online: list[Peer]


_CONNECTION = connection.ops.quote_name(Connection._meta.db_table)
_USER = connection.ops.quote_name(get_user_model()._meta.db_table)


def _marks(values) -> str:
    return ", ".join(["%s"] * len(values))


def _rows(sql: str, params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return cursor.fetchall()


def _fresh_since():
    since = timezone.now() - timedelta(seconds=STALE_SECONDS)
    return connection.ops.adapt_datetimefield_value(since)


def register_many(sockets, max_per_user: int, max_per_device: int) -> list[Opened | None]:
    """Record open sockets, given as (channel_name, user_id, device_id) in the order they
    came, as if one after the other: one transaction for all, then one query for the
    counts and one for who is online.

    Each gets None (and no row) when it makes more than `max_per_user` live sockets of
    its user or `max_per_device` of its device, counted with every live socket, those of
    other processes included, and with those before it here; else `Opened`. A socket's
    user came online when no live socket of hers was there before it; it is told of the
    peers online before it (other processes' sockets, and those before it here), and the
    peers after it here are told of her, so each pair meets once. Rows are written before
    anything is counted: sockets opening at once in two processes count each other.
    """
    if not sockets:
        return []
    now = timezone.now()
    rows = [
        Connection(
            channel_name=channel,
            user_id=user_id,
            device_id=device_id,
            worker=WORKER_ID,
            host=HOST,
            port=PORT,
            pid=os.getpid(),
            opened=now,
            seen=now,
        )
        for channel, user_id, device_id in sockets
    ]
    with transaction.atomic():
        Connection.objects.bulk_create(rows)
        mark_devices_seen({device_id for _, _, device_id in sockets}, now)
    names = [channel for channel, _, _ in sockets]
    users = sorted({user_id for _, user_id, _ in sockets})
    since = _fresh_since()
    per_user: dict[int, int] = {}
    per_device: dict[tuple[int, int], int] = {}
    counted = _rows(
        f"SELECT user_id, device_id, COUNT(*) FROM {_CONNECTION} WHERE user_id IN"
        f" ({_marks(users)}) AND seen >= %s AND channel_name NOT IN ({_marks(names)})"
        " GROUP BY user_id, device_id",
        [*users, since, *names],
    )
    for user_id, device_id, n in counted:
        per_user[user_id] = per_user.get(user_id, 0) + n
        per_device[user_id, device_id] = n
    came = set(per_user)  # users with live sockets elsewhere: not coming online here
    first: dict[int, int] = {}  # user -> index of her first socket kept here
    kept: list[bool] = []
    refused = []
    for i, (channel, user_id, device_id) in enumerate(sockets):
        u, d = per_user.get(user_id, 0) + 1, per_device.get((user_id, device_id), 0) + 1
        if u > max_per_user or d > max_per_device:
            kept.append(False)
            refused.append(channel)
            continue
        per_user[user_id], per_device[user_id, device_id] = u, d
        first.setdefault(user_id, i)
        kept.append(True)
    if refused:
        Connection.objects.filter(channel_name__in=refused).delete()
    # Online peers of these users: live elsewhere (`outside`), or here before a socket.
    peers: dict[int, list[tuple[int, str, bool]]] = {}
    for mine, theirs, username, outside in _rows(
        f"SELECT DISTINCT mine.user_id, theirs.user_id, (SELECT u.username FROM {_USER} u"
        " WHERE u.id = theirs.user_id), EXISTS (SELECT 1 FROM"
        f" {_CONNECTION} c WHERE c.user_id = theirs.user_id AND c.seen >= %s AND"
        f" c.channel_name NOT IN ({_marks(names)})) {visibility.IN_TOUCH_FROM}"
        f" AND mine.user_id IN ({_marks(users)}) AND EXISTS (SELECT 1 FROM {_CONNECTION} c"
        " WHERE c.user_id = theirs.user_id AND c.seen >= %s)",
        [since, *names, *visibility.IN_TOUCH_PARAMS, *users, since],
    ):
        peers.setdefault(mine, []).append((theirs, username, bool(outside)))
    opened: list[Opened | None] = []
    for i, (_, user_id, _) in enumerate(sockets):
        if not kept[i]:
            opened.append(None)
            continue
        online = [
            Peer(theirs, username)
            for theirs, username, outside in peers.get(user_id, ())
            if outside or first.get(theirs, i) < i
        ]
        opened.append(Opened(user_id not in came and first[user_id] == i, online))
    return opened


def unregister_many(sockets) -> list[list[int] | None]:
    """Forget closed sockets, given as (channel_name, user_id): one transaction, then one
    query for who is still online and one for whom to tell. For each socket, None when
    its user still has a live socket (or another socket here stands for her), else the
    online users in touch with her, to tell that she went offline."""
    if not sockets:
        return []
    names = [channel for channel, _ in sockets]
    with transaction.atomic():
        gone = Connection.objects.filter(channel_name__in=names)
        mark_devices_seen(list(gone.values_list("device_id", flat=True)))
        gone.delete()
    users = sorted({user_id for _, user_id in sockets})
    since = _fresh_since()
    still = {
        uid
        for (uid,) in _rows(
            f"SELECT DISTINCT user_id FROM {_CONNECTION} WHERE user_id IN ({_marks(users)})"
            " AND seen >= %s",
            [*users, since],
        )
    }
    offline = [uid for uid in users if uid not in still]
    tell: dict[int, list[int]] = {uid: [] for uid in offline}
    if offline:
        for mine, theirs in _rows(
            f"SELECT DISTINCT mine.user_id, theirs.user_id {visibility.IN_TOUCH_FROM}"
            f" AND mine.user_id IN ({_marks(offline)}) AND EXISTS (SELECT 1 FROM"
            f" {_CONNECTION} c WHERE c.user_id = theirs.user_id AND c.seen >= %s)",
            [*visibility.IN_TOUCH_PARAMS, *offline, since],
        ):
            tell[mine].append(theirs)
    last = {user_id: i for i, (_, user_id) in enumerate(sockets)}
    return [
        tell[user_id] if user_id in tell and last[user_id] == i else None
        for i, (_, user_id) in enumerate(sockets)
    ]


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
