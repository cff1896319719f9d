"""Every check on a sent envelope, over HTTP and over the WebSocket: the right error code,
nothing stored, and the socket stays open (PROTOCOL §2, §5, §6). Counters and roster heads
over time are in test_counters.py."""

import json

import pytest
from asgiref.sync import sync_to_async

from chatclient import protocol
from chatclient.protocol_errors import STATUS_BY_CODE
from keys.models import Device
from messaging.models import Message
from tests.inprocess import create_group, frames_until_pong, next_of, recipient_keys, seal


def flip(b64: str) -> str:
    data = bytearray(protocol.b64decode(b64))
    data[len(data) // 2] ^= 0x01
    return protocol.b64encode(bytes(data))


def valid(alice, direct):
    msg_id, envelope = seal(alice, direct, "secret text")
    return {
        "type": "send",
        "conversation": direct["id"],
        "client_msg_id": msg_id,
        "envelope": envelope,
    }


def case_not_member(alice, bob, carol, direct, frame):
    msg_id, envelope = seal(carol, direct, "let me in")
    return carol, {**frame, "client_msg_id": msg_id, "envelope": envelope}, "not_member"


def case_missing_key(alice, bob, carol, direct, frame):
    kid = bob.keys.enc_kid
    del frame["envelope"]["keys"][kid]
    return alice, frame, ("stale_devices", {"missing": [kid], "extra": []})


def case_extra_key(alice, bob, carol, direct, frame):
    frame["envelope"]["keys"][carol.keys.enc_kid] = frame["envelope"]["keys"][bob.keys.enc_kid]
    return alice, frame, ("stale_devices", {"missing": [], "extra": [carol.keys.enc_kid]})


def tamper(field):
    def case(alice, bob, carol, direct, frame):
        frame["envelope"][field] = flip(frame["envelope"][field])
        return alice, frame, "bad_signature"

    case.__name__ = f"case_tampered_{field}"
    return case


def case_aad_client_msg_id(alice, bob, carol, direct, frame):
    # The server rebuilds A from the frame's own fields: another id breaks the signature.
    frame["client_msg_id"] = protocol.new_client_msg_id()
    return alice, frame, "bad_signature"


def case_aad_conversation(alice, bob, carol, direct, frame):
    # Same members, other conversation: the envelope was signed for the direct one.
    frame["conversation"] = create_group(alice, [bob])["id"]
    return alice, frame, "bad_signature"


def case_other_users_sig_kid(alice, bob, carol, direct, frame):
    frame["envelope"]["sig_kid"] = bob.keys.sig_kid
    return alice, frame, "bad_signature"


def case_extra_envelope_field(alice, bob, carol, direct, frame):
    frame["envelope"]["note"] = "hi"
    return alice, frame, "bad_request"


def case_non_canonical_kc(alice, bob, carol, direct, frame):
    assert frame["envelope"]["kc"].endswith("=")
    frame["envelope"]["kc"] = frame["envelope"]["kc"].rstrip("=")
    return alice, frame, "bad_request"


def case_wrong_version(alice, bob, carol, direct, frame):
    frame["envelope"]["v"] = 1
    return alice, frame, "bad_request"


def case_v1_envelope(alice, bob, carol, direct, frame):
    # A genuine v1 envelope, correctly signed: new sends must be v2.
    frame["envelope"] = protocol.seal_envelope_v1(
        protocol.text_message("old style"),
        conversation_id=direct["id"],
        sender_id=alice.user_id,
        client_msg_id=frame["client_msg_id"],
        sender_keys=alice.keys,
        recipient_keys=recipient_keys(alice, direct),
    )
    return alice, frame, "bad_request"


def bad_field(field, value, label):
    def case(alice, bob, carol, direct, frame):
        if value is DELETE:
            del frame["envelope"][field]
        else:
            frame["envelope"][field] = value
        return alice, frame, "bad_request"

    case.__name__ = f"case_{field}_{label}"
    return case


DELETE = object()


def case_tampered_n(alice, bob, carol, direct, frame):
    frame["envelope"]["n"] += 1  # n is signed through A
    return alice, frame, "bad_signature"


def case_tampered_head(alice, bob, carol, direct, frame):
    frame["envelope"]["head"] = "a" * 64  # head is signed through A
    return alice, frame, "bad_signature"


def case_head_in_direct(alice, bob, carol, direct, frame):
    # Signed with a head, but a direct conversation has no roster: head must be "".
    msg_id, envelope = seal(alice, direct, "with a head", head="b" * 64)
    return (
        alice,
        {**frame, "client_msg_id": msg_id, "envelope": envelope},
        (
            "stale_roster",
            {"head": None},
        ),
    )


def case_not_member_before_head(alice, bob, carol, direct, frame):
    msg_id, envelope = seal(carol, direct, "let me in", head="c" * 64)
    return carol, {**frame, "client_msg_id": msg_id, "envelope": envelope}, "not_member"


def case_uppercase_msg_id(alice, bob, carol, direct, frame):
    frame["client_msg_id"] = frame["client_msg_id"].upper()
    return alice, frame, "bad_request"


def case_string_conversation(alice, bob, carol, direct, frame):
    frame["conversation"] = str(frame["conversation"])
    return alice, frame, "bad_request"


def case_oversize(alice, bob, carol, direct, frame):
    frame["envelope"]["ct"] = protocol.b64encode(b"x" * 300_000)
    return alice, frame, "too_large"


CASES = [
    case_not_member,
    case_missing_key,
    case_extra_key,
    tamper("ct"),
    tamper("iv"),
    tamper("kc"),
    tamper("sig"),
    case_aad_client_msg_id,
    case_aad_conversation,
    case_other_users_sig_kid,
    case_extra_envelope_field,
    case_non_canonical_kc,
    case_wrong_version,
    case_v1_envelope,
    bad_field("n", 0, "zero"),
    bad_field("n", 2**53, "too_big"),
    bad_field("n", -1, "negative"),
    bad_field("n", "1", "string"),
    bad_field("n", 1.0, "float"),
    bad_field("n", True, "bool"),
    bad_field("n", None, "null"),
    bad_field("n", DELETE, "missing"),
    bad_field("head", "A" * 64, "uppercase"),
    bad_field("head", "a" * 63, "short"),
    bad_field("head", None, "null"),
    bad_field("head", DELETE, "missing"),
    case_tampered_n,
    case_tampered_head,
    case_head_in_direct,
    case_not_member_before_head,
    case_uppercase_msg_id,
    case_string_conversation,
    case_oversize,
]
IDS = [c.__name__.removeprefix("case_") for c in CASES]


def expected_parts(expected):
    return expected if isinstance(expected, tuple) else (expected, {})


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_rest_send_refusals(trio, case):
    alice, bob, carol, direct = trio
    sender, frame, expected = case(alice, bob, carol, direct, valid(alice, direct))
    code, extra = expected_parts(expected)
    conversation = frame["conversation"] if isinstance(frame["conversation"], int) else direct["id"]
    body = {"client_msg_id": frame["client_msg_id"], "envelope": frame["envelope"]}
    if case is case_string_conversation:
        body["client_msg_id"] = 7  # the REST analogue of a wrong type
    response = sender.api.post(f"/api/conversations/{conversation}/messages/", body)
    error = response.json_body["error"]
    assert error["code"] == code, error
    assert response.status_code == STATUS_BY_CODE[code]
    for key, value in extra.items():
        assert error[key] == value
    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_websocket_send_refusals(trio, case):
    alice, bob, carol, direct = trio
    sender, frame, expected = await sync_to_async(case)(
        alice, bob, carol, direct, await sync_to_async(valid)(alice, direct)
    )
    code, extra = expected_parts(expected)
    ws = sender.socket()
    assert (await ws.connect())[0]
    await ws.send_to(text_data=json.dumps(frame))
    reply = await next_of(ws, "error")
    assert reply["code"] == code, reply
    for key, value in extra.items():
        assert reply[key] == value
    if code != "too_large" and case is not case_uppercase_msg_id:
        assert reply.get("client_msg_id") == frame["client_msg_id"]  # the sender can match it
    await ws.send_json_to({"type": "ping"})
    assert (await next_of(ws, "pong")) == {"type": "pong"}
    assert await sync_to_async(Message.objects.count)() == 0
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_websocket_send_ack_fanout_and_replay(trio):
    alice, bob, carol, direct = trio
    a_ws, a2_ws, b_ws, c_ws = alice.socket(), alice.socket(), bob.socket(), carol.socket()
    for ws in (a_ws, a2_ws, b_ws, c_ws):
        assert (await ws.connect())[0]
    frame = await sync_to_async(valid)(alice, direct)
    await a_ws.send_json_to(frame)
    ack = await next_of(a_ws, "ack")
    assert ack["client_msg_id"] == frame["client_msg_id"] and ack["seq"] == 1
    for ws in (a_ws, a2_ws, b_ws):  # every connection of every member, the sender's included
        message = (await next_of(ws, "message"))["message"]
        assert message["id"] == ack["id"] and message["envelope"] == frame["envelope"]
    await frames_until_pong(a_ws)  # her send (and its fan-out) was handled
    # carol is no member: no copy
    assert "message" not in [f["type"] for f in await frames_until_pong(c_ws)]
    await a_ws.send_json_to(frame)  # replay: same ack, no second row, no second fan-out
    assert (await next_of(a_ws, "ack")) == ack
    assert "message" not in [f["type"] for f in await frames_until_pong(a_ws)]
    assert await frames_until_pong(b_ws) == []
    assert await sync_to_async(Message.objects.count)() == 1
    for ws in (a_ws, a2_ws, b_ws, c_ws):
        await ws.disconnect()


@pytest.mark.django_db
def test_rest_send_signed_by_a_revoked_device_is_refused(trio, device_keys):
    alice, bob, _, direct = trio
    old_keys = alice.keys
    frame = valid(alice, direct)
    alice.register_device(device_keys(), "new laptop")
    old_device = Device.objects.get(enc_kid=old_keys.enc_kid)
    assert alice.api.delete(f"/api/devices/{old_device.pk}/").status_code == 204
    frame["envelope"]["keys"] = {
        kid: value for kid, value in frame["envelope"]["keys"].items() if kid != old_keys.enc_kid
    }
    response = alice.api.post(
        f"/api/conversations/{direct['id']}/messages/",
        {"client_msg_id": frame["client_msg_id"], "envelope": frame["envelope"]},
    )
    assert response.status_code == 400 and response.json_body["error"]["code"] == "bad_signature"
    assert not Message.objects.exists()
