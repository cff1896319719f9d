"""The presence heartbeat refreshes this process's rows one slice at a time (by row id),
each row once per round, and no other process's rows."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from keys.models import Device
from messaging import presence
from messaging.models import Connection


@pytest.mark.django_db
def test_each_slice_refreshes_its_rows_only_and_a_round_refreshes_all():
    user = User.objects.create_user("alice")  # presence rows need no keys: no key generation
    device = Device.objects.create(user=user, name="d", enc_kid="e" * 64, sig_kid="s" * 64)
    old = timezone.now() - timedelta(seconds=60)
    for i in range(23):
        worker = presence.WORKER_ID if i % 4 else "x" * 32
        Connection.objects.create(
            channel_name=f"c{i}", user_id=user.pk, device_id=device.pk,
            worker=worker, seen=old,
        )  # fmt: skip
    mine = Connection.objects.filter(worker=presence.WORKER_ID)
    parts = 5
    for part in range(parts):
        presence.refresh_worker(part, parts)
        fresh = set(Connection.objects.filter(seen__gt=old).values_list("pk", flat=True))
        assert fresh == {pk for pk in mine.values_list("pk", flat=True) if pk % parts <= part}
    assert not Connection.objects.exclude(worker=presence.WORKER_ID).filter(seen__gt=old)
    assert Device.objects.get(pk=device.pk).last_seen > old
