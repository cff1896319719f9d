"""Staff admin: each action, its entry in the admin log and its effect on live sockets.

In-process: Django's test client as a logged-in superuser, Channels' communicators as
the chat users' sockets, the in-memory channel layer in between.
"""

import time
from html.parser import HTMLParser

import pytest
from asgiref.sync import sync_to_async
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.test import Client, override_settings

from accounts.models import User
from chatclient import protocol
from keys.admin import grouped, short
from keys.models import Device, Identity, LinkRequest
from messaging.models import Message
from tests.inprocess import ApiClient, create_group, identity_body, seal, v1_device

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"
CLOSE_WITHIN = 1.0  # seconds: "their sockets close within a second"


# --------------------------------------------------------------------------- helpers


def staff_client() -> Client:
    admin_user = User.objects.create_superuser("root", password="admin root password 1")
    client = Client()
    client.force_login(admin_user)
    return client


def run_action(client: Client, changelist: str, action: str, pks) -> None:
    response = client.post(
        changelist,
        {"action": action, "_selected_action": [str(pk) for pk in pks], "index": "0"},
    )
    assert response.status_code == 302, response.content[:2000]


def logged(obj, text: str, flag: int = CHANGE) -> bool:
    return LogEntry.objects.filter(
        object_id=str(obj.pk), action_flag=flag, change_message__contains=text
    ).exists()


def can_log_in(username: str) -> bool:
    response = ApiClient().post("/api/session/", {"username": username, "password": PASSWORD})
    return response.status_code == 200


async def open_socket(user):
    ws = user.socket()
    connected, code = await ws.connect(timeout=5)
    assert connected, code
    return ws


async def wait_close(ws, within: float = CLOSE_WITHIN) -> tuple[int, float]:
    """(close code, seconds waited); frames before the close are skipped."""
    started = time.monotonic()
    while True:
        left = within - (time.monotonic() - started)
        assert left > 0, "socket not closed in time"
        output = await ws.receive_output(timeout=left)
        if output["type"] == "websocket.close":
            return output.get("code"), time.monotonic() - started


async def wait_frame(ws, frame_type: str, within: float = CLOSE_WITHIN) -> dict:
    started = time.monotonic()
    while True:
        left = within - (time.monotonic() - started)
        assert left > 0, f"no {frame_type} frame in time"
        frame = await ws.receive_json_from(timeout=left)
        if frame["type"] == frame_type:
            return frame


async def still_open(ws) -> bool:
    """True if the socket answers a ping (so it was not closed)."""
    await ws.send_json_to({"type": "ping"})
    try:
        await wait_frame(ws, "pong", within=2)
    except AssertionError:
        return False
    return True


class FormFields(HTMLParser):
    """The submittable fields of one <form> of a page, as a browser would post them."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.select = form_id, False, None
        self.data: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        elif not self.inside or "name" not in a and tag != "option":
            return
        elif tag == "input":
            kind = a.get("type", "text")
            if kind in {"submit", "button", "file"} or (
                kind in {"checkbox", "radio"} and "checked" not in a
            ):
                return
            default = "on" if kind in {"checkbox", "radio"} else ""
            self.data.setdefault(a["name"], []).append(a.get("value", default))
        elif tag == "select":
            self.select = a["name"]
            self.data.setdefault(self.select, [])
        elif tag == "option" and self.select and "selected" in a:
            self.data[self.select].append(a.get("value", ""))
        elif tag == "textarea":
            self.data.setdefault(a["name"], []).append("")

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None


def form_data(html: bytes, form_id: str) -> dict[str, list[str]]:
    parser = FormFields(form_id)
    parser.feed(html.decode())
    assert parser.data, f"form {form_id} not found"
    return parser.data


# --------------------------------------------------------------------------- users


async def test_user_list_search_and_devices_inline(make_user):
    alice = await sync_to_async(make_user)("alice")
    await sync_to_async(make_user)("bob")
    staff = await sync_to_async(staff_client)()
    listing = await sync_to_async(staff.get)("/admin/accounts/user/?q=ali")
    assert listing.status_code == 200
    assert b"alice" in listing.content and b">bob<" not in listing.content
    device = await Device.objects.aget(user_id=alice.user_id)
    page = await sync_to_async(staff.get)(f"/admin/accounts/user/{alice.user_id}/change/")
    assert page.status_code == 200
    for shown in (device.name, grouped(device.enc_kid), grouped(device.sig_kid)):
        assert shown.encode() in page.content


async def test_deactivate_action_closes_sockets_and_blocks_login(make_user):
    alice = await sync_to_async(make_user)("alice")
    bob = await sync_to_async(make_user)("bob")
    staff = await sync_to_async(staff_client)()
    a_ws, b_ws = await open_socket(alice), await open_socket(bob)
    try:
        await sync_to_async(run_action)(
            staff, "/admin/accounts/user/", "deactivate_selected", [alice.user_id]
        )
        code, waited = await wait_close(a_ws)
        assert code == 4403 and waited < CLOSE_WITHIN
        assert await still_open(b_ws)
        user = await User.objects.aget(pk=alice.user_id)
        assert not user.is_active
        assert await sync_to_async(logged)(user, "Deactivated")
        assert not await sync_to_async(can_log_in)("alice")
        # Her old session is dead too: a new socket is refused.
        ws = alice.socket()
        connected, _ = await ws.connect(timeout=5)
        assert connected and (await wait_close(ws))[0] == 4403
    finally:
        await b_ws.disconnect()


async def test_reactivate_action_lets_the_user_log_in_again(make_user):
    await sync_to_async(make_user)("alice", with_device=False)
    staff = await sync_to_async(staff_client)()
    user = await User.objects.aget(username="alice")
    await sync_to_async(run_action)(
        staff, "/admin/accounts/user/", "deactivate_selected", [user.pk]
    )
    assert not await sync_to_async(can_log_in)("alice")
    await sync_to_async(run_action)(
        staff, "/admin/accounts/user/", "reactivate_selected", [user.pk]
    )
    await user.arefresh_from_db()
    assert user.is_active
    assert await sync_to_async(logged)(user, "Reactivated")
    assert await sync_to_async(can_log_in)("alice")


async def test_staff_cannot_deactivate_themselves():
    staff = await sync_to_async(staff_client)()
    root = await User.objects.aget(username="root")
    await sync_to_async(run_action)(
        staff, "/admin/accounts/user/", "deactivate_selected", [root.pk]
    )
    await root.arefresh_from_db()
    assert root.is_active


async def test_revoke_all_devices_action(make_user, device_keys):
    alice = await sync_to_async(make_user)("alice")
    bob = await sync_to_async(make_user)("bob")
    await sync_to_async(alice.api.post)("/api/conversations/", {"members": ["bob"]})
    first = alice.device_id
    await sync_to_async(alice.register_device)(device_keys(), "second")
    staff = await sync_to_async(staff_client)()
    a1, a2 = await open_socket_for(alice, first), await open_socket(alice)
    b_ws = await open_socket(bob)
    try:
        await sync_to_async(run_action)(
            staff, "/admin/accounts/user/", "revoke_all_devices_of_selected", [alice.user_id]
        )
        assert (await wait_close(a1))[0] == 4403
        assert (await wait_close(a2))[0] == 4403
        changed = await wait_frame(b_ws, "devices_changed")
        assert changed["user"] == "alice"
        assert not await Device.objects.active().filter(user_id=alice.user_id).aexists()
        user = await User.objects.aget(pk=alice.user_id)
        assert user.is_active  # only the devices are gone
        assert await sync_to_async(logged)(user, "Revoked all devices (2)")
    finally:
        await b_ws.disconnect()


async def open_socket_for(user, device_id):
    ws = user.socket(device_id)
    connected, code = await ws.connect(timeout=5)
    assert connected, code
    return ws


async def test_change_form_deactivation_goes_through_the_action(make_user):
    alice = await sync_to_async(make_user)("alice")
    staff = await sync_to_async(staff_client)()
    url = f"/admin/accounts/user/{alice.user_id}/change/"
    page = await sync_to_async(staff.get)(url)
    data = form_data(page.content, "user_form")
    assert data.pop("is_active") == ["on"]
    data["first_name"] = ["Alice"]
    a_ws = await open_socket(alice)
    response = await sync_to_async(staff.post)(url, {**data, "_save": "Save"})
    assert response.status_code == 302, response.content[:3000]
    assert (await wait_close(a_ws))[0] == 4403
    user = await User.objects.aget(pk=alice.user_id)
    assert not user.is_active and user.first_name == "Alice"
    assert await sync_to_async(logged)(user, "Active")
    assert not await sync_to_async(can_log_in)("alice")
    # And back on through the same form.
    page = await sync_to_async(staff.get)(url)
    data = form_data(page.content, "user_form")
    data["is_active"] = ["on"]
    response = await sync_to_async(staff.post)(url, {**data, "_save": "Save"})
    assert response.status_code == 302
    assert await sync_to_async(can_log_in)("alice")


@override_settings(REGISTRATION_OPEN=False)
def test_staff_create_users_when_registration_is_closed():
    refused = ApiClient().post("/api/users/", {"username": "dave", "password": PASSWORD})
    assert refused.status_code == 403
    staff = staff_client()
    response = staff.post(
        "/admin/accounts/user/add/",
        {"username": "carol", "password1": PASSWORD, "password2": PASSWORD, "_save": "Save"},
    )
    assert response.status_code == 302, response.content[:3000]
    carol = User.objects.get(username="carol")
    assert carol.is_active and not carol.is_staff
    assert logged(carol, "", ADDITION)
    assert can_log_in("carol")
    # The action's checks hold here too: taken names in any case, weak passwords.
    for username, password in (("CAROL", PASSWORD), ("erin", "123")):
        again = staff.post(
            "/admin/accounts/user/add/",
            {"username": username, "password1": password, "password2": password},
        )
        assert again.status_code == 200  # the form again, with its errors
    assert User.objects.count() == 2


def test_users_and_devices_cannot_be_deleted_in_admin(make_user):
    alice = make_user("alice")
    staff = staff_client()
    device = Device.objects.get(user_id=alice.user_id)
    assert staff.get(f"/admin/accounts/user/{alice.user_id}/delete/").status_code == 403
    assert staff.get(f"/admin/keys/device/{device.pk}/delete/").status_code == 403
    assert staff.get("/admin/keys/device/add/").status_code == 403
    # A device's own page is read-only (no form to save).
    page = staff.get(f"/admin/keys/device/{device.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content


# --------------------------------------------------------------------------- devices


async def test_device_search_by_fingerprint_and_revoke_action(make_user, device_keys):
    alice = await sync_to_async(make_user)("alice")
    bob = await sync_to_async(make_user)("bob")
    await sync_to_async(alice.api.post)("/api/conversations/", {"members": ["bob"]})
    kept = alice.device_id
    await sync_to_async(alice.register_device)(device_keys(), "laptop")
    laptop = await Device.objects.aget(pk=alice.device_id)
    staff = await sync_to_async(staff_client)()
    found = await sync_to_async(staff.get)(f"/admin/keys/device/?q={laptop.sig_kid[:12]}")
    assert b"laptop" in found.content and found.content.count(b'name="_selected_action"') == 1
    found = await sync_to_async(staff.get)(f"/admin/keys/device/?q={laptop.enc_kid}")
    assert found.content.count(b'name="_selected_action"') == 1

    kept_ws, laptop_ws = await open_socket_for(alice, kept), await open_socket(alice)
    b_ws = await open_socket(bob)
    try:
        await sync_to_async(run_action)(
            staff, "/admin/keys/device/", "revoke_selected", [laptop.pk]
        )
        assert (await wait_close(laptop_ws))[0] == 4403
        assert (await wait_frame(b_ws, "devices_changed"))["user"] == "alice"
        assert (await wait_frame(kept_ws, "devices_changed"))["user"] == "alice"
        assert await still_open(kept_ws)
        await laptop.arefresh_from_db()
        assert laptop.revoked is not None
        assert await sync_to_async(logged)(laptop, "Revoked")
        assert not await Device.objects.filter(pk=kept, revoked__isnull=False).aexists()
    finally:
        await kept_ws.disconnect()
        await b_ws.disconnect()


# --------------------------------------------------------------------------- identities


def test_identity_fingerprints_and_device_certs_in_the_user_admin(make_user, device_keys):
    """Current and replaced identity fingerprints, each device's certificate status,
    identities searchable by fingerprint; no proof, cert or other signature shown."""
    alice = make_user("alice")
    make_user("bob")
    old_kid, old_device = alice.keys.id_kid, alice.device_id
    new_identity = device_keys().id_private
    reset = {**identity_body(alice.user_id, new_identity), "replace": True}
    assert alice.api.call("PUT", "/api/identity/", reset).status_code == 201
    alice.identity = new_identity
    alice.register_device(device_keys(), "laptop")
    laptop = alice.device_id
    legacy = v1_device(alice, device_keys(), "old tablet")
    new_kid = protocol.compute_kid(protocol.spki_of(new_identity))
    staff = staff_client()

    users = staff.get("/admin/accounts/user/").content.decode()
    assert short(new_kid) in users and "none (not upgraded)" in users  # root has no identity
    page = staff.get(f"/admin/accounts/user/{alice.user_id}/change/").content.decode()
    assert new_kid in page and old_kid in page
    assert f"certified by {short(new_kid)}" in page
    assert f"certified by replaced identity {short(old_kid)}" in page
    assert "no cert (v1)" in page and "old tablet" in page

    found = staff.get(f"/admin/keys/identity/?q={old_kid[:20]}")
    assert found.status_code == 200
    assert (
        found.content.count(b'class="field-fingerprint"') == 1 and old_kid.encode() in found.content
    )
    assert b"replaced" in found.content
    users_found = staff.get(f"/admin/accounts/user/?q={new_kid}")
    assert users_found.content.count(b'name="_selected_action"') == 1
    identity = Identity.objects.get(id_kid=new_kid)
    detail = staff.get(f"/admin/keys/identity/{identity.pk}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    assert staff.get("/admin/keys/identity/add/").status_code == 403
    assert staff.get(f"/admin/keys/identity/{identity.pk}/delete/").status_code == 403

    devices = staff.get("/admin/keys/device/?cert=none").content.decode()
    assert "old tablet" in devices and "laptop" not in devices
    devices = staff.get("/admin/keys/device/?cert=replaced").content
    assert devices.count(b'name="_selected_action"') == 1
    shown = [page, users, found.content.decode(), detail.content.decode()]
    for device in Device.objects.filter(pk__in=[old_device, laptop, legacy]):
        shown.append(staff.get(f"/admin/keys/device/{device.pk}/change/").content.decode())
    secrets = [d.cert for d in Device.objects.exclude(cert="")]
    secrets += [d.proof for d in Device.objects.all()] + [i.proof for i in Identity.objects.all()]
    for body in shown:
        for secret in secrets:
            assert secret[:24] not in body


def test_link_requests_are_listed_read_only_without_id_wrap(make_user, device_keys):
    alice = make_user("alice")
    pending_keys, approved_keys = device_keys(), device_keys()
    bodies = {}
    for keys, name in ((pending_keys, "waiting phone"), (approved_keys, "new laptop")):
        body = {
            "name": name,
            "enc_spki": protocol.b64encode(keys.enc_spki),
            "sig_spki": protocol.b64encode(keys.sig_spki),
            "proof": protocol.sign_device_proof(keys, alice.user_id),
        }
        bodies[name] = alice.api.post("/api/link-requests/", body).json_body["link_request"]
    id_wrap = protocol.make_id_wrap(
        alice.identity,
        {"identities": {}},
        user_id=alice.user_id,
        enc_public=approved_keys.enc_public,
        sig_kid=approved_keys.sig_kid,
    )
    cert = protocol.sign_device_cert(
        alice.identity, alice.user_id, approved_keys.enc_kid, approved_keys.sig_kid
    )
    approved = alice.api.post(
        f"/api/link-requests/{bodies['new laptop']['id']}/approve/",
        {"cert": cert, "id_wrap": id_wrap},
    )
    assert approved.status_code == 201
    staff = staff_client()
    listing = staff.get("/admin/keys/linkrequest/")
    assert listing.status_code == 200
    text = listing.content.decode()
    assert "waiting phone" in text and "new laptop" in text
    assert "pending" in text and "approved" in text
    found = staff.get(f"/admin/keys/linkrequest/?q={pending_keys.enc_kid[:12]}")
    assert b"waiting phone" in found.content and b"new laptop" not in found.content
    pk = bodies["new laptop"]["id"]
    detail = staff.get(f"/admin/keys/linkrequest/{pk}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    for body in (text, detail.content.decode()):
        for secret in (id_wrap["ek"], id_wrap["ct"], id_wrap["iv"], cert):
            assert secret[:24] not in body
        assert "id_wrap" not in body and "id wrap" not in body.lower()
    assert staff.get("/admin/keys/linkrequest/add/").status_code == 403
    assert staff.get(f"/admin/keys/linkrequest/{pk}/delete/").status_code == 403
    assert (
        staff.post(f"/admin/keys/linkrequest/{pk}/change/", {"status": "denied"}).status_code == 403
    )
    assert LinkRequest.objects.get(pk=pk).status == LinkRequest.APPROVED


# --------------------------------------------------------------------------- conversations


def test_conversations_and_messages_are_metadata_only(trio):
    alice, bob, carol, direct = trio
    group = create_group(alice, [bob, carol], "Team")
    envelopes = []
    for conversation, text in ((direct, "one"), (direct, "two"), (group, "three")):
        msg_id, envelope = seal(alice, conversation, text)
        sent = alice.api.post(
            f"/api/conversations/{conversation['id']}/messages/",
            {"client_msg_id": msg_id, "envelope": envelope},
        )
        assert sent.status_code == 201, sent.json_body
        envelopes.append(envelope)
    staff = staff_client()

    listing = staff.get("/admin/messaging/conversation/")
    assert listing.status_code == 200
    text = listing.content.decode()
    assert "Team" in text and "alice, bob, carol" in text and "alice, bob" in text
    assert "group" in text and "direct" in text

    page = staff.get(f"/admin/messaging/conversation/{direct['id']}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert f"?conversation__id__exact={direct['id']}".encode() in page.content
    roster = staff.get(f"/admin/messaging/conversation/{group['id']}/change/").content.decode()
    assert group["gid"] in roster and group["roster_head"]["hash"] in roster  # record 0 listed

    messages = staff.get(f"/admin/messaging/message/?conversation__id__exact={direct['id']}")
    assert messages.status_code == 200
    assert messages.content.count(b'class="field-seq"') == 2
    one = Message.objects.get(conversation_id=direct["id"], seq=1)
    detail = staff.get(f"/admin/messaging/message/{one.pk}/change/")
    assert detail.status_code == 200
    assert str(one.size).encode() in detail.content and b"alice" in detail.content
    for response in (listing, page, messages, detail):
        body = response.content.decode()
        assert "envelope" not in body.lower()
        for envelope in envelopes:
            for secret in (envelope["ct"], envelope["sig"], *envelope["keys"].values()):
                assert secret[:24] not in body
    for url in ("/admin/messaging/message/add/", f"/admin/messaging/message/{one.pk}/delete/"):
        assert staff.get(url).status_code == 403
    assert staff.get(f"/admin/messaging/conversation/{direct['id']}/delete/").status_code == 403


# --------------------------------------------------------------------------- lane ops (issue 16)


async def test_staff_password_reset_in_the_admin_closes_her_sockets(make_user):
    """The admin's "change password" form (a staff reset): her sockets close (4401, logged
    out, like a logout) within a second; others stay; the reset is in the admin log."""
    alice = await sync_to_async(make_user)("alice")
    bob = await sync_to_async(make_user)("bob")
    staff = await sync_to_async(staff_client)()
    a_ws, b_ws = await open_socket(alice), await open_socket(bob)
    try:
        url = f"/admin/accounts/user/{alice.user_id}/password/"
        form = {
            "password1": "a new staff-set password 7",
            "password2": "a new staff-set password 7",
        }
        response = await sync_to_async(staff.post)(url, form)
        assert response.status_code == 302, response.content[:2000]
        code, waited = await wait_close(a_ws)
        assert code == 4401 and waited < CLOSE_WITHIN
        assert await still_open(b_ws)
        user = await User.objects.aget(pk=alice.user_id)
        assert await sync_to_async(logged)(user, "password")  # JSON: {"changed": {"fields": ...}}
    finally:
        await b_ws.disconnect()


def _displayed(kid: str, chars: int) -> str:
    """A fingerprint's start as the clients show it: "843d 0887 …"."""
    return " ".join(kid[i : i + 4] for i in range(0, chars, 4)) + " …"


def test_fingerprint_search_takes_the_displayed_format(make_user, device_keys):
    """Device, identity and user search by a fingerprint as shown ("843d 0887 …"), in
    upper case, or with colons; a non-hex term still searches names."""
    alice = make_user("alice")
    make_user("bob")
    alice.register_device(device_keys(), "laptop")
    laptop = Device.objects.get(pk=alice.device_id)
    staff = staff_client()
    kid = laptop.sig_kid
    colons = ":".join(kid[i : i + 2] for i in range(0, 12, 2)).upper()
    for term in (_displayed(kid, 12), colons, kid[:12].upper()):
        found = staff.get("/admin/keys/device/", {"q": term})
        assert found.status_code == 200
        assert found.content.count(b'name="_selected_action"') == 1, term
        assert b"laptop" in found.content
        users = staff.get("/admin/accounts/user/", {"q": term}).content
        assert users.count(b'name="_selected_action"') == 1 and b"alice" in users, term
    identity = _displayed(alice.keys.id_kid, 8)
    found = staff.get("/admin/keys/identity/", {"q": identity}).content
    assert found.count(b'class="field-fingerprint"') == 1
    users = staff.get("/admin/accounts/user/", {"q": identity}).content
    assert users.count(b'name="_selected_action"') == 1
    assert staff.get("/admin/keys/device/", {"q": "laptop"}).content.count(b"laptop") >= 1


async def test_revoke_button_on_the_user_page(make_user):
    alice = await sync_to_async(make_user)("alice")
    staff = await sync_to_async(staff_client)()
    device = await Device.objects.aget(pk=alice.device_id)
    page = await sync_to_async(staff.get)(f"/admin/accounts/user/{alice.user_id}/change/")
    revoke = f"/admin/keys/device/{device.pk}/revoke/"
    assert revoke.encode() in page.content
    ask = await sync_to_async(staff.get)(revoke)
    assert ask.status_code == 200 and b"Yes, revoke it" in ask.content
    assert await Device.objects.filter(pk=device.pk, revoked__isnull=True).aexists()
    ws = await open_socket(alice)
    done = await sync_to_async(staff.post)(revoke)
    assert done.status_code == 302
    assert done["Location"] == f"/admin/accounts/user/{alice.user_id}/change/"
    assert (await wait_close(ws))[0] == 4403
    await device.arefresh_from_db()
    assert device.revoked is not None and await sync_to_async(logged)(device, "Revoked")
    nobody = await sync_to_async(Client().get)(revoke)
    assert nobody.status_code == 302 and "/admin/login/" in nobody["Location"]


async def test_user_activity_columns_and_read_only_dates(make_user):
    """Online now, last seen (set when a socket opens and closes) and storage per user;
    last_login and date_joined cannot be edited."""
    alice = await sync_to_async(make_user)("alice")
    await sync_to_async(make_user)("bob")
    staff = await sync_to_async(staff_client)()
    ws = await open_socket(alice)
    listing = (await sync_to_async(staff.get)("/admin/accounts/user/?o=3")).content.decode()
    row = next(r for r in listing.split("<tr") if ">alice<" in r)
    assert 'field-online_now"><img src="/static/admin/img/icon-yes.svg"' in row
    other = next(r for r in listing.split("<tr") if ">bob<" in r)
    assert "icon-no.svg" in other and "never" in other
    await ws.disconnect()
    device = await Device.objects.aget(pk=alice.device_id)
    assert device.last_seen is not None
    page = await sync_to_async(staff.get)(f"/admin/accounts/user/{alice.user_id}/change/")
    html = page.content.decode()
    assert 'name="last_login"' not in html and 'name="date_joined"' not in html
    assert "Storage" in html or "storage" in html


def test_audit_page_lists_every_staff_action_read_only_and_logs_json(make_user, caplog):
    alice = make_user("alice")
    make_user("bob")
    other_staff = User.objects.create_superuser("ops2", password="another admin password 2")
    second = Client()
    second.force_login(other_staff)
    run_action(second, "/admin/accounts/user/", "deactivate_selected", [alice.user_id])
    record = next(r for r in caplog.records if r.name == "chatsite.staff")
    assert (record.staff, record.action, record.target_type) == ("ops2", "change", "accounts.user")
    assert record.target == "alice" and "Deactivated" in record.change
    staff = staff_client()
    audit = staff.get("/admin/admin/logentry/")
    assert audit.status_code == 200
    assert b"ops2" in audit.content and b"Deactivated by admin action." in audit.content
    entry = LogEntry.objects.get(user=other_staff)
    detail = staff.get(f"/admin/admin/logentry/{entry.pk}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    assert staff.get(f"/admin/admin/logentry/{entry.pk}/delete/").status_code == 403
    assert staff.get("/admin/admin/logentry/add/").status_code == 403


def test_connections_admin_shows_live_rows_with_host_port_pid(make_user):
    from datetime import timedelta

    from django.utils import timezone

    from messaging.models import Connection

    alice = make_user("alice")
    d, u = alice.device_id, alice.user_id
    Connection.objects.create(
        channel_name="live.one", user_id=u, device_id=d, worker="a" * 32,
        host="chat-host-1", port=8001, pid=4242,
    )  # fmt: skip
    Connection.objects.create(
        channel_name="stale.one", user_id=u, device_id=d, worker="b" * 32,
        host="chat-host-1", port=8002, pid=777, seen=timezone.now() - timedelta(minutes=5),
    )  # fmt: skip
    staff = staff_client()
    live = staff.get("/admin/messaging/connection/").content.decode()
    assert "chat-host-1" in live and "4242" in live and "8001" in live
    assert "777" not in live
    everything = staff.get("/admin/messaging/connection/?state=all").content.decode()
    assert "4242" in everything and "777" in everything
    stale = staff.get("/admin/messaging/connection/?state=stale").content.decode()
    assert "777" in stale and "4242" not in stale
