"""An existing device approving a new one (PROTOCOL §7.2) and giving it the history this
device can read (§7.3).

The approver shows each pending request with the link code computed from the
request's kids and *its own* identity: the person approves only if that code matches
the one on the new device. The approval carries the cert and ``id_wrap`` (the identity
key and this device's trust state). The history transfer rewraps, newest first, the
content key of every message this device can open, in batches of at most 500; its
progress is kept in the device's state so an interrupted transfer resumes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import protocol
from .directory import DeviceInfo, certifies, check_device, check_identity
from .errors import ChatError, LinkError, UntrustedDevice

if TYPE_CHECKING:
    from .client import ChatClient

MAX_WRAPS = 500  # per request (§7.3)
# Bytes of wraps per request: the body limit is 256 KiB (§6), which 500 wraps of a
# 3072-bit key (~545 bytes each as JSON) exceed, so a batch also stops at this size.
MAX_BATCH_BYTES = 200 * 1024
PAGE = 100  # history page size (the server's maximum)


@dataclass(frozen=True)
class PendingRequest:
    """A pending link request, checked, with the code this device computes for it."""

    id: int
    name: str
    enc_kid: str
    sig_kid: str
    raw_code: str
    created: str
    expires: str
    enc_public: object

    @property
    def code(self) -> str:
        """The link code in five groups of four."""
        return protocol.format_link_code(self.raw_code)


def check_request(request: dict, user_id: int, id_kid: str) -> PendingRequest:
    """Check a link request's keys and proof like a device record's, and compute its code
    under ``id_kid``; ``UntrustedDevice`` if it fails."""
    device = check_device({**request, "created": request.get("created")}, user_id, "")
    return PendingRequest(
        id=int(request["id"]),
        name=str(request.get("name", "")),
        enc_kid=device.enc_kid,
        sig_kid=device.sig_kid,
        raw_code=protocol.link_code(user_id, id_kid, device.enc_kid, device.sig_kid),
        created=str(request.get("created", "")),
        expires=str(request.get("expires", "")),
        enc_public=device.enc_public,
    )


async def pending_requests(client: ChatClient) -> list[PendingRequest]:
    """My pending link requests whose keys check out, newest first, with their codes."""
    checked = []
    for request in await client.session.link_requests():
        try:
            checked.append(check_request(request, client.user_id, client.keys.id_kid))
        except UntrustedDevice as exc:
            client.directory.skipped.append(f"link request {request.get('id')}: {exc}")
    return checked


async def approve(client: ChatClient, request_id: int, *, code: str | None = None) -> dict:
    """Approve one pending request: cert and ``id_wrap`` (identity key + this device's
    trust state), from this device. With ``code``, it must be the request's code
    (``LinkError`` otherwise). Returns the registered device."""
    request = next((r for r in await pending_requests(client) if r.id == request_id), None)
    if request is None:
        raise LinkError(f"no pending link request {request_id} (expired, or already answered)")
    if code is not None and not protocol.same_link_code(code, request.raw_code):
        raise LinkError("the code does not match this request's: do not approve it")
    identity = client.keys.id_private
    cert = protocol.sign_device_cert(identity, client.user_id, request.enc_kid, request.sig_kid)
    id_wrap = await asyncio.to_thread(
        protocol.make_id_wrap,
        identity,
        client.trust.export(),
        user_id=client.user_id,
        enc_public=request.enc_public,
        sig_kid=request.sig_kid,
    )
    return await client.session.approve_link_request(
        request.id, cert, id_wrap, device_id=client.device_id
    )


async def _linked_device(client: ChatClient, device_id: int) -> DeviceInfo:
    """My active device ``device_id``, certified by my identity (the one to give keys to)."""
    answer = await client.session.user_identity(client.username)
    if answer.get("identity") is None:
        raise ChatError("your account has no identity key")
    identity = check_identity(answer["identity"], client.user_id)
    if identity.id_kid != client.keys.id_kid:
        raise ChatError("your account's identity is not this device's")
    for record in await client.session.my_devices():
        if record["id"] == device_id and not record.get("revoked"):
            device = check_device(record, client.user_id, client.username)
            if certifies(identity, device):
                return device
            raise ChatError(f"device {device_id} has no valid certificate")
    raise ChatError(f"device {device_id} is not an active device of yours")


async def transfer_history(
    client: ChatClient,
    device_id: int,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Give device ``device_id`` the content keys of every message this device can open,
    in the conversations I am a member of, newest first, at most 500 (and 200 KiB of
    wraps) a request. Progress
    (per conversation, the lowest seq whose wrap was stored) is saved after each request,
    so a later call resumes. Returns how many wraps were posted."""
    target = await _linked_device(client, device_id)
    key = f"{device_id}"
    done: dict[str, int] = dict(client.state.get("transfers", key) or {})
    conversations = [
        c
        for c in await client.session.conversations()
        if any(m["id"] == client.user_id for m in c.get("members") or [])
    ]
    total = sum(c.get("last_seq") or 0 for c in conversations)
    handled = sum(_handled_before(c, done.get(str(c["id"]))) for c in conversations)
    posted = 0
    batch: list[tuple[int, int, dict]] = []  # (conversation, seq, wrap)

    def batch_size() -> int:
        """How many of the batch's first wraps fit one request."""
        size = 0
        for count, (_, _, wrap) in enumerate(batch[:MAX_WRAPS]):
            size += len(wrap["ek"]) + 32
            if size > MAX_BATCH_BYTES:
                return count
        return min(len(batch), MAX_WRAPS)

    async def flush(count: int) -> None:
        nonlocal batch, posted
        chunk, batch = batch[:count], batch[count:]
        if not chunk:
            return
        await client.session.upload_history_keys(
            device_id, [wrap for _, _, wrap in chunk], acting_device_id=client.device_id
        )
        posted += len(chunk)
        for cid, seq, _ in chunk:
            done[str(cid)] = min(seq, done.get(str(cid), seq))
        client.state.put("transfers", key, dict(done))
        client.save()

    for conversation in conversations:
        cid = conversation["id"]
        before = done.get(str(cid))
        if before is not None and before <= 1:
            continue
        while True:
            page = await client.session.history(cid, before_seq=before, limit=PAGE)
            messages = list(reversed(page["messages"]))
            wraps = await asyncio.to_thread(_rewrap, client.keys, target, messages)
            batch.extend((cid, seq, wrap) for seq, wrap in wraps)
            handled += len(messages)
            if progress is not None:
                progress(min(handled, total), total)
            while batch and batch_size() < len(batch):
                await flush(batch_size())
            if not messages or not page["has_more"]:
                break
            before = messages[-1]["seq"]
        while batch:
            await flush(batch_size())
        done[str(cid)] = 1  # every message of this conversation is handled
        client.state.put("transfers", key, dict(done))
        client.save()
    return posted


def _handled_before(conversation: dict, lowest: int | None) -> int:
    """How many of a conversation's messages an earlier run went through."""
    last = conversation.get("last_seq") or 0
    if lowest is None:
        return 0
    return last if lowest <= 1 else max(last - lowest + 1, 0)


def _rewrap(
    keys: protocol.DeviceKeys, target: DeviceInfo, messages: list[dict]
) -> list[tuple[int, dict]]:
    """(seq, wrap) for each message this device can unwrap and the target cannot yet."""
    wraps = []
    for message in messages:
        envelope = message.get("envelope")
        if not isinstance(envelope, dict) or keys.enc_kid not in envelope.get("keys", {}):
            continue
        if target.enc_kid in envelope["keys"]:
            continue
        try:
            ek = protocol.rewrap_content_key(envelope, keys, target.enc_public)
        except protocol.ProtocolError:
            continue
        wraps.append((message["seq"], {"message": message["id"], "ek": ek}))
    return wraps
