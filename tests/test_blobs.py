"""Encrypted attachments on the server (PROTOCOL §4, §10.2): upload, download with Range,
authorization, naming blobs in sends, take-back, purge and the admin; in process, against
the real database and the real `blobs` storage (a temp directory)."""

import os
import time

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command

from messaging import blobs as blob_queries
from messaging.models import Blob, HistoryKey, Message
from tests.inprocess import ApiClient, change_roster, create_group, seal

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = blob_queries.blob_length(256)  # 272: the smallest blob


@pytest.fixture(autouse=True)
def blob_storage(settings, tmp_path):
    """A fresh filesystem `blobs` storage per test; no upload rate limit unless a test sets
    one (each test's cache starts empty)."""
    from django.core.cache import cache
    from django.core.files.storage import storages

    settings.STORAGES = {
        **settings.STORAGES,
        "blobs": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "blobs")},
        },
    }
    storages._storages.pop("blobs", None)
    cache.clear()
    yield tmp_path / "blobs"
    storages._storages.pop("blobs", None)


def stored_files(root) -> list:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def upload(user, body: bytes):
    return user.api.call(
        "POST", "/api/blobs/", raw=body, headers={"Content-Type": "application/octet-stream"}
    )


def upload_ok(user, body: bytes | None = None) -> str:
    response = upload(user, body if body is not None else os.urandom(SMALL))
    assert response.status_code == 201, response.content
    return response.json_body["blob"]["id"]


def download(user, blob_id: str, headers=None):
    response = user.api.http.get(f"/api/blobs/{blob_id}/", headers=headers or {})
    if response.streaming:

        async def collect():
            return b"".join([part async for part in response.streaming_content])

        response.body = async_to_sync(collect)()
    else:
        response.body = response.content
    return response


def send(user, conversation: dict, blobs=None, text="file", client_msg_id=None):
    msg_id, envelope = seal(user, conversation, text, client_msg_id)
    body = {"client_msg_id": msg_id, "envelope": envelope}
    if blobs is not None:
        body["blobs"] = blobs
    return user.api.post(f"/api/conversations/{conversation['id']}/messages/", body), msg_id


def test_blob_lengths_follow_padme():
    assert [blob_queries.padme(x) for x in (0, 255, 256, 257, 1000, 65537, 10**6)] == [
        256,
        256,
        256,
        272,
        1024,
        67584,
        1015808,
    ]
    assert blob_queries.is_blob_length(272)
    assert not blob_queries.is_blob_length(271) and not blob_queries.is_blob_length(273)
    assert blob_queries.is_blob_length(65536 + 16)
    assert blob_queries.is_blob_length(67584 + 32)
    assert blob_queries.is_blob_length(blob_queries.blob_length(blob_queries.MAX_PADDED))
    assert not blob_queries.is_blob_length(blob_queries.blob_length(blob_queries.MAX_PADDED) + 1)


def test_upload_download_and_ranges(trio, blob_storage):
    alice, bob, carol, direct = trio
    body = os.urandom(blob_queries.blob_length(1024))
    response = upload(alice, body)
    assert response.status_code == 201, response.content
    blob = response.json_body["blob"]
    assert blob["size"] == len(body) and len(blob["id"]) == 22
    assert [p.read_bytes() for p in stored_files(blob_storage)] == [body]

    whole = download(alice, blob["id"])
    assert whole.status_code == 200 and whole.body == body
    assert whole["Content-Type"] == "application/octet-stream"
    assert whole["Content-Disposition"] == "attachment"
    assert whole["X-Content-Type-Options"] == "nosniff"
    assert whole["Cache-Control"] == "private, max-age=31536000, immutable"
    assert whole["Accept-Ranges"] == "bytes"

    part = download(alice, blob["id"], {"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.body == body[100:200]
    assert part["Content-Range"] == f"bytes 100-199/{len(body)}"
    tail = download(alice, blob["id"], {"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.body == body[-10:]
    open_end = download(alice, blob["id"], {"Range": "bytes=1000-"})
    assert open_end.body == body[1000:]
    past = download(alice, blob["id"], {"Range": f"bytes={len(body)}-"})
    assert past.status_code == 416 and past["Content-Range"] == f"bytes */{len(body)}"

    # uploader only before a message names it; nobody learns that the id exists
    for other in (bob, carol):
        assert download(other, blob["id"]).status_code == 404
    assert download(bob, "A" * 22).status_code == 404
    assert download(bob, "nope").status_code == 404

    sent, _ = send(alice, direct, [blob["id"]])
    assert sent.status_code == 201, sent.content
    message = sent.json_body["message"]
    assert message["blobs"] == [blob["id"]] and message["deleted"] is False
    assert download(bob, blob["id"]).body == body
    assert download(carol, blob["id"]).status_code == 404
    history = bob.api.get(f"/api/conversations/{direct['id']}/messages/").json_body
    assert history["messages"][-1]["blobs"] == [blob["id"]]


def test_refused_uploads_store_nothing(trio, blob_storage, settings):
    alice = trio[0]
    settings.MAX_BLOB_BYTES = blob_queries.blob_length(65536)
    over = upload(alice, os.urandom(settings.MAX_BLOB_BYTES + 1))
    assert over.status_code == 413 and over.json_body["error"]["code"] == "too_large"
    odd = upload(alice, os.urandom(SMALL + 1))
    assert odd.status_code == 400 and odd.json_body["error"]["code"] == "bad_request"
    empty = upload(alice, b"")
    assert empty.status_code == 400
    settings.BLOB_QUOTA_BYTES = 2 * SMALL
    upload_ok(alice)
    upload_ok(alice)
    quota = upload(alice, os.urandom(SMALL))
    assert quota.status_code == 413 and quota.json_body["error"]["code"] == "over_quota"
    assert "attachments" in quota.json_body["error"]["detail"]
    assert Blob.objects.count() == 2 and len(stored_files(blob_storage)) == 2
    response = ApiClient().call("POST", "/api/blobs/", raw=os.urandom(SMALL))
    assert response.status_code == 401
    assert Blob.objects.count() == 2 and len(stored_files(blob_storage)) == 2


def test_upload_rate_limit(trio, settings):
    alice, bob = trio[0], trio[1]
    settings.BLOB_UPLOAD_RATE = "2/h"
    upload_ok(alice)
    upload_ok(alice)
    limited = upload(alice, os.urandom(SMALL))
    assert limited.status_code == 429 and limited.json_body["error"]["code"] == "rate_limited"
    upload_ok(bob)  # per user
    assert Blob.objects.filter(uploader_id=alice.user_id).count() == 2


def test_sends_name_only_own_unsent_blobs(trio, blob_storage):
    alice, bob, carol, direct = trio
    mine, other = upload_ok(alice), upload_ok(bob)
    bad = [
        [other],  # someone else's
        ["B" * 22],  # unknown
        [mine, other],  # one good, one foreign: nothing of it is stored
        [mine, mine],  # not distinct
        ["short"],  # not an id
        [upload_ok(alice) for _ in range(11)],  # more than 10
    ]
    last_seq = 0
    for blobs in bad:
        response, _ = send(alice, direct, blobs)
        assert response.status_code == 400, (blobs, response.content)
        assert response.json_body["error"]["code"] == "bad_request"
    assert Message.objects.count() == 0 and not Blob.objects.exclude(message=None).exists()

    first, msg_id = send(alice, direct, [mine])
    assert first.status_code == 201
    last_seq = first.json_body["message"]["seq"]
    assert last_seq == 1  # the refused sends took no seq
    # the same client_msg_id again: the stored message, not a second one
    again, _ = send(alice, direct, [mine], client_msg_id=msg_id)
    assert (
        again.status_code == 200
        and again.json_body["message"]["id"] == (first.json_body["message"]["id"])
    )
    # naming it again in another message is refused
    twice, _ = send(alice, direct, [mine])
    assert twice.status_code == 400
    assert Message.objects.count() == 1


async def test_socket_send_names_blobs_and_a_bad_item_is_refused_alone(trio):
    from asgiref.sync import sync_to_async

    alice, bob, carol, direct = trio
    good, foreign = await sync_to_async(upload_ok)(alice), await sync_to_async(upload_ok)(bob)
    m1, e1 = await sync_to_async(seal)(alice, direct, "bad")
    m2, e2 = await sync_to_async(seal)(alice, direct, "good")
    ws = alice.socket()
    connected, _ = await ws.connect()
    assert connected
    # two sends in flight at once: the group commit must refuse only the bad one
    await ws.send_json_to(
        {
            "type": "send",
            "conversation": direct["id"],
            "client_msg_id": m1,
            "envelope": e1,
            "blobs": [foreign],
        }
    )
    await ws.send_json_to(
        {
            "type": "send",
            "conversation": direct["id"],
            "client_msg_id": m2,
            "envelope": e2,
            "blobs": [good],
        }
    )
    seen = {}
    while len(seen) < 2:
        frame = await ws.receive_json_from(timeout=10)
        if frame["type"] in ("ack", "error"):
            seen[frame["client_msg_id"]] = frame
    assert seen[m1]["type"] == "error" and seen[m1]["code"] == "bad_request"
    assert seen[m2]["type"] == "ack"
    stored = await sync_to_async(
        lambda: list(Message.objects.values_list("client_msg_id", "blob_ids"))
    )()
    assert stored == [(m2, [good])]
    await ws.disconnect()


def test_former_member_reads_blobs_up_to_her_leaving(make_user):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    group = create_group(alice, [bob, carol], "g")
    before = upload_ok(alice)
    assert send(alice, group, [before])[0].status_code == 201
    group = change_roster(alice, group, "remove", [carol])
    after = upload_ok(alice)
    assert send(alice, group, [after])[0].status_code == 201
    assert download(carol, before).status_code == 200
    assert download(carol, after).status_code == 404
    assert download(bob, after).status_code == 200


async def test_take_back_removes_blobs_and_tells_members(trio, blob_storage):
    from asgiref.sync import sync_to_async

    alice, bob, carol, direct = trio
    blob_id = await sync_to_async(upload_ok)(alice)
    sent, _ = await sync_to_async(send)(alice, direct, [blob_id])
    message = sent.json_body["message"]
    await sync_to_async(HistoryKey.objects.create)(
        message_id=message["id"], device_id=bob.device_id, ek="AAAA"
    )
    path = f"/api/conversations/{direct['id']}/messages/{message['id']}/"
    ws = bob.socket()
    assert (await ws.connect())[0]

    for stranger in (bob, carol):  # not the sender: no oracle either
        response = await sync_to_async(stranger.api.delete)(path)
        assert response.status_code == 404
    assert await sync_to_async(lambda: len(stored_files(blob_storage)))() == 1

    response = await sync_to_async(alice.api.delete)(path)
    assert response.status_code == 204
    while True:
        frame = await ws.receive_json_from(timeout=10)
        if frame["type"] == "deleted":
            break
    assert frame == {
        "type": "deleted",
        "conversation": direct["id"],
        "id": message["id"],
        "seq": message["seq"],
    }
    await ws.disconnect()
    assert (await sync_to_async(alice.api.delete)(path)).status_code == 204  # idempotent

    def after():
        row = Message.objects.get(pk=message["id"])
        assert row.envelope is None and row.deleted and row.blob_ids == [blob_id]
        assert not Blob.objects.exists() and not HistoryKey.objects.exists()
        assert stored_files(blob_storage) == []
        page = bob.api.get(f"/api/conversations/{direct['id']}/messages/").json_body
        shown = page["messages"][-1]
        assert shown["envelope"] is None and shown["deleted"] is True
        assert download(bob, blob_id).status_code == 404

    await sync_to_async(after)()


def test_purge_removes_old_unnamed_blobs_and_orphans(trio, blob_storage, capsys):
    alice, bob, carol, direct = trio
    old_unnamed, fresh_unnamed, old_named = upload_ok(alice), upload_ok(alice), upload_ok(alice)
    assert send(alice, direct, [old_named])[0].status_code == 201
    day_ago = time.time() - 25 * 3600
    from datetime import UTC, datetime

    Blob.objects.filter(pk__in=[old_unnamed, old_named]).update(
        created=datetime.fromtimestamp(day_ago, UTC)
    )
    orphan_old = blob_storage / "zz" / "zz_orphan_old_orphan_o"
    orphan_new = blob_storage / "zz" / "zz_orphan_new_orphan_n"
    orphan_old.parent.mkdir(parents=True, exist_ok=True)
    orphan_old.write_bytes(b"x")
    orphan_new.write_bytes(b"x")
    os.utime(orphan_old, (day_ago, day_ago))

    call_command("purge_blobs")
    out = capsys.readouterr().out
    assert "1 unnamed" in out and "1 orphaned" in out
    assert set(Blob.objects.values_list("pk", flat=True)) == {fresh_unnamed, old_named}
    names = {p.name for p in stored_files(blob_storage)}
    assert names == {fresh_unnamed, old_named, orphan_new.name}


def test_admin_shows_counts_without_content(trio, blob_storage, django_user_model):
    alice = trio[0]
    canary = b"CANARY-CONTENT-" + b"x" * (SMALL - 15)
    blob_id = upload_ok(alice, canary)
    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    staff.is_superuser = True
    staff.save()
    from django.test import Client

    admin = Client()
    admin.force_login(staff)
    listing = admin.get("/admin/messaging/blob/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert blob_id in page and "CANARY" not in page
    detail = admin.get(f"/admin/messaging/blob/{blob_id}/change/").content.decode()
    assert str(SMALL) in detail and "CANARY" not in detail
    usage = admin.get("/admin/messaging/blobusage/").content.decode()
    assert "alice" in usage and str(SMALL) in usage and "CANARY" not in usage
    assert (
        admin.post(f"/admin/messaging/blob/{blob_id}/delete/", {"post": "yes"}).status_code == 403
    )
    assert Blob.objects.filter(pk=blob_id).exists()
