"""The floods of issue 15 finding 8 (and finding 1's device registrations), each with small
limits set for the test: the request past the limit gets 429 `rate_limited` with a
Retry-After header and changes nothing; another address or user is not held back.
Sockets past MAX_SOCKETS_PER_DEVICE or MAX_SOCKETS_PER_USER get a `rate_limited` error
frame and close 4429. The windows are 30 days long, so none ends mid-test (django-ratelimit
counts in fixed windows)."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from accounts.models import User
from keys.models import Device, LinkRequest
from messaging.models import Connection, Message
from tests.inprocess import ApiClient, device_body, seal
from tests.test_link_requests import log_in, request_body

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"


def assert_limited(response):
    assert response.status_code == 429, response.content
    assert response.json_body["error"]["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1


def from_address(address: str) -> ApiClient:
    api = ApiClient()
    api.http.defaults["REMOTE_ADDR"] = address
    return api


def test_registration_flood_is_limited_per_address(settings):
    settings.REGISTER_RATE = "3/30d"
    for n in range(3):
        body = {"username": f"spam{n}", "password": PASSWORD}
        assert ApiClient().post("/api/users/", body).status_code == 201
    assert_limited(ApiClient().post("/api/users/", {"username": "spam3", "password": PASSWORD}))
    page = Client().post("/register/", {"username": "spam4", "password1": PASSWORD})
    assert page.status_code == 429 and int(page["Retry-After"]) >= 1  # the form counts too
    assert sorted(User.objects.values_list("username", flat=True)) == ["spam0", "spam1", "spam2"]
    elsewhere = from_address("198.51.100.9").post(
        "/api/users/", {"username": "someone", "password": PASSWORD}
    )
    assert elsewhere.status_code == 201


def test_login_attempts_are_limited_per_address(settings, make_user):
    make_user("alice", with_device=False)
    settings.LOGIN_RATE = "3/30d"
    attacker = from_address("203.0.113.5")
    for name in ("x1", "x2", "x3"):  # credential stuffing: a new name each time
        assert attacker.post("/api/session/", {"username": name, "password": "no"}).status_code
    assert_limited(attacker.post("/api/session/", {"username": "alice", "password": PASSWORD}))
    form = Client()
    form.defaults["REMOTE_ADDR"] = "203.0.113.5"
    page = form.post("/login/", {"username": "alice", "password": PASSWORD})
    assert page.status_code == 429 and "sessionid" not in page.cookies
    victim = from_address("198.51.100.20")
    body = {"username": "alice", "password": PASSWORD}
    assert victim.post("/api/session/", body).status_code == 200


def test_device_registration_flood_is_limited_per_user(settings, make_user, device_keys):
    settings.DEVICE_REGISTER_RATE = "2/30d"
    alice = make_user("alice")  # her first device: one of two
    alice.register_device(device_keys(), "second")
    keys = device_keys().with_identity(alice.identity)
    assert_limited(alice.api.post("/api/devices/", device_body(alice.user_id, keys, "third")))
    assert Device.objects.filter(user_id=alice.user_id).count() == 2
    make_user("bob")  # another user (same address) is not held back


def test_link_request_flood_is_limited_per_user(settings, make_user, device_keys):
    settings.LINK_REQUEST_RATE = "2/30d"
    alice = make_user("alice")
    laptop = log_in("alice")
    for name in ("one", "two"):
        response = laptop.post("/api/link-requests/", request_body(alice, device_keys(), name))
        assert response.status_code == 201, response.content
    assert_limited(laptop.post("/api/link-requests/", request_body(alice, device_keys(), "3")))
    assert LinkRequest.objects.filter(user_id=alice.user_id).count() == 2


def test_rest_send_flood_is_limited_per_user(settings, trio):
    settings.REST_SEND_RATE = "3/30d"
    alice, bob, _, direct = trio
    path = f"/api/conversations/{direct['id']}/messages/"
    for n in range(3):
        client_msg_id, envelope = seal(alice, direct, f"hi {n}")
        body = {"client_msg_id": client_msg_id, "envelope": envelope}
        assert alice.api.post(path, body).status_code == 201
    client_msg_id, envelope = seal(alice, direct, "one too many")
    assert_limited(alice.api.post(path, {"client_msg_id": client_msg_id, "envelope": envelope}))
    assert Message.objects.filter(conversation_id=direct["id"]).count() == 3
    client_msg_id, envelope = seal(bob, direct, "bob is not held back")
    body = {"client_msg_id": client_msg_id, "envelope": envelope}
    assert bob.api.post(path, body).status_code == 201


async def refused_with_4429(ws) -> dict:
    """The socket opens, gets one `rate_limited` error frame, and is closed with 4429."""
    assert (await ws.connect())[0]
    frame = await ws.receive_json_from(timeout=5)
    output = await asyncio.wait_for(ws.output_queue.get(), 5)
    assert output == {"type": "websocket.close", "code": 4429}
    return frame


async def test_sockets_are_capped_per_device_and_per_user(settings, make_user, device_keys):
    settings.MAX_SOCKETS_PER_DEVICE, settings.MAX_SOCKETS_PER_USER = 2, 3
    alice = await sync_to_async(make_user)("alice")
    laptop = alice.device_id
    phone = (await sync_to_async(alice.register_device)(device_keys(), "phone"))["id"]
    opened = [alice.socket(laptop), alice.socket(laptop)]
    for ws in opened:
        assert (await ws.connect())[0]
    frame = await refused_with_4429(alice.socket(laptop))  # a third on one device
    assert frame["type"] == "error" and frame["code"] == "rate_limited"
    opened.append(alice.socket(phone))  # her other device still gets in: 3 of 3
    assert (await opened[-1].connect())[0]
    await refused_with_4429(alice.socket(phone))  # a fourth for her
    assert await Connection.objects.filter(user_id=alice.user_id).acount() == 3
    await opened.pop(0).disconnect()  # a closed one frees its place
    opened.append(alice.socket(phone))
    assert (await opened[-1].connect())[0]
    await opened[-1].send_to(text_data='{"type":"ping"}')
    assert await opened[-1].receive_json_from(timeout=5) == {"type": "pong"}
    for ws in opened:
        await ws.disconnect()
