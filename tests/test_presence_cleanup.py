"""Presence rows (messaging.Connection) never outlive their sockets for long: the
consumer deletes its row even when Redis fails, `manage.py clear_presence` deletes stale
rows (or all, at a cold start), a worker deletes the rows of its port's last process."""

from datetime import timedelta

import pytest
import redis.exceptions
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.utils import timezone

from messaging import presence
from messaging.models import Connection
from scripts.devstack import RedisServer

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_row_goes_when_redis_fails_at_disconnect(settings, make_user):
    """Redis dies while the socket is open: leaving the groups fails at the close, and the
    presence row is deleted all the same (before, the error left it: "online" for 90 s)."""
    server = RedisServer().start()
    try:
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [{"address": server.url, "socket_timeout": None}]},
            }
        }
        alice = await sync_to_async(make_user)("alice")
        ws = alice.socket()
        connected, _ = await ws.connect(timeout=5)
        assert connected
        assert await Connection.objects.filter(user_id=alice.user_id).acount() == 1
        server.stop()
        with pytest.raises(redis.exceptions.ConnectionError):
            await ws.disconnect(timeout=10)
        assert await Connection.objects.filter(user_id=alice.user_id).acount() == 0
    finally:
        server.stop()


def _row(user, device_id: int, name: str, *, seen_ago: float, **fields) -> Connection:
    seen = timezone.now() - timedelta(seconds=seen_ago)
    return Connection.objects.create(
        channel_name=name, user_id=user.user_id, device_id=device_id, seen=seen,
        worker=fields.pop("worker", "w" * 32), **fields,
    )  # fmt: skip


def test_clear_presence_deletes_stale_rows_or_all(make_user, capsys):
    alice = make_user("alice")
    _row(alice, alice.device_id, "fresh", seen_ago=5)
    _row(alice, alice.device_id, "stale", seen_ago=presence.STALE_SECONDS + 5)
    call_command("clear_presence")
    assert list(Connection.objects.values_list("channel_name", flat=True)) == ["fresh"]
    assert "cleared 1 presence rows" in capsys.readouterr().out
    call_command("clear_presence", "--all")
    assert not Connection.objects.exists()


def test_a_worker_forgets_its_port_s_last_process_and_its_own_rows(make_user):
    alice = make_user("alice")
    d = alice.device_id
    _row(alice, d, "old", seen_ago=1, host=presence.HOST, port=8001, worker="a" * 32)
    _row(alice, d, "other port", seen_ago=1, host=presence.HOST, port=8002, worker="b" * 32)
    _row(alice, d, "other host", seen_ago=1, host="elsewhere", port=8001, worker="c" * 32)
    _row(alice, d, "mine", seen_ago=1, host=presence.HOST, port=8001, worker=presence.WORKER_ID)
    assert presence.forget_earlier_on_port(8001) == 1
    names = set(Connection.objects.values_list("channel_name", flat=True))
    assert names == {"other port", "other host", "mine"}
    assert presence.forget_worker() == 1
    assert not Connection.objects.filter(worker=presence.WORKER_ID).exists()
