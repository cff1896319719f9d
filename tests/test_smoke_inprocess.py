import pytest

from tests.inprocess import open_message, register, seal

pytestmark = pytest.mark.django_db(transaction=True)


async def test_direct_chat_roundtrip(device_keys):
    from asgiref.sync import sync_to_async

    alice, bob = await sync_to_async(register)("alice"), await sync_to_async(register)("bob")
    await sync_to_async(alice.register_device)(device_keys())
    await sync_to_async(bob.register_device)(device_keys())
    conv = (
        await sync_to_async(alice.api.post)("/api/conversations/", {"members": ["bob"]})
    ).json_body["conversation"]
    a_ws, b_ws = alice.socket(), bob.socket()
    assert (await a_ws.connect())[0]
    assert (await b_ws.connect())[0]
    msg_id, env = await sync_to_async(seal)(alice, conv, "hello bob")
    await a_ws.send_json_to(
        {"type": "send", "conversation": conv["id"], "client_msg_id": msg_id, "envelope": env}
    )
    frames = [await a_ws.receive_json_from(timeout=5) for _ in range(2)]
    print(frames)
    got = await b_ws.receive_json_from(timeout=5)
    while got["type"] != "message":
        got = await b_ws.receive_json_from(timeout=5)
    assert open_message(bob, got["message"], alice.keys)["text"] == "hello bob"
    await a_ws.disconnect()
    await b_ws.disconnect()
