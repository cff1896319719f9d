"""History for browser tests and the browser benchmark, written from Python: a user with
an identity and one certified device (``live.live_user``) who sends v2 messages (§2: her
own counter, head "") into a direct conversation with someone. Runs in a thread of
its own, so Playwright's sync API (which owns this thread's event loop) is left alone."""

from __future__ import annotations

import asyncio
import concurrent.futures
import secrets

from chatclient import protocol

from .live import live_user, recipients_of


def fresh_keys() -> protocol.DeviceKeys:
    """2048-bit device keys holding an identity key of their own (first device of a user)."""
    return protocol.generate_device_keys(2048).with_identity(protocol.generate_identity_key(2048))


async def _seed(base_url: str, peer: str, texts: list[str], name: str) -> dict:
    user = await live_user(base_url, name, fresh_keys())
    body = {"members": [peer]}
    conversation = (await user.session.request("POST", "/api/conversations/", body))["conversation"]
    recipients = await recipients_of(user, conversation)
    path = f"/api/conversations/{conversation['id']}/messages/"
    sealed = []
    for n, text in enumerate(texts, start=1):
        client_msg_id = protocol.new_client_msg_id()
        envelope = protocol.seal_envelope(
            protocol.text_message(text),
            conversation_id=conversation["id"],
            sender_id=user.user_id,
            client_msg_id=client_msg_id,
            n=n,
            head="",
            sender_keys=user.keys,
            recipient_keys=recipients,
        )
        sealed.append({"client_msg_id": client_msg_id, "envelope": envelope})
    # in n order: the server refuses an n that does not rise
    for body in sealed:
        await user.session.request("POST", path, body)
    return {"username": name, "conversation": conversation["id"]}


def seed_direct(base_url: str, peer: str, texts: list[str], *, name: str | None = None) -> dict:
    """A new user sends `texts` to `peer` in their direct conversation, in order.
    Returns {username, conversation}."""
    name = name or f"seeder{secrets.token_hex(3)}"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _seed(base_url, peer, texts, name)).result()


async def _group_removal(base_url: str, member: str, other: str, name: str) -> dict:
    owner = await live_user(base_url, name, fresh_keys())
    ids = {}
    for username in (member, other):
        direct = await owner.direct(username)
        ids[username] = next(m["id"] for m in direct["members"] if m["username"] == username)
    group = await owner.create_group([ids[member], ids[other]], title="Book club")
    group = await owner.post_record(group, owner.record(group, "title", title="Reading club"))
    group = await owner.post_record(group, owner.record(group, "remove", [ids[member]]))
    return {"owner": name, "conversation": group["id"]}


def seed_group_removal(base_url: str, member: str, other: str, *, name: str | None = None) -> dict:
    """A new user (Python client) makes the group “Book club” with `member` and `other`
    (existing users), renames it “Reading club”, then removes `member` (signed roster
    records, §8). Returns {owner, conversation}."""
    name = name or f"owner{secrets.token_hex(3)}"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _group_removal(base_url, member, other, name)).result()
