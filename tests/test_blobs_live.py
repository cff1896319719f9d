"""Blobs and body limits against a real daphne process: bodies counted on the bytes
received (chunked, without Content-Length), the JSON 413, a 100 MiB upload with the
worker's resident memory measured, and a canary that must not reach storage, database
or logs."""

import http.client
import json
import sqlite3
from pathlib import Path

import pytest

from messaging.blobs import blob_length, padme

pytestmark = pytest.mark.processes

PASSWORD = "correct horse battery staple"
MiB = 2**20


class Raw:
    """One logged-in user over plain http.client: raw bodies, chunked on request."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method, path, body=None, headers=None, chunked=False):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        all_headers = {"Origin": f"http://127.0.0.1:{self.port}", **(headers or {})}
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            all_headers["X-CSRFToken"] = self.cookies.get("csrftoken", "")
        try:
            conn.request(method, path, body=body, headers=all_headers, encode_chunked=chunked)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        for line in response.headers.get_all("Set-Cookie") or []:
            name, _, value = line.split(";")[0].partition("=")
            self.cookies[name.strip()] = value.strip()
        is_json = response.headers.get("Content-Type", "").startswith("application/json")
        return response.status, (json.loads(data) if is_json and data else data)

    def register(self, username: str):
        self.request("GET", "/api/session/")
        body = json.dumps({"username": username, "password": PASSWORD})
        status, answer = self.request(
            "POST", "/api/users/", body, {"Content-Type": "application/json"}
        )
        assert status == 201, answer
        return self


def pieces(total: int, size: int = 64 * 1024):
    """`total` bytes as an iterable of chunks (http.client sends it chunked)."""
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        sent += n
        yield b"\0" * n


def stored_files(stack) -> list[Path]:
    root = Path(stack.env["CHAT_VAR_DIR"]) / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def blob_rows(stack) -> int:
    db = stack.env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM messaging_blob").fetchone()[0]


def test_body_limits_count_the_bytes_received(live_stack):
    small_blob = blob_length(padme(MiB))
    stack = live_stack(1, redis=False, env={"MAX_BLOB_BYTES": str(small_blob)})
    user = Raw(stack.servers[0].port).register("chunky")
    octets = {"Content-Type": "application/octet-stream"}

    # An API body over MAX_FRAME_BYTES without Content-Length: JSON 413, not stored.
    big_json = (b'{"client_msg_id": "' + b"x" * 300_000 + b'"}',)
    status, answer = user.request(
        "POST", "/api/conversations/1/messages/", big_json,
        {"Content-Type": "application/json"}, chunked=True,
    )  # fmt: skip
    assert status == 413 and answer["error"]["code"] == "too_large"
    # A page form over DATA_UPLOAD_MAX_MEMORY_SIZE, chunked: the same JSON 413.
    status, answer = user.request(
        "POST", "/login/", pieces(600 * 1024), {"Content-Type": "text/plain"}, chunked=True
    )
    assert status == 413 and answer["error"]["code"] == "too_large"

    # Blob uploads: chunked over MAX_BLOB_BYTES, then declared over it: nothing stored.
    status, answer = user.request("POST", "/api/blobs/", pieces(small_blob + 1), octets, True)
    assert status == 413 and answer["error"]["code"] == "too_large"
    status, answer = user.request("POST", "/api/blobs/", b"\0" * (small_blob + 16), octets)
    assert status == 413 and answer["error"]["code"] == "too_large"
    # A chunked body of a length no blob has is refused once counted.
    status, answer = user.request("POST", "/api/blobs/", pieces(small_blob - 1), octets, True)
    assert status == 400 and answer["error"]["code"] == "bad_request"
    assert stored_files(stack) == [] and blob_rows(stack) == 0

    # A chunked blob within the limits is stored whole.
    status, answer = user.request("POST", "/api/blobs/", pieces(small_blob), octets, True)
    assert status == 201, answer
    assert answer["blob"]["size"] == small_blob
    assert [p.stat().st_size for p in stored_files(stack)] == [small_blob]


def _reset_peak(pid: int) -> None:
    """Reset the process's peak resident size (VmHWM) to its current one (Linux >= 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident) of a process, in KiB, from /proc."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def test_a_100_mib_upload_keeps_the_worker_resident_size(live_stack):
    """The worker's peak resident size grows by at most 30 MiB while it takes a 100 MiB
    blob (the biggest a client sends); the blob then comes back whole.

    (Downloads are not held to it: daphne has no backpressure towards a slow reader, so a
    worker may buffer what the client has not read yet. In production nginx reads it at
    once (proxy buffering) or sends the file itself (X-Accel-Redirect).)"""
    stack = live_stack(1, redis=False)
    server = stack.servers[0]
    user = Raw(server.port).register("biggie")
    octets = {"Content-Type": "application/octet-stream"}
    size = blob_length(padme(100 * MiB))
    # Warm up: the code path of an upload is loaded and run once.
    status, answer = user.request("POST", "/api/blobs/", b"\0" * blob_length(256), octets)
    assert status == 201
    _reset_peak(server.pid)  # registering hashed a password with Argon2 (~100 MiB)
    before = _memory_kib(server.pid)
    status, answer = user.request("POST", "/api/blobs/", pieces(size, MiB), octets, chunked=True)
    assert status == 201, answer
    after = _memory_kib(server.pid)
    grown = (after["VmHWM"] - before["VmHWM"]) / 1024
    print(f"worker peak resident size {before['VmHWM']} -> {after['VmHWM']} KiB: +{grown:.1f} MiB")
    assert grown <= 30, f"the worker's peak resident size grew by {grown:.1f} MiB"

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    cookie = "; ".join(f"{k}={v}" for k, v in user.cookies.items())
    conn.request("GET", f"/api/blobs/{answer['blob']['id']}/", headers={"Cookie": cookie})
    response = conn.getresponse()
    received = 0
    while chunk := response.read(MiB):
        assert chunk.count(0) == len(chunk)
        received += len(chunk)
    conn.close()
    assert response.status == 200 and received == size


async def test_a_canary_file_leaves_no_trace_on_the_server(live_stack, device_keys):
    """A file encrypted by the Python client (§10.2) and sent to bob: he gets it back
    verified, while its content, name and caption appear nowhere in blob storage, the
    database file or the worker's log (at DEBUG)."""
    from chatclient import attachments, protocol
    from scripts.people.live import live_user, recipients_of

    stack = live_stack(1, redis=False, env={"LOG_LEVEL": "DEBUG", "LOG_FORMAT": "plain"})
    base = stack.base_url
    alice = await live_user(base, "alice", device_keys())
    bob = await live_user(base, "bob", device_keys())
    conversation = await alice.direct("bob")

    content = b"CANARY-CONTENT-do-not-leak " * 2600  # 70,200 bytes: two chunks
    name, caption = "CANARY-NAME quarterly plan.txt", "CANARY-CAPTION see attached"
    blob, encryptor = attachments.encrypt_file(content)
    uploader = Raw(stack.servers[0].port)
    uploader.cookies = {c.name: c.value for c in alice.session.jar}
    status, answer = uploader.request(
        "POST", "/api/blobs/", blob, {"Content-Type": "application/octet-stream"}
    )
    assert status == 201, answer
    meta = {
        "blob": answer["blob"]["id"],
        "key": protocol.b64encode(encryptor.key),
        "prefix": protocol.b64encode(encryptor.prefix),
        "size": len(content),
        "sha256": encryptor.sha256,
        "name": name,
        "mime": "text/plain",
    }
    msg_id = protocol.new_client_msg_id()
    envelope = protocol.seal_envelope(
        attachments.file_payload(meta, text=caption),
        conversation_id=conversation["id"],
        sender_id=alice.user_id,
        client_msg_id=msg_id,
        n=alice.next_n(conversation["id"]),
        head="",
        sender_keys=alice.keys,
        recipient_keys=await recipients_of(alice, conversation),
    )
    path = f"/api/conversations/{conversation['id']}/messages/"
    body = {"client_msg_id": msg_id, "envelope": envelope, "blobs": [meta["blob"]]}
    sent = (await alice.session.request("POST", path, body))["message"]
    assert sent["blobs"] == [meta["blob"]]

    # bob reads the message and the blob, and both check out
    page = await bob.session.request("GET", path)
    message = page["messages"][-1]
    opened = protocol.open_envelope(
        message["envelope"],
        conversation_id=message["conversation"],
        sender_id=message["sender_id"],
        client_msg_id=message["client_msg_id"],
        device_keys=bob.keys,
        sig_public=alice.keys.sig_public,
    )
    downloader = Raw(stack.servers[0].port)
    downloader.cookies = {c.name: c.value for c in bob.session.jar}
    status, fetched = downloader.request("GET", f"/api/blobs/{meta['blob']}/")
    assert status == 200 and fetched == blob
    assert attachments.decrypt_file(opened["file"], fetched) == content

    canaries = [b"CANARY", "CANARY".encode("utf-16-le"), protocol.b64encode(content[:30]).encode()]
    var = Path(stack.env["CHAT_VAR_DIR"])
    db = Path(stack.env["DATABASE_URL"].removeprefix("sqlite:///"))
    places = [*stored_files(stack), *db.parent.glob(db.name + "*"), stack.servers[0].log_path]
    assert len(stored_files(stack)) == 1 and var.exists()
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump()).encode()
    for where, data in [*((str(p), p.read_bytes()) for p in places), ("dump", dump)]:
        for canary in canaries:
            assert canary not in data, f"{canary!r} found in {where}"
    assert b"/api/blobs/" in stack.servers[0].log_path.read_bytes()  # the log was written
