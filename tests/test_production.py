"""The production shape with real processes on loopback, started by the test:

nginx (deploy/nginx/chat.conf, TLS) in front of two daphne workers run as the systemd
unit runs them (deploy/systemd/chat-daphne@.service: --proxy-headers, -v 0), Redis as the
channel layer, PostgreSQL as the database, static files collected and served by nginx
(`scripts.devstack.ProductionStack`; the clients are tests/support/production_clients.py).

Two clients land on different workers and chat; typing, read marks and presence cross
workers; one worker is SIGKILLed mid-conversation and its client reconnects through nginx
to the other, syncs and resends, with nothing lost or duplicated. One module, so that its
tests share one stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psycopg
import pytest

from chatclient import protocol
from scripts.devstack import ProductionStack, nginx_available
from tests.support.ci import skip_or_fail
from tests.support.fixtures import _redis_db_index
from tests.support.production_clients import (
    PASSWORD,
    Browser,
    NoRedirect,
    Peer,
    connections_by_worker,
    load_release_restart,
    new_keys,
    raw_request,
    until,
)

pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def production(postgres_server, redis_server):
    """One production stack for this module's tests (each uses users of its own)."""
    if not nginx_available():
        skip_or_fail("nginx not found (run scripts/install-system-deps.sh)")
    redis_db = next(_redis_db_index)
    redis_server.flushdb(redis_db)
    env = {
        "DJANGO_HSTS_SECONDS": "60",
        "REGISTRATION_OPEN": "1",
        "LOG_LEVEL": "INFO",
        "BLOB_ACCEL_REDIRECT": "/_blobs/",
    }
    database = postgres_server.new_database("production", postgres_server.migrated_template())
    with ProductionStack(database, redis_server.url_for(redis_db), env=env, migrated=True) as prod:
        yield {
            "stack": prod.stack,
            "origin": prod.origin,
            "http_port": prod.http_port,
            "tls": prod.proxy.tls_context(),
            "access_log": prod.proxy.access_log,
        }


def test_deploy_config_serves_tls_static_and_health(production):
    origin, tls = production["origin"], production["tls"]
    stack = production["stack"]
    browser = Browser(origin, tls)

    status, body, headers = browser.call("GET", "/healthz")
    assert status == 200 and body["database"] == body["channel_layer"] == "ok"

    status, _, headers = browser.call("GET", "/api/session/")
    assert status == 200
    assert "max-age=60" in headers["Strict-Transport-Security"]
    assert any("csrftoken" in c and "Secure" in c for c in browser.set_cookie_lines)

    # Plain http on the redirect server block goes to https.
    request = urllib.request.Request(f"http://127.0.0.1:{production['http_port']}/login/")
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener = urllib.request.build_opener(NoRedirect)
        opener.open(request, timeout=10)
    assert redirect.value.code == 301
    # The TLS port is not 443 here: the redirect keeps it (deploy/nginx: $chat_https_host).
    https_port = urllib.parse.urlsplit(origin).port
    assert redirect.value.headers["Location"] == f"https://127.0.0.1:{https_port}/login/"

    # Static files with manifest names, served by nginx from DJANGO_STATIC_ROOT.
    static_root = Path(stack.env["DJANGO_STATIC_ROOT"])
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    original, hashed = next((k, v) for k, v in manifest.items() if k.endswith(".js"))
    status, raw, headers = browser.call("GET", f"/static/{hashed}")
    assert status == 200 and raw == (static_root / hashed).read_bytes()
    assert "immutable" in ", ".join(headers.get_all("Cache-Control"))
    status, raw, _ = browser.call("GET", f"/static/{original}")
    assert status == 200

    status, page, _ = browser.call("GET", "/login/")
    assert status == 200

    # What the workers log is JSON lines, without headers: a refused Host is logged
    # (django.security.DisallowedHost) but not the cookie or header values sent with it.
    request = urllib.request.Request(
        origin + "/api/session/",
        headers={"Host": "evil.example", "Cookie": "sessionid=cookie-must-not-be-logged",
                 "X-Custom": "header-must-not-be-logged"},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, context=tls, timeout=10)
    assert refused.value.code == 400
    deadline = time.monotonic() + 5
    while True:
        text = "".join(s.log_path.read_text() for s in stack.servers)
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        if any(r["logger"] == "django.security.DisallowedHost" for r in records):
            break
        assert time.monotonic() < deadline, f"no DisallowedHost record in {text!r}"
        time.sleep(0.1)
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert "must-not-be-logged" not in text


async def test_admin_actions_close_sockets_across_workers(production):
    """Staff act in the admin through nginx on one worker; sockets on the others close."""
    stack, origin, tls = production["stack"], production["origin"], production["tls"]
    # dora, erin and fay play alice, bob and carol (the module shares one database).
    peers = [Peer(name, origin, tls, new_keys()) for name in ("dora", "erin", "fay")]
    alice, bob, carol = peers
    for peer in peers:
        await asyncio.to_thread(peer.sign_up)
    for other in ("erin", "fay"):
        status, _, _ = await asyncio.to_thread(
            alice.browser.call, "POST", "/api/conversations/", {"members": [other]}
        )
        assert status == 201
    for peer in peers:  # open means registered (Connection row) and counted by nginx
        await peer.connect()
    placed = connections_by_worker(stack.database_url)
    assert len({w for p in peers for w in placed[p.user_id]}) == 2, "not spread over workers"

    stack.env["DJANGO_SUPERUSER_PASSWORD"] = "staff password for the test 1"
    stack.manage(
        "createsuperuser", "--noinput", "--username", "root", "--email", "root@example.org"
    )
    staff = Browser(origin, tls)
    await asyncio.to_thread(staff.call, "GET", "/admin/login/")
    status, _, headers = await asyncio.to_thread(
        staff.call,
        "POST",
        "/admin/login/",
        form={"username": "root", "password": "staff password for the test 1", "next": "/admin/"},
    )
    assert status == 302 and headers["Location"] == "/admin/", "staff login failed"

    async def act(changelist: str, action: str, pk: int) -> float:
        """Run an admin action; returns when it was requested (the socket must be closed
        at most a second after the action's response)."""
        started = time.monotonic()
        status, body, _ = await asyncio.to_thread(
            staff.call,
            "POST",
            changelist,
            form={"action": action, "_selected_action": [str(pk)], "index": "0"},
        )
        assert status == 302, body[:500]
        return started

    # Revoke bob's device: his socket closes, alice (co-member) is told.
    done = await act("/admin/keys/device/", "revoke_selected", bob.device_id)
    await asyncio.wait_for(bob.closed.wait(), 1.0)
    assert bob.ws.close_code == 4403
    print(f"revoke requested -> socket closed in {time.monotonic() - done:.3f}s")
    await alice.expect("devices_changed", user="erin")

    # Deactivate carol: her socket closes within a second, she cannot log in.
    done = await act("/admin/accounts/user/", "deactivate_selected", carol.user_id)
    await asyncio.wait_for(carol.closed.wait(), 1.0)
    assert carol.ws.close_code == 4403
    print(f"deactivation requested -> socket closed in {time.monotonic() - done:.3f}s")
    again = Browser(origin, tls)
    await asyncio.to_thread(again.call, "GET", "/api/session/")
    status, body, _ = await asyncio.to_thread(
        again.call, "POST", "/api/session/", {"username": "fay", "password": PASSWORD}
    )
    assert status == 400 and body["error"]["code"] == "invalid_credentials"

    # Alice is untouched; both actions are in the admin log.
    await alice.ws.send(json.dumps({"type": "ping"}))
    await alice.expect("pong")
    with psycopg.connect(stack.database_url) as db:
        messages = [row[0] for row in db.execute("SELECT change_message FROM django_admin_log")]
    assert any("Revoked" in m for m in messages) and any("Deactivated" in m for m in messages)
    await alice.close()


async def test_two_workers_behind_nginx_chat_and_survive_a_worker_kill(production):
    stack, origin, tls = production["stack"], production["origin"], production["tls"]
    alice = Peer("alice", origin, tls, new_keys())
    bob = Peer("bob", origin, tls, new_keys())
    await asyncio.to_thread(alice.sign_up)
    await asyncio.to_thread(bob.sign_up)
    status, body, _ = await asyncio.to_thread(
        alice.browser.call, "POST", "/api/conversations/", {"members": ["bob"]}
    )
    assert status == 201, body
    conversation = body["conversation"]
    cid = conversation["id"]
    status, body, _ = await asyncio.to_thread(  # not a message request for bob any more (§6)
        bob.browser.call, "POST", f"/api/conversations/{cid}/accept/", None
    )
    assert status == 200, body
    keys = await asyncio.to_thread(alice.recipients, conversation)
    assert keys == await asyncio.to_thread(bob.recipients, conversation)

    # --- two clients land on different workers; presence crosses them.
    await bob.connect()  # open: nginx counts it (least_conn), so alice goes to the other
    await alice.connect()
    await bob.expect("presence", user="alice", online=True)
    await alice.expect("presence", user="bob", online=True)
    placed = connections_by_worker(stack.database_url)
    assert len(placed[alice.user_id]) == len(placed[bob.user_id]) == 1
    assert placed[alice.user_id] != placed[bob.user_id], "both clients on one worker"

    # --- chat, typing and read marks across workers.
    first = await alice.send_text(conversation, keys, "hello bob, from the other worker")
    await alice.expect("ack", client_msg_id=first)
    got = await bob.expect("message")
    plain = protocol.open_envelope(
        got["message"]["envelope"],
        conversation_id=cid,
        sender_id=alice.user_id,
        client_msg_id=first,
        device_keys=bob.keys,
        sig_public=alice.keys.sig_public,
    )
    assert plain["text"] == "hello bob, from the other worker"
    await alice.ws.send(json.dumps({"type": "typing", "conversation": cid}))
    await bob.expect("typing", conversation=cid, user="alice")
    await bob.ws.send(json.dumps({"type": "typing", "conversation": cid}))
    await alice.expect("typing", conversation=cid, user="bob")
    await bob.ws.send(json.dumps({"type": "read", "conversation": cid, "up_to": 1}))
    await alice.expect("read", conversation=cid, user="bob", up_to=1)
    reply = await bob.send_text(conversation, keys, "hi alice")
    await bob.expect("ack", client_msg_id=reply)
    await until(lambda: reply in {m["client_msg_id"] for m in alice.messages.values()})
    assert {m["client_msg_id"] for m in alice.messages.values()} == {first, reply}

    # --- going offline crosses workers too (a clean close).
    await bob.close()
    await alice.expect("presence", user="bob", online=False)
    await bob.connect()
    await alice.expect("presence", user="bob", online=True)
    placed = connections_by_worker(stack.database_url)
    assert placed[alice.user_id] != placed[bob.user_id]

    # --- a worker dies mid-conversation.
    per_peer = 15
    victim = stack.servers[0]

    async def chatter(peer: Peer, kill_at: int | None) -> None:
        for i in range(per_peer):
            if kill_at is not None and i == kill_at:
                victim.kill()  # SIGKILL: no close frames, no presence cleanup
            if peer.closed.is_set():
                await peer.recover(cid)
            await peer.send_text(conversation, keys, f"{peer.name} #{i}")
            await asyncio.sleep(0.05)  # pacing (the traffic's shape), not synchronization
        deadline = time.monotonic() + 20
        while peer.pending:  # wait for the acks, recovering when the socket drops
            left = deadline - time.monotonic()
            assert left > 0, f"{peer.name}: unacknowledged {peer.pending}"
            if peer.closed.is_set():
                await peer.recover(cid)
                continue
            peer.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(peer.changed.wait(), left)

    started = time.monotonic()
    await asyncio.gather(chatter(alice, kill_at=6), chatter(bob, kill_at=None))
    assert not victim.running
    assert alice.reconnects + bob.reconnects == 1, "exactly the victim's client reconnects"
    moved = alice if alice.reconnects else bob
    stayed = bob if moved is alice else alice
    print(f"{moved.name} was on the killed worker; recovered in {time.monotonic() - started:.1f}s")

    # Everyone ends on the surviving worker.
    placed = connections_by_worker(stack.database_url)
    survivor_rows = placed[moved.user_id] & placed[stayed.user_id]
    assert survivor_rows, f"not on one worker after the kill: {placed}"

    # Both views converge (a client syncs when it sees a gap; it de-duplicates by id).
    total = 2 + 2 * per_peer
    # Every send was acked, so stored: one sync brings each peer whatever it missed.
    for peer in (alice, bob):
        await peer.sync(cid)
        assert peer.cursor(cid) == total, f"{peer.name} stuck at {peer.cursor(cid)}"

    expected = {**alice.sent_texts, **bob.sent_texts}
    assert len(expected) == total
    for peer in (alice, bob):
        seen = sorted(peer.messages.values(), key=lambda m: m["seq"])
        assert [m["seq"] for m in seen] == list(range(1, total + 1)), "gap or duplicate seq"
        ids = [(m["sender_id"], m["client_msg_id"]) for m in seen]
        assert len(set(ids)) == total, "a message stored twice"
        texts = {}
        for m in seen:
            sender = alice if m["sender_id"] == alice.user_id else bob
            opened = protocol.open_envelope(
                m["envelope"],
                conversation_id=cid,
                sender_id=m["sender_id"],
                client_msg_id=m["client_msg_id"],
                device_keys=peer.keys,
                sig_public=sender.keys.sig_public,
            )
            texts[m["client_msg_id"]] = opened["text"]
        assert texts == expected
        for sender in ("alice", "bob"):  # each sender's messages in the order sent
            order = [
                texts[m["client_msg_id"]]
                for m in seen
                if texts[m["client_msg_id"]].startswith(f"{sender} #")
            ]
            assert order == [f"{sender} #{i}" for i in range(per_peer)]

    with psycopg.connect(stack.database_url) as db:
        count, distinct, last_seq = db.execute(
            "SELECT count(*), count(DISTINCT (sender_id, client_msg_id)), max(seq)"
            " FROM messaging_message WHERE conversation_id = %s",
            (cid,),
        ).fetchone()
    assert count == distinct == last_seq == total

    # Typing and read marks still cross after the fail-over (same worker now, via Redis).
    await moved.ws.send(json.dumps({"type": "typing", "conversation": cid}))
    await stayed.expect("typing", conversation=cid, user=moved.name)
    await moved.ws.send(json.dumps({"type": "read", "conversation": cid, "up_to": total}))
    await stayed.expect("read", conversation=cid, user=moved.name, up_to=total)

    status, body, _ = await asyncio.to_thread(Browser(origin, tls).call, "GET", "/healthz")
    assert status == 200, body
    await alice.close()
    await bob.close()

    # Logs: JSON lines only, and no message content, keys or passwords in any of them.
    secrets_seen = [PASSWORD]
    for m in alice.messages.values():
        secrets_seen += [m["envelope"]["ct"][:32], m["envelope"]["sig"][:32]]
        secrets_seen += [v[:32] for v in m["envelope"]["keys"].values()]
    secrets_seen += [text for text in expected.values()]
    logs = [production["access_log"], *(s.log_path for s in stack.servers)]
    for path in logs:
        text = path.read_text(errors="replace") if path.exists() else ""
        for line in filter(None, text.splitlines()):
            json.loads(line)  # every line parses
        for secret in secrets_seen:
            assert secret not in text, f"{path.name} holds {secret[:12]}…"
    assert "sessionid" not in production["access_log"].read_text()


def test_blobs_through_nginx_upload_on_one_worker_download_from_the_other(production):
    """A 5 MiB blob uploaded through nginx (request buffering off) lands in BLOB_DIR; the
    downloads are authorized by either worker and sent by nginx (X-Accel-Redirect), Range
    included; an over-size chunked upload gets the JSON 413 and leaves nothing."""
    origin, tls, stack = production["origin"], production["tls"], production["stack"]
    for server in stack.servers:  # the worker-kill test may have left one dead
        if not server.running:
            server.restart()
    browser = Browser(origin, tls)
    browser.call("GET", "/api/session/")
    status, _, _ = browser.call("POST", "/api/users/", {"username": "blobby", "password": PASSWORD})
    assert status == 201
    size = 5 * 2**20 + 16 * 80  # padme(5 MiB) is 5 MiB: 80 chunks
    body = os.urandom(size)
    octets = {"Content-Type": "application/octet-stream"}
    status, raw, _ = raw_request(browser, "POST", "/api/blobs/", body, octets)
    assert status == 201, raw
    blob_id = json.loads(raw)["blob"]["id"]
    blob_dir = Path(stack.env["CHAT_VAR_DIR"]) / "blobs"
    assert (blob_dir / blob_id[:2] / blob_id).read_bytes() == body

    status, raw, headers = raw_request(browser, "GET", f"/api/blobs/{blob_id}/")
    assert status == 200 and raw == body
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers.get_all("X-Content-Type-Options") == ["nosniff"]
    assert headers.get_all("Content-Disposition") == ["attachment"]
    assert headers.get_all("Cache-Control") == ["private, max-age=31536000, immutable"]
    assert "X-Accel-Redirect" not in headers

    # One blob uploaded straight to each worker; both downloaded through nginx: whichever
    # worker nginx picks, one of them authorizes a blob the other one received.
    uploaded_on = {}
    for server in stack.servers:
        small = os.urandom(272)
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.port}/api/blobs/",
            data=small,
            method="POST",
            headers={
                "Host": urllib.parse.urlsplit(origin).netloc,
                "X-Forwarded-Proto": "https",
                "Origin": origin,
                "Cookie": "; ".join(f"{k}={v}" for k, v in browser.cookies.items()),
                "X-CSRFToken": browser.cookies["csrftoken"],
                "Content-Type": "application/octet-stream",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201
            uploaded_on[json.loads(response.read())["blob"]["id"]] = (server.port, small)
    access_log = production["access_log"]

    def authorizers() -> set[tuple[str, int]]:  # (blob, worker port) of logged downloads
        found = set()
        for line in access_log.read_text().splitlines():
            record = json.loads(line)
            for small_id in uploaded_on:
                if record["path"].endswith("/" + small_id):  # the X-Accel URI
                    found.add((small_id, int(record["upstream"].rsplit(":", 1)[1])))
        return found

    crossed = []
    for _round in range(4):  # each blob twice in a row: round robin or not, one crosses
        for small_id, (_, small) in [item for item in uploaded_on.items() for _ in "12"]:
            status, raw, _ = raw_request(browser, "GET", f"/api/blobs/{small_id}/")
            assert status == 200 and raw == small
        deadline = time.monotonic() + 5  # nginx logs a request after its last byte
        while not (found := authorizers()):
            assert time.monotonic() < deadline, access_log.read_text()[-2000:]
            time.sleep(0.02)
        crossed = [(i, port) for i, port in found if port != uploaded_on[i][0]]
        if crossed:
            break
    assert crossed, f"every download was authorized by the worker that took the upload: {found}"

    status, raw, headers = raw_request(
        browser, "GET", f"/api/blobs/{blob_id}/", headers={"Range": "bytes=1000-1999"}
    )
    assert status == 206 and raw == body[1000:2000]
    assert headers["Content-Range"] == f"bytes 1000-1999/{size}"
    status, raw, _ = raw_request(browser, "GET", "/_blobs/" + blob_id[:2] + "/" + blob_id)
    assert status == 404  # internal only

    def chunks():  # no Content-Length: counted by the worker as it arrives
        for _ in range(129):
            yield b"\0" * 2**20

    before = sorted(p for p in blob_dir.rglob("*") if p.is_file())
    status, raw, _ = raw_request(browser, "POST", "/api/blobs/", chunks(), octets)
    assert status == 413 and json.loads(raw)["error"]["code"] == "too_large"
    assert sorted(p for p in blob_dir.rglob("*") if p.is_file()) == before


async def test_rolling_release_keeps_every_handshake_and_message(production):
    """scripts/release's per-worker loop (restart, wait for /healthz, next) run against
    this stack's workers while two clients chat, one on each: every reconnect succeeds
    at its first handshake through nginx, and every message sent is stored once and
    reaches both sides of its conversation."""
    stack, origin, tls = production["stack"], production["origin"], production["tls"]
    for server in stack.servers:  # an earlier test may have left one dead
        if not server.running:
            server.restart()
    release = load_release_restart()
    peers = [Peer(f"roll{i}", origin, tls, new_keys()) for i in range(2)]
    for peer in peers:
        await asyncio.to_thread(peer.sign_up)
    pairs = []
    for a, b in (peers,):
        status, body, _ = await asyncio.to_thread(
            a.browser.call, "POST", "/api/conversations/", {"members": [b.name]}
        )
        assert status == 201, body
        conversation = body["conversation"]
        pairs.append((conversation, await asyncio.to_thread(a.recipients, conversation), a, b))
    for peer in peers:
        await peer.connect()
    placed = connections_by_worker(stack.database_url)
    assert len({w for p in peers for w in placed[p.user_id]}) == 2, "not spread over workers"

    released = asyncio.Event()

    async def chatter(peer: Peer, conversation: dict, keys: dict) -> int:
        cid, sent = conversation["id"], 0
        while not released.is_set() or sent < 3:
            if peer.closed.is_set():
                await peer.recover(cid)
            # At most 20 unacknowledged: a reconnect resends them at once, within the
            # server's frame burst (WS_RATE_BURST, 50).
            if len(peer.pending) < 20:
                await peer.send_text(conversation, keys, f"{peer.name} #{sent}")
                sent += 1
            await asyncio.sleep(0.1)  # pacing (the traffic's shape), not synchronization
        deadline = time.monotonic() + 20
        while peer.pending:
            left = deadline - time.monotonic()
            assert left > 0, f"{peer.name}: unacknowledged {peer.pending}"
            if peer.closed.is_set():
                await peer.recover(cid)
                continue
            peer.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(peer.changed.wait(), left)
        return sent

    by_port = {server.port: server for server in stack.servers}
    phases = []

    def restart(port: int) -> None:  # what `systemctl restart chat-daphne@PORT` does
        server = by_port[port]
        t0 = time.monotonic()
        server.stop()  # SIGTERM (TimeoutStopSec in the unit, STOP_TIMEOUT here)
        t1 = time.monotonic()
        server.restart()
        phases.append(
            {"port": port, "stop": round(t1 - t0, 2), "start": round(time.monotonic() - t1, 2)}
        )

    async def run_release() -> list[dict]:
        try:
            return await asyncio.to_thread(
                release.rolling_restart,
                list(by_port),
                restart,
            )
        finally:
            released.set()

    started = time.monotonic()
    records, *_ = await asyncio.gather(
        run_release(),
        *(chatter(p, conversation, keys) for conversation, keys, a, b in pairs for p in (a, b)),
    )
    print(f"rolling release: {records} {phases}; all acked {time.monotonic() - started:.1f}s")
    assert [r["port"] for r in records] == list(by_port)
    assert all(server.running for server in stack.servers)
    assert all(peer.reconnects >= 1 for peer in peers), "a worker was not restarted"
    assert sum(peer.failed_handshakes for peer in peers) == 0, "a handshake failed"

    for conversation, _keys, a, b in pairs:
        cid = conversation["id"]
        expected = {**a.sent_texts, **b.sent_texts}
        for peer in (a, b):
            await peer.sync(cid)
            seen = sorted(
                (m for m in peer.messages.values() if m["conversation"] == cid),
                key=lambda m: m["seq"],
            )
            assert [m["seq"] for m in seen] == list(range(1, len(expected) + 1))
            assert {m["client_msg_id"] for m in seen} == expected.keys(), "lost or extra"
    for peer in peers:
        await peer.close()
    # Each worker logged its stop and its new start as JSON, and no presence row is left
    # of a stopped process (rows are deleted at the stop, and a new process on the port
    # deletes its predecessor's).
    for server in stack.servers:
        records = [json.loads(x) for x in server.log_path.read_text().splitlines() if x.strip()]
        events = [
            (r["message"], r["port"], r["pid"]) for r in records if r["logger"] == "chatsite.worker"
        ]
        assert ("worker stopping", server.port) in {(m, port) for m, port, _ in events}
        assert events[-1] == ("worker started", server.port, server.pid)
    with psycopg.connect(stack.database_url) as db:
        pids = {row[0] for row in db.execute("SELECT DISTINCT pid FROM messaging_connection")}
    assert pids <= {server.pid for server in stack.servers}, pids
    log = (production["access_log"]).read_text().splitlines()
    bad = [line for line in log if '"status":502' in line or '"status":504' in line]
    assert not bad, bad[:3]
