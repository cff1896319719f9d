"""The `blobs` storage on S3 (django-storages) against moto's S3 server, started by the
test on loopback as its own process: upload, download with Range, take-back and purge
delete the objects."""

import os
import sys
import time
from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from messaging.models import Blob
from scripts.devstack import Command
from tests.test_blobs import SMALL, download, send, upload_ok

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

BUCKET = "chat-blobs"
CREDENTIALS = {"access_key": "testing", "secret_key": "testing"}


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    """moto's S3-compatible server (`python -m moto.server`) on 127.0.0.1, with a bucket."""
    import boto3

    log = tmp_path_factory.mktemp("moto") / "moto.log"
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "{port}"]
    moto = Command(argv, log, name="moto").start()
    try:
        endpoint = f"http://127.0.0.1:{moto.port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client
    finally:
        moto.stop()


@pytest.fixture(autouse=True)
def s3_blobs(settings, s3_endpoint):
    """STORAGES["blobs"] as settings.py makes it from BLOB_S3_BUCKET, on the moto server;
    the bucket is emptied after each test."""
    from django.core.cache import cache
    from django.core.files.storage import storages

    endpoint, client = s3_endpoint
    settings.BLOB_S3_BUCKET = BUCKET
    settings.BLOB_ACCEL_REDIRECT = "/_blobs/"  # ignored with S3: the app streams
    settings.STORAGES = {
        **settings.STORAGES,
        "blobs": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": endpoint,
                "region_name": "us-east-1",
                "location": "blobs",
                "default_acl": None,
                "file_overwrite": True,
                "querystring_auth": False,
                **CREDENTIALS,
            },
        },
    }
    storages._storages.pop("blobs", None)
    cache.clear()
    yield client
    storages._storages.pop("blobs", None)
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])


def keys(client) -> list[str]:
    return sorted(i["Key"] for i in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_s3_upload_range_take_back_and_purge(trio, s3_blobs, settings):
    client = s3_blobs
    alice, bob, carol, direct = trio
    body = os.urandom(SMALL)
    blob_id = upload_ok(alice, body)
    assert keys(client) == [f"blobs/{blob_id[:2]}/{blob_id}"]
    assert client.get_object(Bucket=BUCKET, Key=keys(client)[0])["Body"].read() == body

    whole = download(alice, blob_id)
    assert whole.status_code == 200 and whole.body == body and "X-Accel-Redirect" not in whole
    part = download(alice, blob_id, {"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.body == body[10:20]

    sent, _ = send(alice, direct, [blob_id])
    assert sent.status_code == 201
    assert download(bob, blob_id).body == body and download(carol, blob_id).status_code == 404

    # take-back deletes the object
    message = sent.json_body["message"]
    path = f"/api/conversations/{direct['id']}/messages/{message['id']}/"
    assert alice.api.delete(path).status_code == 204
    assert keys(client) == [] and not Blob.objects.exists()

    # purge: an old unnamed blob and an old orphaned object go, a fresh upload stays
    old, fresh = upload_ok(alice), upload_ok(alice)
    Blob.objects.filter(pk=old).update(created=datetime.fromtimestamp(time.time() - 90000, UTC))
    client.put_object(Bucket=BUCKET, Key="blobs/zz/zz_orphan_orphan_orphan", Body=b"x")
    settings.BLOB_ORPHAN_GRACE = -60  # objects just written count as old enough
    call_command("purge_blobs")
    assert keys(client) == [f"blobs/{fresh[:2]}/{fresh}"]
    assert list(Blob.objects.values_list("pk", flat=True)) == [fresh]
