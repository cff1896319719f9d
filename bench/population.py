"""Users, devices and conversations for a benchmark, made through the HTTP API (PROTOCOL §4).

`populate()` registers `n` users (each with an identity key and one device it certifies,
real 2048-bit keys from bench.keys), then groups them into conversations of `room_size`
consecutive users: a `direct` conversation for 2, accepted by the second user (so it is
no message request, and the two see each other's presence, §6), a `group` otherwise
(made with its gid and record 0, §8, signed by its first user's device). The result, a plan, is plain JSON
(ids, session cookies, key indexes, each conversation's roster `head`) that the load
generator reads.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid

from chatclient import protocol, roster
from chatclient.session import ChatSession

from . import keys as keycache

PASSWORD = "bench-Pass-7q!long-enough"
#: In the names of cached populations (bench/.cache): those made before direct
#: conversations were accepted have no such tag and are not reused.
CACHE_TAG = "-accepted"


def session_for(base_url: str, tls: ssl.SSLContext | None) -> ChatSession:
    # tls: the self-signed certificate of the nginx scenario
    return ChatSession(base_url, timeout=60, verify=tls if tls is not None else True)


async def _user(base_url, tls, username, keys: protocol.DeviceKeys, identity, sem):
    """Register `username`, set her identity key (§7.1), register `keys` certified by it."""
    async with sem:
        session = session_for(base_url, tls)
        user = await session.register(username, PASSWORD)
        await session.request(
            "PUT",
            "/api/identity/",
            {
                "id_spki": protocol.b64encode(protocol.spki_of(identity)),
                "proof": protocol.sign_identity_proof(identity, user["id"]),
            },
        )
        body = {
            "name": "bench",
            "enc_spki": protocol.b64encode(keys.enc_spki),
            "sig_spki": protocol.b64encode(keys.sig_spki),
            "proof": protocol.sign_device_proof(keys, user["id"]),
            "cert": protocol.sign_device_cert(identity, user["id"], keys.enc_kid, keys.sig_kid),
        }
        device = await session.request("POST", "/api/devices/", body)
        return session, user, device


async def populate(
    base_url: str,
    n: int,
    room_size: int,
    *,
    prefix: str,
    tls: ssl.SSLContext | None = None,
    key_offset: int = 0,
    concurrency: int = 6,
) -> dict:
    """Register n users with one device each and put them in conversations of room_size."""
    if n % room_size:
        raise ValueError("n must be a multiple of room_size")
    keycache.pairs(key_offset + n)
    keycache.ensure_identities(key_offset + n)
    all_keys = [keycache.device_keys(key_offset + i) for i in range(n)]
    identities = [keycache.identity_key(key_offset + i) for i in range(n)]
    sem = asyncio.Semaphore(concurrency)
    made = await asyncio.gather(
        *(_user(base_url, tls, f"{prefix}{i}", all_keys[i], identities[i], sem) for i in range(n))
    )
    devices = []
    for i, (session, user, device) in enumerate(made):
        devices.append(
            {
                "username": user["username"],
                "user_id": user["id"],
                "device_id": device["id"],
                "key_index": key_offset + i,
                "enc_kid": device["enc_kid"],
                "sig_kid": device["sig_kid"],
                "cookie": session.cookie_header(),
            }
        )
        assert device["enc_kid"] == all_keys[i].enc_kid

    async def conversation(g):
        async with sem:
            members = list(range(g * room_size, (g + 1) * room_size))
            owner = made[members[0]][0]
            if room_size == 2:
                body = {"members": [devices[members[1]]["username"]]}
            else:
                gid, title = str(uuid.uuid4()), f"bench {g}"
                record = roster.make_record(
                    all_keys[members[0]],
                    gid=gid,
                    n=0,
                    prev=roster.GENESIS,
                    op="create",
                    subjects=[devices[m]["user_id"] for m in members],
                    by=devices[members[0]]["user_id"],
                    title=title,
                )
                body = {"gid": gid, "title": title, "roster": record}
            conv = (await owner.request("POST", "/api/conversations/", body))["conversation"]
            if room_size == 2:  # a message request for the other until she accepts it
                other = made[members[1]][0]
                await other.request("POST", f"/api/conversations/{conv['id']}/accept/")
            head = conv["roster_head"]["hash"] if conv["roster_head"] else ""
            return {"id": conv["id"], "members": members, "head": head}

    conversations = await asyncio.gather(*(conversation(g) for g in range(n // room_size)))
    origin = made[0][0].origin
    return {
        "base_url": base_url,
        "origin": origin,
        "room_size": room_size,
        "devices": devices,
        "conversations": list(conversations),
    }
