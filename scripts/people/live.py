"""Chat users over the network against live daphne processes (``scripts.devstack``
stacks), speaking PROTOCOL through chatclient's session and socket."""

import asyncio
import uuid
from dataclasses import dataclass, field

from chatclient import protocol, roster
from chatclient.session import ChatSession
from chatclient.ws import ChatSocket

PASSWORD = "correct horse battery staple"


@dataclass
class LiveUser:
    """A user with one device; `counters` keeps the last `n` per conversation id (§2)."""

    username: str
    session: ChatSession
    user_id: int
    keys: protocol.DeviceKeys
    device_id: int
    counters: dict = field(default_factory=dict)

    async def socket(self) -> ChatSocket:
        return await ChatSocket.open(self.session, self.device_id)

    def next_n(self, conversation_id: int) -> int:
        self.counters[conversation_id] = self.counters.get(conversation_id, 0) + 1
        return self.counters[conversation_id]

    async def seal(
        self, conversation: dict, text: str, recipients: dict, *, n: int | None = None
    ) -> tuple[str, dict]:
        """A v2 text message: the next `n` here and the conversation's roster head."""
        msg_id = protocol.new_client_msg_id()
        head = conversation.get("roster_head")
        envelope = await asyncio.to_thread(
            protocol.seal_envelope,
            protocol.text_message(text),
            conversation_id=conversation["id"],
            sender_id=self.user_id,
            client_msg_id=msg_id,
            n=self.next_n(conversation["id"]) if n is None else n,
            head=head["hash"] if head else "",
            sender_keys=self.keys,
            recipient_keys=recipients,
        )
        return msg_id, envelope

    async def direct(self, username: str) -> dict:
        """The direct conversation with `username` (`POST /api/conversations/`)."""
        body = {"members": [username]}
        return (await self.session.request("POST", "/api/conversations/", body))["conversation"]

    async def create_group(self, members: list, title: str | None = None) -> dict:
        """A new group of this user and `members` (LiveUsers or user ids), record 0 signed
        by this device."""
        gid = str(uuid.uuid4())
        record = roster.make_record(
            self.keys,
            gid=gid,
            n=0,
            prev=roster.GENESIS,
            op="create",
            subjects=[self.user_id, *(m if isinstance(m, int) else m.user_id for m in members)],
            by=self.user_id,
            title=title,
        )
        body = {"gid": gid, "title": title, "roster": record}
        return (await self.session.request("POST", "/api/conversations/", body))["conversation"]

    def record(self, conversation: dict, op: str, subjects=(), title=None) -> dict:
        """The record following the conversation's `roster_head`, signed by this device."""
        head = conversation["roster_head"]
        return roster.make_record(
            self.keys,
            gid=conversation["gid"],
            n=head["n"] + 1,
            prev=head["hash"],
            op=op,
            subjects=[s if isinstance(s, int) else s.user_id for s in subjects],
            by=self.user_id,
            title=title,
        )

    async def post_record(self, conversation: dict, record: dict) -> dict:
        """`POST …/roster/`; the conversation object (raises ChatApiError when refused)."""
        path = f"/api/conversations/{conversation['id']}/roster/"
        return (await self.session.request("POST", path, {"record": record}))["conversation"]


async def live_user(base_url: str, username: str, keys: protocol.DeviceKeys) -> LiveUser:
    """Register `username`, set her identity to the one `keys` hold, register `keys` as
    her device certified by it."""
    session = ChatSession(base_url)
    user = await session.register(username, PASSWORD)
    identity = keys.id_private
    await session.request(
        "PUT",
        "/api/identity/",
        {
            "id_spki": protocol.b64encode(protocol.spki_of(identity)),
            "proof": protocol.sign_identity_proof(identity, user["id"]),
        },
    )
    body = certified_device_body(user["id"], keys, identity, "live test")
    device = await session.request("POST", "/api/devices/", body)
    return LiveUser(username, session, user["id"], keys, device["id"])


def certified_device_body(user_id: int, keys: protocol.DeviceKeys, identity, name: str) -> dict:
    """`POST /api/devices/` for `keys`, certified by the identity RsaKey `identity`."""
    return {
        "name": name,
        "enc_spki": protocol.b64encode(keys.enc_spki),
        "sig_spki": protocol.b64encode(keys.sig_spki),
        "proof": protocol.sign_device_proof(keys, user_id),
        "cert": protocol.sign_device_cert(identity, user_id, keys.enc_kid, keys.sig_kid),
    }


async def add_device(user: LiveUser, keys: protocol.DeviceKeys, name: str) -> dict:
    """Register `keys` as another device of `user`, certified by her identity (the one her
    first device's keys brought); returns the device object."""
    body = certified_device_body(user.user_id, keys, user.keys.id_private, name)
    return await user.session.request("POST", "/api/devices/", body)


async def second_device(base_url: str, user: LiveUser, keys: protocol.DeviceKeys) -> LiveUser:
    """Another device of `user` in a session of its own (logged in as her), certified by
    her identity (the one her first device's keys hold)."""
    session = ChatSession(base_url)
    await session.login(user.username, PASSWORD)
    keys = keys.with_identity(user.keys.id_private)
    body = certified_device_body(user.user_id, keys, user.keys.id_private, "second device")
    device = await session.request("POST", "/api/devices/", body)
    return LiveUser(user.username, session, user.user_id, keys, device["id"])


async def recipients_of(user: LiveUser, conversation: dict) -> dict:
    keys = {}
    for member in conversation["members"]:
        for device in (await user.session.user_devices(member["username"]))["devices"]:
            keys[device["enc_kid"]] = protocol.import_public_key(
                protocol.b64decode(device["enc_spki"])
            )
    return keys


async def next_of(ws: ChatSocket, kind: str, timeout: float = 10) -> dict:
    """The next frame of this type, skipping others."""
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.recv_frame()
            if frame["type"] == kind:
                return frame
