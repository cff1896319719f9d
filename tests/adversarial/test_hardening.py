"""The attacks of the security review (issue 15) that the hardening lane fixed, replayed as
an attacker would, in process: foreign-scheme and foreign-port WebSocket origins, a
socket kept open after logout, a lock-out from one address while the victim logs in from
another, look-alike usernames, the docs page and headers for strangers; floods of REST
sends, registrations and sockets.

Each refusal is one case of the figures table; the unit tests (test_consumer.py,
test_accounts_api.py, test_openapi.py) hold the details.
"""

import asyncio
import dataclasses

import pytest
from asgiref.sync import sync_to_async

from accounts.models import User
from messaging.models import Connection, Message
from tests.adversarial.figures import Figures
from tests.inprocess import ApiClient, seal

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"
SITE = b"127.0.0.1:8000"  # the site as its browsers reach it: http://127.0.0.1:8000
FOREIGN_ORIGINS = [
    b"http://localhost:9999",
    b"https://127.0.0.1",
    b"https://127.0.0.1:8000",
    b"http://127.0.0.1",
    b"http://127.0.0.1:8001",
    b"http://127.0.0.1:8000.evil.example",
    b"https://evil.example",
    b"null",
]
LOOK_ALIKES = [
    "\u0430lice",  # Cyrillic а
    "\u0430\u04cf\u0456\u0441\u0435",  # all Cyrillic
    "ALlCE",
    "\uff41\uff4c\uff49\uff43\uff45",  # fullwidth
    "al\u0456ce",  # Cyrillic і in a Latin name: mixed scripts
    "a\u200blice",  # a zero-width space
]


def socket_at(user, origin: bytes):
    ws = user.socket()
    kept = [h for h in ws.scope["headers"] if h[0] not in (b"host", b"origin")]
    ws.scope["headers"] = [*kept, (b"host", SITE), (b"origin", origin)]
    return ws


async def close_code(ws, timeout=2.0):
    while True:
        output = await asyncio.wait_for(ws.output_queue.get(), timeout)
        if output["type"] == "websocket.close":
            return output.get("code")


def login_from(address: str, username: str, password: str) -> int:
    api = ApiClient()
    api.http.defaults["REMOTE_ADDR"] = address
    return api.post("/api/session/", {"username": username, "password": password}).status_code


async def test_review_attacks_are_refused(make_user):
    figures = Figures("hardening: issue 15 attacks (origins, logout, lock-out, names)")
    alice = await sync_to_async(make_user)("alice")

    # Origins: another scheme, host or port than the site's own.
    for origin in FOREIGN_ORIGINS:
        accepted, _ = await socket_at(alice, origin).connect(timeout=10)
        figures.check(not accepted, f"origin {origin!r} accepted")
    own = socket_at(alice, b"http://127.0.0.1:8000")
    figures.check((await own.connect(timeout=10))[0], "the site's own origin refused")
    await own.disconnect()

    # Logout with a socket open: closed 4401, nothing more; another session keeps its own.
    other_api = await sync_to_async(ApiClient)()
    body = {"username": "alice", "password": PASSWORD}
    await sync_to_async(other_api.post)("/api/session/", body)
    other = dataclasses.replace(alice, api=other_api)
    ws, kept = alice.socket(), other.socket()
    await ws.connect(timeout=10)
    await kept.connect(timeout=10)
    await sync_to_async(alice.api.delete)("/api/session/")
    code = await close_code(ws)
    figures.check(code == 4401, f"socket after logout: close {code} (want 4401)")
    await kept.send_to(text_data='{"type":"ping"}')
    pong = await kept.receive_json_from(timeout=5)
    figures.check(pong == {"type": "pong"}, f"the other session's socket: {pong}")
    await kept.disconnect()

    # Lock-out: five wrong passwords from one address; the victim elsewhere still gets in.
    for _ in range(5):
        await sync_to_async(login_from)("203.0.113.7", "alice", "wrong")
    locked = await sync_to_async(login_from)("203.0.113.7", "alice", PASSWORD)
    figures.check(locked == 429, f"attacker's address after 5 failures: {locked}")
    victim = await sync_to_async(login_from)("198.51.100.20", "alice", PASSWORD)
    figures.check(victim == 200, f"victim from her own address: {victim} (locked out)")
    for name in ("x1", "x2", "x3", "x4", "x5", "bob"):  # a NAT: everyone else behind it
        await sync_to_async(login_from)("192.0.2.50", name, "wrong")
    shared = await sync_to_async(login_from)("192.0.2.50", "alice", PASSWORD)
    figures.check(shared == 200, f"another user behind the same address: {shared}")

    # Look-alike usernames.
    api = await sync_to_async(ApiClient)()
    for name in LOOK_ALIKES:
        response = await sync_to_async(api.post)(
            "/api/users/", {"username": name, "password": PASSWORD}
        )
        figures.check(response.status_code == 400, f"{name!r} registered")
    users = await User.objects.acount()
    figures.check(users == 1, f"{users} users (want alice only)")

    # Exposure: the docs page and the headers, for a stranger.
    docs = await sync_to_async(api.get)("/api/docs")
    figures.check(docs.status_code == 404, f"/api/docs for a stranger: {docs.status_code}")
    page = await sync_to_async(api.http.get)("/login/")
    figures.check("camera=()" in page.get("Permissions-Policy", ""), "no Permissions-Policy")
    corp = page.get("Cross-Origin-Resource-Policy")
    figures.check(corp == "same-origin", f"Cross-Origin-Resource-Policy {corp!r}")
    figures.assert_clean()


async def test_floods_are_refused_with_429(settings, trio):
    """Finding 8: REST sends and registrations past their limits are 429 `rate_limited`
    and store nothing; a device's sockets past MAX_SOCKETS_PER_DEVICE close with 4429.
    Small limits keep it quick; the defaults are in chatsite/settings.py."""
    figures = Figures("hardening: floods (REST sends, registrations, sockets)")
    settings.REST_SEND_RATE, settings.REGISTER_RATE = "10/30d", "5/30d"  # no window ends mid-test
    alice, _, _, direct = trio
    path = f"/api/conversations/{direct['id']}/messages/"
    statuses = []
    for n in range(30):
        client_msg_id, envelope = await sync_to_async(seal)(alice, direct, f"flood {n}")
        body = {"client_msg_id": client_msg_id, "envelope": envelope}
        statuses.append((await sync_to_async(alice.api.post)(path, body)).status_code)
    registrations = []
    for n in range(15):
        api = await sync_to_async(ApiClient)()
        api.http.defaults["REMOTE_ADDR"] = "203.0.113.9"
        body = {"username": f"bot{n}", "password": PASSWORD}
        registrations.append((await sync_to_async(api.post)("/api/users/", body)).status_code)
    figures.sent = len(statuses)
    figures.stored = await Message.objects.filter(conversation_id=direct["id"]).acount()
    for what, got, ok in (
        ("REST sends", statuses, 10),
        ("registrations", registrations, 5),
    ):
        figures.check(got.count(201) == ok, f"{what}: {got.count(201)} accepted (want {ok})")
        figures.check(got.count(429) == len(got) - ok, f"{what}: {got}")
        figures.check(not [s for s in got if s >= 500], f"{what}: 5xx in {got}")
    figures.check(figures.stored == 10, f"{figures.stored} messages stored (want 10)")
    bots = await User.objects.filter(username__startswith="bot").acount()
    figures.check(bots == 5, f"{bots} bots registered (want 5)")

    cap = settings.MAX_SOCKETS_PER_DEVICE
    sockets, refused = [alice.socket() for _ in range(cap + 5)], 0
    for n, ws in enumerate(sockets):
        accepted, _ = await ws.connect(timeout=10)
        figures.check(accepted, "a socket's handshake refused (want accept, then close)")
        if n < cap:  # within the cap: open and answering
            await ws.send_to(text_data='{"type":"ping"}')
            pong = await ws.receive_json_from(timeout=5)
            figures.check(pong == {"type": "pong"}, f"socket {n} of {cap}: {pong}")
        else:  # over it: one `rate_limited` error frame, then close 4429
            frame = await ws.receive_json_from(timeout=5)
            code = await close_code(ws)
            refused += frame.get("code") == "rate_limited" and code == 4429
    figures.check(refused == 5, f"{refused} sockets over the cap closed with 4429 (want 5)")
    open_rows = await Connection.objects.filter(device_id=alice.device_id).acount()
    figures.check(open_rows == settings.MAX_SOCKETS_PER_DEVICE, f"{open_rows} sockets open")
    for ws in sockets:
        await ws.disconnect()
    figures.assert_clean()
