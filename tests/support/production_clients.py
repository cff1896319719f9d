"""Clients of a production-shaped stack (scripts.devstack.ProductionStack) for tests:
a browser-like JSON client over HTTPS through nginx, and a peer that chats over a
WebSocket through nginx the way the browser client does (reconnect, sync, resend)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

import psycopg
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from chatclient import protocol
from scripts.devstack import REPO_ROOT

PASSWORD = "correct horse battery staple"


class Browser:
    """JSON over HTTPS through nginx, with cookies and X-CSRFToken like the browser code."""

    def __init__(self, origin: str, tls: ssl.SSLContext):
        self.origin, self.tls = origin, tls
        self.cookies: dict[str, str] = {}
        self.set_cookie_lines: list[str] = []

    def call(self, method: str, path: str, body=None, form: dict | None = None):
        """One request (redirects not followed); `form` posts urlencoded with the CSRF
        token as Django's HTML forms do."""
        headers = {"Origin": self.origin, "Accept": "application/json"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if "csrftoken" in self.cookies:
            headers["X-CSRFToken"] = self.cookies["csrftoken"]
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            fields = {"csrfmiddlewaretoken": self.cookies.get("csrftoken", ""), **form}
            data = urllib.parse.urlencode(fields, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = self.origin + path
        request = urllib.request.Request(
            self.origin + path, data=data, method=method, headers=headers
        )
        opener = urllib.request.build_opener(
            NoRedirect, urllib.request.HTTPSHandler(context=self.tls)
        )
        try:
            response = opener.open(request, timeout=15)
        except urllib.error.HTTPError as error:
            response = error
        with response:
            raw = response.read()
            for line in response.headers.get_all("Set-Cookie") or []:
                self.set_cookie_lines.append(line)
                name, _, value = line.split(";")[0].partition("=")
                self.cookies[name.strip()] = value.strip()
            is_json = response.headers.get("Content-Type", "").startswith("application/json")
            return response.status, (json.loads(raw) if raw and is_json else raw), response.headers


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Peer:
    """One user with one device: a WebSocket through nginx, the messages it has seen,
    what it has sent and not yet had acknowledged."""

    def __init__(self, name: str, origin: str, tls: ssl.SSLContext, keys):
        self.name, self.origin, self.tls, self.keys = name, origin, tls, keys
        self.browser = Browser(origin, tls)
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.messages: dict[int, dict] = {}  # message id -> message (de-duplicated)
        self.frames: asyncio.Queue = asyncio.Queue()
        self.acks: dict[str, dict] = {}
        self.pending: dict[str, dict] = {}  # client_msg_id -> send frame
        self.sent_texts: dict[str, str] = {}
        self.closed = asyncio.Event()
        self.changed = asyncio.Event()  # set on every ack and when the socket closes
        self.reconnects = 0
        self.failed_handshakes = 0  # connection attempts that did not open a socket
        self.counter = 0  # the last n used (one conversation per peer in these tests)

    # --- HTTP
    def sign_up(self) -> None:
        self.browser.call("GET", "/api/session/")
        status, body, _ = self.browser.call(
            "POST", "/api/users/", {"username": self.name, "password": PASSWORD}
        )
        assert status == 201, body
        self.user_id = body["user"]["id"]
        identity = self.keys.id_private
        status, body, _ = self.browser.call(
            "PUT",
            "/api/identity/",
            {
                "id_spki": protocol.b64encode(protocol.spki_of(identity)),
                "proof": protocol.sign_identity_proof(identity, self.user_id),
            },
        )
        assert status == 201, body
        status, body, _ = self.browser.call(
            "POST",
            "/api/devices/",
            {
                "name": f"{self.name} test device",
                "enc_spki": protocol.b64encode(self.keys.enc_spki),
                "sig_spki": protocol.b64encode(self.keys.sig_spki),
                "proof": protocol.sign_device_proof(self.keys, self.user_id),
                "cert": protocol.sign_device_cert(
                    identity, self.user_id, self.keys.enc_kid, self.keys.sig_kid
                ),
            },
        )
        assert status == 201, body
        self.device_id = body["id"]

    def recipients(self, conversation: dict) -> dict:
        keys = {}
        for member in conversation["members"]:
            _, listing, _ = self.browser.call("GET", f"/api/users/{member['username']}/devices/")
            for device in listing["devices"]:
                keys[device["enc_kid"]] = protocol.import_public_key(
                    protocol.b64decode(device["enc_spki"])
                )
        return keys

    # --- WebSocket
    async def connect(self) -> None:
        url = self.origin.replace("https://", "wss://") + f"/ws/chat/?device={self.device_id}"
        cookie = "; ".join(f"{k}={v}" for k, v in self.browser.cookies.items())
        self.ws = await ws_connect(
            url, ssl=self.tls, origin=self.origin, additional_headers={"Cookie": cookie}
        )
        self.closed.clear()
        self.reader = asyncio.create_task(self._read(self.ws))

    async def _read(self, ws) -> None:
        try:
            async for raw in ws:
                frame = json.loads(raw)
                if frame["type"] == "message":
                    self.messages[frame["message"]["id"]] = frame["message"]
                elif frame["type"] == "ack":
                    self.acks[frame["client_msg_id"]] = frame
                    self.pending.pop(frame["client_msg_id"], None)
                    self.changed.set()
                await self.frames.put(frame)
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()
            self.changed.set()

    async def close(self) -> None:
        await self.ws.close()
        await self.closed.wait()

    async def expect(self, frame_type: str, timeout: float = 5.0, **match) -> dict:
        """The next frame of this type (and these fields); other frames are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}: no {frame_type} {match} in {timeout}s")
            frame = await asyncio.wait_for(self.frames.get(), left)
            if frame["type"] == frame_type and all(frame.get(k) == v for k, v in match.items()):
                return frame

    async def send_text(self, conversation: dict, keys: dict, text: str) -> str:
        """Seal (v2, the next counter: resends of pending frames keep theirs) and send."""
        msg_id = protocol.new_client_msg_id()
        self.counter += 1
        envelope = protocol.seal_envelope(
            protocol.text_message(text),
            conversation_id=conversation["id"],
            sender_id=self.user_id,
            client_msg_id=msg_id,
            n=self.counter,
            head="",  # a direct conversation
            sender_keys=self.keys,
            recipient_keys=keys,
        )
        frame = {"type": "send", "conversation": conversation["id"], "client_msg_id": msg_id}
        self.pending[msg_id] = {**frame, "envelope": envelope}
        self.sent_texts[msg_id] = text
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(json.dumps(self.pending[msg_id]))
        return msg_id

    def cursor(self, conversation_id: int) -> int:
        """The last seq up to which this peer has every message (no gap)."""
        seqs = {m["seq"] for m in self.messages.values() if m["conversation"] == conversation_id}
        cursor = 0
        while cursor + 1 in seqs:
            cursor += 1
        return cursor

    async def sync(self, conversation_id: int) -> None:
        await self.ws.send(
            json.dumps(
                {"type": "sync", "cursors": {str(conversation_id): self.cursor(conversation_id)}}
            )
        )
        await self.expect("synced", timeout=10)

    async def recover(self, conversation_id: int) -> None:
        """What a client does when its socket drops: reconnect, sync, resend unacked."""
        deadline = time.monotonic() + 20
        while True:
            try:
                await self.connect()
                break
            except (OSError, ConnectionClosed, Exception) as error:  # noqa: B014
                self.failed_handshakes += 1
                assert time.monotonic() < deadline, f"{self.name} cannot reconnect: {error!r}"
                await asyncio.sleep(0.2)
        self.reconnects += 1
        await self.sync(conversation_id)
        for frame in list(self.pending.values()):
            await self.ws.send(json.dumps(frame))


def new_keys() -> protocol.DeviceKeys:
    """Fresh device keys holding a fresh identity key (the user's, set at sign-up): the
    module's tests share one database, where keys are unique (the session's key pool hands
    every test the same first keys)."""
    return protocol.generate_device_keys(2048).with_identity(protocol.generate_identity_key(2048))


async def until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def connections_by_worker(database_url: str) -> dict[int, set[str]]:
    """user id -> workers with a fresh Connection row (presence heartbeat table)."""
    with psycopg.connect(database_url) as db:
        rows = db.execute(
            "SELECT user_id, worker FROM messaging_connection"
            " WHERE seen > now() - interval '90 seconds'"
        ).fetchall()
    found: dict[int, set[str]] = {}
    for user_id, worker in rows:
        found.setdefault(user_id, set()).add(worker)
    return found


def raw_request(browser: Browser, method: str, path: str, data=None, headers=None):
    """A request with a raw body (an iterable of bytes is sent chunked) through nginx."""
    all_headers = {"Origin": browser.origin, **(headers or {})}
    all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    all_headers["X-CSRFToken"] = browser.cookies.get("csrftoken", "")
    request = urllib.request.Request(
        browser.origin + path, data=data, method=method, headers=all_headers
    )
    try:
        response = urllib.request.urlopen(request, context=browser.tls, timeout=60)
    except urllib.error.HTTPError as error:
        response = error
    with response:
        return response.status, response.read(), response.headers


def load_release_restart():
    """scripts/release_restart.py as a module (scripts/ is not a package)."""
    import importlib.util

    path = REPO_ROOT / "scripts" / "release_restart.py"
    spec = importlib.util.spec_from_file_location("release_restart", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
