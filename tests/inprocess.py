"""In-process chat users for tests: Django's test client (CSRF enforced) and Channels'
WebsocketCommunicator against the real ASGI application, database and channel layer."""

import json
import uuid
from dataclasses import dataclass, field

from channels.testing import WebsocketCommunicator
from django.test import Client

from chatclient import protocol, roster
from chatsite.asgi import application

ORIGIN = b"http://127.0.0.1"


class ApiClient:
    """JSON calls to /api/ as one browser session, sending X-CSRFToken like a real client."""

    def __init__(self):
        self.http = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
        self.http.get("/api/session/")

    @property
    def csrf(self) -> str:
        return self.http.cookies["csrftoken"].value

    def call(self, method: str, path: str, body=None, raw: bytes | None = None, headers=None):
        """One request; `headers` adds request headers (e.g. {"X-Device-Id": "3"})."""
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        kwargs = {"content_type": "application/json", "HTTP_X_CSRFTOKEN": self.csrf}
        if headers:
            kwargs["headers"] = headers
        response = (
            getattr(self.http, method.lower())(path, data=data, **kwargs)
            if data is not None
            else getattr(self.http, method.lower())(path, **kwargs)
        )
        response.json_body = (
            response.json()
            if response.content and response["Content-Type"].startswith("application/json")
            else None
        )
        return response

    def get(self, path):
        return self.call("GET", path)

    def post(self, path, body=None, raw=None, headers=None):
        return self.call("POST", path, body, raw, headers)

    def delete(self, path):
        return self.call("DELETE", path)


async def next_of(ws, kind: str, timeout: float = 20) -> dict:
    """The next frame of type `kind` on `ws`, skipping frames of other types (presence and
    the like). `timeout` bounds the wait for each frame: generous, since a loaded CI
    machine can take seconds to answer, and a passing test never waits it out."""
    while True:
        frame = await ws.receive_json_from(timeout=timeout)
        if frame["type"] == kind:
            return frame


async def frames_until_pong(ws, timeout: float = 20) -> list[dict]:
    """The frames `ws` receives before the answer to a ping sent now.

    A barrier instead of waiting for nothing to arrive: a consumer handles its socket's
    frames in order, so a ping sent after a frame is answered after that frame was handled,
    and what the handler sent back directly (an ack, an error) comes first. Fan-out through
    the channel layer (messaging.layer) reaches the socket through its queue, usually but
    not surely before the pong: wait for such frames with `next_of`."""
    await ws.send_to(text_data='{"type":"ping"}')
    frames = []
    while (frame := await ws.receive_json_from(timeout=timeout)) != {"type": "pong"}:
        frames.append(frame)
    return frames


@dataclass
class ChatUser:
    """A registered, logged-in user with one registered device.

    The first device registered brings the user's identity key (its `keys.id_private`,
    set with `PUT /api/identity/`); every device is certified by that identity, and
    `keys` holds it (`DeviceKeys.with_identity`). `counters` keeps the last `n` used per
    (device id, conversation id), as a client does (§2).
    """

    username: str
    api: ApiClient
    user_id: int
    keys: protocol.DeviceKeys | None = None
    device_id: int | None = None
    devices: dict = field(default_factory=dict)
    identity: object = None  # the identity RsaKey, once set
    counters: dict = field(default_factory=dict)

    def next_n(self, conversation_id: int) -> int:
        """The next counter of this user's current device in the conversation."""
        key = (self.device_id, conversation_id)
        self.counters[key] = self.counters.get(key, 0) + 1
        return self.counters[key]

    def set_identity(self, identity) -> dict:
        response = self.api.call("PUT", "/api/identity/", identity_body(self.user_id, identity))
        assert response.status_code in (200, 201), response.content
        self.identity = identity
        return response.json_body

    def register_device(self, keys: protocol.DeviceKeys, name: str = "test device") -> dict:
        if self.identity is None:
            self.set_identity(keys.id_private)
        keys = keys.with_identity(self.identity)
        response = self.api.post("/api/devices/", device_body(self.user_id, keys, name))
        assert response.status_code == 201, response.content
        self.keys, self.device_id = keys, response.json_body["id"]
        return response.json_body

    def socket(self, device_id: int | None = None, origin: bytes = ORIGIN) -> WebsocketCommunicator:
        cookie = f"sessionid={self.api.http.cookies['sessionid'].value}".encode()
        return WebsocketCommunicator(
            application,
            f"/ws/chat/?device={device_id or self.device_id}",
            headers=[(b"origin", origin), (b"cookie", cookie), (b"host", b"127.0.0.1")],
        )


def device_body(user_id: int, keys: protocol.DeviceKeys, name: str = "test device") -> dict:
    """`POST /api/devices/` for `keys`, certified by the identity they hold."""
    return {
        "name": name,
        "enc_spki": protocol.b64encode(keys.enc_spki),
        "sig_spki": protocol.b64encode(keys.sig_spki),
        "proof": protocol.sign_device_proof(keys, user_id),
        "cert": protocol.sign_device_cert(keys.id_private, user_id, keys.enc_kid, keys.sig_kid),
    }


def v1_device(user: ChatUser, keys: protocol.DeviceKeys, name: str = "v1 device") -> int:
    """A device as v1 registered it (proof, no cert), stored straight in the database (the
    API now requires a cert); returns its id. For upgrade (§7.5) tests."""
    from keys.models import Device

    device = Device.objects.create(
        user_id=user.user_id,
        name=name,
        enc_spki=keys.enc_spki,
        sig_spki=keys.sig_spki,
        enc_kid=keys.enc_kid,
        sig_kid=keys.sig_kid,
        proof=protocol.sign_device_proof(keys, user.user_id),
    )
    return device.pk


def identity_body(user_id: int, identity) -> dict:
    """`PUT /api/identity/` for the identity RsaKey `identity`."""
    return {
        "id_spki": protocol.b64encode(protocol.spki_of(identity)),
        "proof": protocol.sign_identity_proof(identity, user_id),
    }


def register(username: str, password: str = "correct horse battery staple") -> ChatUser:
    api = ApiClient()
    response = api.post("/api/users/", {"username": username, "password": password})
    assert response.status_code == 201, response.content
    return ChatUser(username=username, api=api, user_id=response.json_body["user"]["id"])


def recipient_keys(viewer: ChatUser, conversation: dict) -> dict:
    """enc kid -> public key for every active device of the conversation's members."""
    keys = {}
    for member in conversation["members"]:
        listing = viewer.api.get(f"/api/users/{member['username']}/devices/").json_body
        for device in listing["devices"]:
            keys[device["enc_kid"]] = protocol.import_public_key(
                protocol.b64decode(device["enc_spki"])
            )
    return keys


def head_of(conversation: dict) -> str:
    """The `head` a message to this conversation carries: its roster head's hash or ""."""
    head = conversation.get("roster_head")
    return head["hash"] if head else ""


def seal(
    sender: ChatUser,
    conversation: dict,
    text: str,
    client_msg_id: str | None = None,
    recipients=None,
    *,
    n: int | None = None,
    head: str | None = None,
):
    """(client_msg_id, envelope) of a v2 text message from `sender` to the conversation:
    `n` the sender's next counter there and `head` the conversation's roster head unless
    given."""
    client_msg_id = client_msg_id or protocol.new_client_msg_id()
    envelope = protocol.seal_envelope(
        protocol.text_message(text),
        conversation_id=conversation["id"],
        sender_id=sender.user_id,
        client_msg_id=client_msg_id,
        n=sender.next_n(conversation["id"]) if n is None else n,
        head=head_of(conversation) if head is None else head,
        sender_keys=sender.keys,
        recipient_keys=recipients
        if recipients is not None
        else recipient_keys(sender, conversation),
    )
    return client_msg_id, envelope


# --- groups and their rosters (§8) --------------------------------------------------------


def _user_ids(users) -> list[int]:
    return [u if isinstance(u, int) else u.user_id for u in users]


def create_group_response(owner: ChatUser, members, title: str | None = None, gid=None):
    """`POST /api/conversations/` for a new group of `owner` and `members` (ChatUsers or
    user ids), record 0 signed by the owner's device; the response."""
    gid = gid or str(uuid.uuid4())
    record = roster.make_record(
        owner.keys,
        gid=gid,
        n=0,
        prev=roster.GENESIS,
        op="create",
        subjects=[owner.user_id, *_user_ids(members)],
        by=owner.user_id,
        title=title,
    )
    return owner.api.post("/api/conversations/", {"gid": gid, "title": title, "roster": record})


def create_group(owner: ChatUser, members, title: str | None = None) -> dict:
    """A new group (see `create_group_response`); its conversation object."""
    response = create_group_response(owner, members, title)
    assert response.status_code == 201, response.content
    return response.json_body["conversation"]


def current_view(user: ChatUser, conversation_id: int) -> dict:
    """The conversation as `user` sees it now (from `GET /api/conversations/`)."""
    for conversation in user.api.get("/api/conversations/").json_body["conversations"]:
        if conversation["id"] == conversation_id:
            return conversation
    raise LookupError(conversation_id)


def roster_record(
    user: ChatUser,
    conversation: dict,
    op: str,
    subjects=(),
    title: str | None = None,
    *,
    head: dict | None = None,
) -> dict:
    """A record signed by `user`'s device following `head` (`{"n","hash"}`; by default the
    conversation's current head, asked of the server)."""
    if head is None:
        head = current_view(user, conversation["id"])["roster_head"]
    return roster.make_record(
        user.keys,
        gid=conversation["gid"],
        n=head["n"] + 1,
        prev=head["hash"],
        op=op,
        subjects=_user_ids(subjects),
        by=user.user_id,
        title=title,
    )


def post_record(user: ChatUser, conversation: dict, record: dict, gid: str | None = None):
    """`POST /api/conversations/<id>/roster/`; the response."""
    body = {"record": record} if gid is None else {"gid": gid, "record": record}
    return user.api.post(f"/api/conversations/{conversation['id']}/roster/", body)


def change_roster(
    user: ChatUser, conversation: dict, op: str, subjects=(), title: str | None = None
) -> dict:
    """Sign and post the next record (`add`, `remove`, `leave`, `title`); the conversation
    object the server answers (201)."""
    response = post_record(
        user, conversation, roster_record(user, conversation, op, subjects, title)
    )
    assert response.status_code == 201, response.content
    return response.json_body["conversation"]


def open_message(reader: ChatUser, message: dict, sender_keys: protocol.DeviceKeys) -> dict:
    return protocol.open_envelope(
        message["envelope"],
        conversation_id=message["conversation"],
        sender_id=message["sender_id"],
        client_msg_id=message["client_msg_id"],
        device_keys=reader.keys,
        sig_public=sender_keys.sig_public,
    )
