"""Chat users over the network against live daphne processes (tests.support stacks),
speaking PROTOCOL through chatclient's session and socket."""

import asyncio
from dataclasses import dataclass

from chatclient import protocol
from chatclient.session import ChatSession
from chatclient.ws import ChatSocket

PASSWORD = "correct horse battery staple"


@dataclass
class LiveUser:
    username: str
    session: ChatSession
    user_id: int
    keys: protocol.DeviceKeys
    device_id: int

    async def socket(self) -> ChatSocket:
        return await ChatSocket.open(self.session, self.device_id)

    async def seal(self, conversation: dict, text: str, recipients: dict) -> tuple[str, dict]:
        msg_id = protocol.new_client_msg_id()
        envelope = await asyncio.to_thread(
            protocol.seal_envelope,
            protocol.text_message(text),
            conversation_id=conversation["id"],
            sender_id=self.user_id,
            client_msg_id=msg_id,
            sender_keys=self.keys,
            recipient_keys=recipients,
        )
        return msg_id, envelope


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
