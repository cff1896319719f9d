"""Authorization and fuzzing of the attachment endpoints (§4, §10.2): blob download,
upload, naming blobs in a send and taking a message back, for the actors of
`test_authz_matrix` (anonymous, outsider, other user, revoked device, deactivated user,
staff); CSRF on the unsafe ones; odd Range headers, blob ids and bodies never give a 5xx.
"""

import os

import pytest
from django.test import Client

from messaging.blobs import blob_length, is_blob_length
from messaging.models import Blob, Message
from tests.adversarial.figures import Figures
from tests.adversarial.test_authz_matrix import world
from tests.inprocess import seal

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = blob_length(256)


@pytest.fixture(autouse=True)
def blob_storage(settings, tmp_path):
    from django.core.cache import cache
    from django.core.files.storage import storages

    settings.STORAGES = {
        **settings.STORAGES,
        "blobs": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "blobs")},
        },
    }
    settings.BLOB_UPLOAD_RATE = "1000/h"
    storages._storages.pop("blobs", None)
    cache.clear()
    yield tmp_path / "blobs"
    storages._storages.pop("blobs", None)


def upload(api, body: bytes):
    return api.call("POST", "/api/blobs/", raw=body)


def attachment_world(make_user):
    """`world()` plus alice's blobs: one named by her message in the group, one in the
    direct conversation, one not sent yet."""
    alice, bob, direct, group, actors, secrets = world(make_user)
    blobs = {}
    for where, conversation in (("group", group), ("direct", direct), ("unsent", None)):
        answer = upload(alice.api, os.urandom(SMALL))
        assert answer.status_code == 201, answer.content
        blobs[where] = answer.json_body["blob"]["id"]
        if conversation is not None:
            msg_id, envelope = seal(alice, conversation, f"file in {where}")
            sent = alice.api.post(
                f"/api/conversations/{conversation['id']}/messages/",
                {"client_msg_id": msg_id, "envelope": envelope, "blobs": [blobs[where]]},
            )
            assert sent.status_code == 201, sent.content
            blobs[f"{where} message"] = sent.json_body["message"]["id"]
    return alice, bob, direct, group, actors, blobs


def test_blob_endpoints_matrix(make_user):
    figures = Figures("authz: blob endpoints x actors")
    alice, bob, direct, group, actors, blobs = attachment_world(make_user)
    take_back = f"/api/conversations/{group['id']}/messages/{blobs['group message']}/"
    for actor_name, (api, user) in actors.items():
        anon = actor_name in ("anonymous", "deactivated")
        in_group = actor_name in ("other_user", "revoked")
        in_direct = actor_name == "other_user"

        def want(ok: bool, anon=anon):
            return (
                (401, "not_authenticated") if anon else ((200, None) if ok else (404, "not_found"))
            )

        rows = [
            ("group blob", "GET", f"/api/blobs/{blobs['group']}/", *want(in_group)),
            ("direct blob", "GET", f"/api/blobs/{blobs['direct']}/", *want(in_direct)),
            ("alice's unsent blob", "GET", f"/api/blobs/{blobs['unsent']}/", *want(False)),
            ("unknown blob", "GET", "/api/blobs/" + "Q" * 22 + "/", *want(False)),
            ("take back alice's message", "DELETE", take_back, *want(False)),
        ]
        for label, method, path, status, code in rows:
            response = api.http.get(path) if method == "GET" else api.call(method, path)
            if response.streaming:  # a blob's bytes: not read here
                response.json_body = None
            elif method == "GET":
                response.json_body = response.json() if response.content else None
            where = f"{actor_name}: {label} {method} {path}"
            figures.check(response.status_code == status, f"{where}: {response.status_code}")
            if code is not None:
                got = (response.json_body or {}).get("error", {}).get("code")
                figures.check(got == code, f"{where}: code {got} (want {code})")
        response = upload(api, os.urandom(SMALL))
        figures.check(
            response.status_code == (401 if anon else 201), f"{actor_name}: upload {response}"
        )
        if actor_name == "other_user":  # bob names alice's unsent blob in his own message
            msg_id, envelope = seal(user, direct, "not yours")
            response = api.post(
                f"/api/conversations/{direct['id']}/messages/",
                {"client_msg_id": msg_id, "envelope": envelope, "blobs": [blobs["unsent"]]},
            )
            figures.check(response.status_code == 400, f"bob names alice's blob: {response}")
    figures.check(Message.objects.filter(deleted=True).count() == 0, "a message was taken back")
    figures.check(Message.objects.count() == 4, "a message was stored or lost")
    figures.check(
        Blob.objects.get(pk=blobs["unsent"]).message_id is None, "alice's unsent blob was named"
    )
    figures.assert_clean()


def test_csrf_on_blob_upload_and_take_back(make_user, blob_storage):
    figures = Figures("authz: CSRF on blob upload and take-back")
    alice, bob, direct, group, actors, blobs = attachment_world(make_user)
    files_before = sorted(blob_storage.rglob("*"))
    unsafe = [
        ("post", "/api/blobs/", os.urandom(SMALL), "application/octet-stream"),
        ("delete", f"/api/conversations/{group['id']}/messages/{blobs['group message']}/", None,
         "application/json"),
    ]  # fmt: skip
    for variant in ("missing", "wrong"):
        for method, path, body, content_type in unsafe:
            http = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
            http.cookies = alice.api.http.cookies
            headers = {"HTTP_X_CSRFTOKEN": "x" * 32} if variant == "wrong" else {}
            response = getattr(http, method)(path, data=body, content_type=content_type, **headers)
            ok = response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
            figures.check(ok, f"{variant} token {method} {path}: {response.status_code}")
    figures.check(sorted(blob_storage.rglob("*")) == files_before, "a blob file changed")
    figures.check(Blob.objects.count() == 3, "a blob row changed")
    figures.check(not Message.objects.filter(deleted=True).exists(), "a message was taken back")
    figures.assert_clean()


def test_fuzz_blob_ranges_ids_and_bodies(make_user, blob_storage):
    """Odd input never gives a 5xx, and every answer is one PROTOCOL allows."""
    figures = Figures("fuzz: blob ranges, ids and bodies")
    alice, bob, direct, group, actors, blobs = attachment_world(make_user)
    blob = blobs["unsent"]
    ranges = [
        "bytes=0-0", "bytes=-0", "bytes=0-", "bytes=-99999", f"bytes={SMALL - 1}-",
        f"bytes={SMALL}-", "bytes=5-1", "bytes=0-1,3-4", "bytes=a-b", "bytes= 1-2",
        "items=0-1", "bytes=99999999999999999999999-", "bytes=-", "", "bytes=1-2-3",
        "bytes=0-99999999999999999999999999",
    ]  # fmt: skip
    for header in ranges:
        response = alice.api.http.get(f"/api/blobs/{blob}/", headers={"Range": header})
        figures.check(
            response.status_code in (200, 206, 416), f"Range {header!r}: {response.status_code}"
        )
    ids = ["", "a", "A" * 21, "A" * 23, "A" * 22 + "%00", "..%2F..%2Fetc", "%F0%9F%92%A9" * 4,
           blob.upper(), blob[:-1] + "=", "A" * 500]  # fmt: skip
    for blob_id in ids:
        response = alice.api.http.get(f"/api/blobs/{blob_id}/")
        figures.check(response.status_code in (400, 404), f"id {blob_id!r}: {response.status_code}")
    lengths = [1, 255, 256, SMALL - 16, SMALL + 16, 65536, 65552, 65553]
    for length in lengths:
        response = upload(alice.api, os.urandom(length))
        figures.check(
            response.status_code in (201, 400),
            f"upload of {length} bytes: {response.status_code}",
        )
        figures.check(
            (response.status_code == 201) == is_blob_length(length),
            f"upload of {length} bytes accepted or refused wrongly: {response.status_code}",
        )
    for bad in ({"blobs": "nope"}, {"blobs": [1]}, {"blobs": [None]}, {"blobs": [blob] * 11}):
        msg_id, envelope = seal(alice, direct, "fuzz")
        response = alice.api.post(
            f"/api/conversations/{direct['id']}/messages/",
            {"client_msg_id": msg_id, "envelope": envelope, **bad},
        )
        figures.check(response.status_code == 400, f"send with {bad}: {response.status_code}")
    figures.check(Message.objects.count() == 4, "a fuzzed send was stored")
    figures.assert_clean()
