"""The fuzz of test_fuzz.py replayed over the network against daphne on PostgreSQL, whose
driver refuses inputs SQLite takes (NUL characters, out-of-range integers): zero 5xx,
zero `internal_error`, the socket stays open, nothing stored for a refused request.

Counts: FUZZ_LIVE_WS_FRAMES and FUZZ_LIVE_HTTP_BODIES (default 1200 and 1000).
"""

import json
import os

import pytest

from chatclient import protocol
from chatclient.session import ChatSession
from scripts.devstack import BULK_LIMITS
from scripts.people.live import live_user, recipients_of
from tests.adversarial import fuzzing
from tests.adversarial.figures import Figures
from tests.adversarial.test_fuzz import (
    WS_ERROR_CODES,
    SealingPool,
    base_frame,
    http_examples,
    http_request,
    roster_bodies,
    ws_examples,
)

pytestmark = [pytest.mark.processes, pytest.mark.timeout(600)]

LIVE_WS = int(os.environ.get("FUZZ_LIVE_WS_FRAMES", "1200"))
LIVE_HTTP = int(os.environ.get("FUZZ_LIVE_HTTP_BODIES", "1000"))
# No frame or request limits: the fuzz is for the validators behind them (the limits have
# tests of their own: test_rate_limits.py, test_hardening.py).
FAST = {"WS_RATE_PER_SECOND": "1000000", "WS_RATE_BURST": "1000000", **BULK_LIMITS}


class Seal:
    """What `http_request` needs of the in-process ChatUser."""

    def __init__(self, user):
        self.user_id, self.keys = user.user_id, user.keys


async def raw_call(session: ChatSession, method: str, path: str, raw: bytes | None):
    if session.csrf_token is None:
        await session.request("GET", "/api/session/")
    headers = {
        "Accept": "application/json",
        "X-CSRFToken": session.csrf_token or "",
        "Origin": session.origin,
        "Referer": session.base_url + "/",
    }
    if raw is not None:
        headers["Content-Type"] = "application/json"
    return await session._send(method, session.base_url + path, raw, headers)


async def test_fuzz_live_postgres(live_stack, device_keys):
    stack = live_stack(1, db="postgres", env=FAST)
    alice = await live_user(stack.base_url, "alice", device_keys())
    bob = await live_user(stack.base_url, "bob", device_keys())
    carol = await live_user(stack.base_url, "carol", device_keys())
    direct = await alice.direct("bob")
    group = await alice.create_group([bob], "fuzz group")
    recipients = await recipients_of(alice, direct)

    def seal_one(msg_id: str, text: str) -> dict:
        return protocol.seal_envelope(
            protocol.text_message(text),
            conversation_id=direct["id"],
            sender_id=alice.user_id,
            client_msg_id=msg_id,
            n=alice.next_n(direct["id"]),
            head="",
            sender_keys=alice.keys,
            recipient_keys=recipients,
        )

    pool = SealingPool(seal_one)
    bodies = roster_bodies(alice.keys, alice.user_id, carol.user_id, group)

    figures = Figures(f"fuzz: HTTP over daphne + PostgreSQL ({LIVE_HTTP})")
    anon = ChatSession(stack.base_url)
    created: set[str] = set()
    codes: dict[str, int] = {}
    explicit = [  # inputs PostgreSQL refuses and SQLite takes
        ("alice", "POST", "/api/conversations/", '{"members": ["b\\u0000ob"]}'),
        (
            "alice",
            "POST",
            "/api/conversations/",
            json.dumps({**bodies["group"], "title": "a\u0000b"}),
        ),
        (
            "alice",
            "POST",
            f"/api/conversations/{group['id']}/roster/",
            json.dumps({"record": {**bodies["record"]["record"], "title": "\u0000"}}),
        ),
        ("alice", "GET", f"/api/conversations/{group['id']}/roster/?after=%00", None),
        ("alice", "GET", "/api/users/%00/devices/", None),
        ("alice", "GET", "/api/keys/%00/", None),
        ("alice", "GET", "/api/users/?q=%00", None),
        (
            "alice",
            "GET",
            f"/api/conversations/{direct['id']}/messages/?before_seq=9223372036854775807",
            None,
        ),
        ("alice", "DELETE", "/api/devices/9223372036854775807/", None),
        (
            "alice",
            "POST",
            "/api/devices/",
            '{"name": "\\u0000", "enc_spki": "", "sig_spki": "", "proof": ""}',
        ),
        ("anon", "POST", "/api/session/", '{"username": "al\\u0000ice", "password": "x"}'),
        (
            "anon",
            "POST",
            "/api/users/",
            '{"username": "al\\u0000ice", "password": "correct horse battery staple"}',
        ),
    ]
    generated = [
        http_request(e, Seal(alice), direct, group, pool, bodies) for e in http_examples(LIVE_HTTP)
    ]
    for who, method, path, body in explicit + generated:
        raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
        session = alice.session if who == "alice" else anon
        status, content = await raw_call(session, method, path, raw)
        figures.cases += 1
        where = f"{method} {path[:80]} {str(raw)[:100]!r}"
        if status >= 500:
            figures.fail(f"{where}: {status} {content[:100]!r}")
        elif status >= 400:
            code, problem = fuzzing.error_code_of_body(status, content)
            codes[code] = codes.get(code, 0) + 1
            if problem:
                figures.fail(f"{where}: {problem}")
        elif method == "POST" and path.endswith("/messages/") and status == 201:
            created.add(json.loads(content)["message"]["client_msg_id"])
        elif path in ("/api/users/", "/api/session/") and status < 300:
            anon = ChatSession(stack.base_url)
    history = await alice.session.history(direct["id"], limit=100)
    stored = {m["client_msg_id"] for m in history["messages"]}
    figures.check(stored == created, f"stored {len(stored)} vs 201s {len(created)}")
    figures.stored = len(stored)
    figures.notes = "error codes: " + ", ".join(
        f"{k} {v}" for k, v in sorted(codes.items(), key=str)
    )
    figures.record()
    http_figures = figures

    figures = Figures(f"fuzz: WebSocket over daphne + PostgreSQL ({LIVE_WS})")
    ws = await alice.socket()
    acked: set[str] = set()
    codes = {}
    for n, (kind, mutation, index) in enumerate(ws_examples(LIVE_WS)):
        text = fuzzing.apply(base_frame(kind, direct, pool, index), mutation)
        await ws.connection.send(text)
        await ws.connection.send(fuzzing.marker(n))
        where = f"{kind} {mutation[0]} {mutation[1]} {str(mutation[2])[:60]!r}"
        replies = []
        try:
            while True:
                frame = await ws.recv_frame(timeout=20)
                if fuzzing.is_marker(frame, n):
                    break
                replies.append(frame)
        except Exception as exc:  # closed or silent: a crashed consumer
            figures.fail(f"{where}: {exc!r}")
            break
        figures.cases += 1
        for reply in replies:
            if reply["type"] == "error":
                codes[reply["code"]] = codes.get(reply["code"], 0) + 1
                if reply["code"] not in WS_ERROR_CODES or any(r["type"] == "ack" for r in replies):
                    figures.fail(f"{where}: {reply}")
            elif reply["type"] == "ack":
                acked.add(reply["client_msg_id"])
    await ws.close()
    history = await alice.session.history(direct["id"], limit=100)
    stored = {m["client_msg_id"] for m in history["messages"]}
    figures.check(
        stored == created | acked, f"stored {len(stored)} vs acked {len(created | acked)}"
    )
    figures.stored = len(stored)
    figures.notes = "error codes: " + ", ".join(f"{k} {v}" for k, v in sorted(codes.items()))
    figures.record()
    assert http_figures.failures == 0, http_figures.problems
    assert figures.failures == 0, figures.problems
