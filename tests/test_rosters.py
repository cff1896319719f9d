"""Group rosters on the server (PROTOCOL §8): creating a group from record 0, every check
on a posted record with its code and nothing changed, the chain served back verifying
under the client's rules, the owner rule, v1 groups' record 0, and direct conversations
that never change. Real database, in-process API."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from chatclient import protocol, roster
from chatclient.protocol_errors import STATUS_BY_CODE
from keys.models import Device, Identity
from messaging.models import Conversation, Membership, Message, RosterRecord
from tests.inprocess import (
    change_roster,
    create_group,
    create_group_response,
    current_view,
    post_record,
    roster_record,
    seal,
)

pytestmark = pytest.mark.django_db


def error_of(response, code, status=None):
    assert response.status_code == (status or STATUS_BY_CODE[code]), response.content
    error = response.json_body["error"]
    assert error["code"] == code, error
    return error


def snapshot(conversation_id):
    """Everything a record may change: records, members (with their marks), head, owner, title."""
    conversation = Conversation.objects.get(pk=conversation_id)
    return (
        list(RosterRecord.objects.filter(conversation_id=conversation_id).values_list("n", "hash")),
        sorted(
            Membership.objects.filter(conversation_id=conversation_id).values_list(
                "user_id", "left_seq", "joined_n"
            )
        ),
        conversation.gid,
        conversation.roster_n,
        conversation.roster_hash,
        conversation.owner_id,
        conversation.title,
    )


def signed(keys, conversation, op, subjects, by, title=None, *, n=None, prev=None, gid=None):
    """A record made by `keys` with any `by` (to test who may sign what)."""
    head = conversation["roster_head"]
    return roster.make_record(
        keys,
        gid=gid or conversation["gid"],
        n=head["n"] + 1 if n is None else n,
        prev=head["hash"] if prev is None else prev,
        op=op,
        subjects=subjects,
        by=by,
        title=title,
    )


def rehash(record, gid):
    record["hash"] = roster.record_hash(gid, record)
    return record


def served_chain(user, conversation):
    """The records the server serves, verified with the client's rules from record 0."""
    records = user.api.get(f"/api/conversations/{conversation['id']}/roster/").json_body["records"]

    def signing_key(record):
        device = Device.objects.get(sig_kid=record["sig_kid"], user_id=record["by"])
        return protocol.import_public_key(bytes(device.sig_spki))

    return records, roster.verify_chain(conversation["gid"], records, signing_key)


# --- creating a group ---------------------------------------------------------------------


def test_group_creation_stores_record_0_and_serves_it(make_user):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    response = create_group_response(alice, [carol, bob], "Team")
    assert response.status_code == 201
    group = response.json_body["conversation"]
    assert uuid.UUID(group["gid"]).version == 4 and group["gid"] == group["gid"].lower()
    records, state = served_chain(bob, group)
    assert [r["op"] for r in records] == ["create"] and records[0]["created"].endswith("Z")
    assert group["roster_head"] == {"n": 0, "hash": records[0]["hash"]}
    assert state.members == {alice.user_id, bob.user_id, carol.user_id}
    assert state.owner == alice.user_id and state.title == "Team" == group["title"]
    untitled = create_group(alice, [bob])
    assert untitled["title"] is None and served_chain(alice, untitled)[1].title is None


def test_the_same_record_0_again_returns_the_group(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    gid = str(uuid.uuid4())
    first = create_group_response(alice, [bob], "x", gid=gid)
    record = RosterRecord.objects.get()
    body = {
        "gid": gid,
        "title": "x",
        "roster": {
            "n": 0,
            "prev": record.prev,
            "op": "create",
            "subjects": record.subjects,
            "by": alice.user_id,
            "title": "x",
            "sig_kid": record.sig_kid,
            "sig": record.sig,
            "hash": record.hash,
        },
    }
    again = alice.api.post("/api/conversations/", body)
    assert again.status_code == 200
    assert again.json_body["conversation"]["id"] == first.json_body["conversation"]["id"]
    assert Conversation.objects.count() == 1 and RosterRecord.objects.count() == 1


def creation_cases(alice, bob, carol, gid):
    """(label, body, expected code, extra fields) for refused group creations."""

    def record(keys=None, **changes):
        fields = {
            "gid": gid,
            "n": 0,
            "prev": roster.GENESIS,
            "op": "create",
            "subjects": [alice.user_id, bob.user_id],
            "by": alice.user_id,
            "title": "t",
        }
        fields.update(changes)
        return roster.make_record(keys or alice.keys, **fields)

    def body(rec, **changes):
        return {"gid": gid, "title": "t", "roster": rec, **changes}

    good = record()
    missing_field = {k: v for k, v in good.items() if k != "sig_kid"}
    bad_hash = {**good, "hash": "0" * 64}
    bad_sig = rehash({**good, "sig": protocol.b64encode(b"\x01" * 256)}, gid)
    return [
        ("gid not uuid4", body(good, gid=gid.upper()), "bad_request", {}),
        ("gid uuid1", body(good, gid=str(uuid.uuid1())), "bad_request", {}),
        ("record missing a field", body(missing_field), "bad_request", {}),
        (
            "record with created",
            body({**good, "created": "2026-01-01T00:00:00Z"}),
            "bad_request",
            {},
        ),
        ("record not an object", body(None) | {"roster": [good]}, "bad_request", {}),
        (
            "unsorted subjects",
            body(rehash({**good, "subjects": [bob.user_id, alice.user_id]}, gid)),
            "bad_request",
            {},
        ),
        ("title differs", body(good, title="other"), "bad_request", {}),
        ("title missing", {"gid": gid, "roster": good}, "bad_request", {}),
        ("members too", body(good, members=["bob"]), "bad_request", {}),
        ("by another user", body(record(keys=bob.keys, by=bob.user_id)), "forbidden", {}),
        ("wrong hash", body(bad_hash), "bad_request", {}),
        ("signature of another's device", body(record(keys=bob.keys)), "bad_signature", {}),
        ("bad signature", body(bad_sig), "bad_signature", {}),
        (
            "signed for another gid",
            body(rehash(record(gid=str(uuid.uuid4())), gid)),
            "bad_signature",
            {},
        ),
        ("not a create", body(record(op="add")), "bad_request", {}),
        ("n is 1", body(record(n=1)), "bad_request", {}),
        ("prev not genesis", body(record(prev="1" * 64)), "bad_request", {}),
        (
            "creator not a member",
            body(record(subjects=[bob.user_id, carol.user_id])),
            "bad_request",
            {},
        ),
        (
            "unknown user",
            body(record(subjects=[alice.user_id, 999])),
            "not_found",
            {"user_ids": [999]},
        ),
    ]


def test_group_creation_refusals_store_nothing(make_user):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    cases = creation_cases(alice, bob, carol, str(uuid.uuid4()))
    for label, body, code, extra in cases:
        error = error_of(alice.api.post("/api/conversations/", body), code)
        for key, value in extra.items():
            assert error[key] == value, label
        assert not Conversation.objects.exists(), label
        assert not RosterRecord.objects.exists() and not Membership.objects.exists(), label


def test_group_creation_refuses_inactive_users_and_taken_gids(make_user):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    User.objects.filter(pk=carol.user_id).update(is_active=False)
    error = error_of(create_group_response(alice, [bob, carol]), "not_found")
    assert error["user_ids"] == [carol.user_id]
    gid = create_group(alice, [bob])["gid"]
    taken = create_group_response(bob, [alice], gid=gid)  # another record 0, same gid
    error_of(taken, "bad_request")
    assert Conversation.objects.count() == 1 and RosterRecord.objects.count() == 1


def test_group_creation_needs_a_certified_active_device(make_user, device_keys):
    alice, bob = make_user("alice"), make_user("bob")
    first = alice.keys
    alice.register_device(device_keys(), "second")
    Device.objects.filter(sig_kid=first.sig_kid).update(cert="", identity=None)
    response = alice.api.post(
        "/api/conversations/",
        {
            "gid": (gid := str(uuid.uuid4())),
            "title": None,
            "roster": roster.make_record(
                first,
                gid=gid,
                n=0,
                prev=roster.GENESIS,
                op="create",
                subjects=[alice.user_id, bob.user_id],
                by=alice.user_id,
            ),
        },
    )
    error_of(response, "bad_signature")
    assert not Conversation.objects.exists()
    assert create_group_response(alice, [bob]).status_code == 201  # the certified one may


# --- the next record ----------------------------------------------------------------------


@pytest.fixture
def group(make_user):
    """alice (owner), bob and carol in a group; dave exists outside it."""
    alice, bob, carol, dave = (make_user(n) for n in ("alice", "bob", "carol", "dave"))
    conversation = create_group(alice, [bob, carol], "crew")
    return alice, bob, carol, dave, conversation


def record_cases(alice, bob, carol, dave, conv):
    """(label, poster, body, expected code, extra) for refused records."""
    gid, head = conv["gid"], conv["roster_head"]

    def rec(keys=None, op="add", subjects=(dave.user_id,), by=None, title=None, **kw):
        return signed(
            keys or alice.keys, conv, op, list(subjects), by or alice.user_id, title, **kw
        )

    good = rec()
    stale = {"head": head}
    return [
        ("not an object", alice, {"record": [good]}, "bad_request", {}),
        ("no record", alice, {}, "bad_request", {}),
        (
            "extra field",
            alice,
            {"record": {**good, "created": "2026-01-01T00:00:00Z"}},
            "bad_request",
            {},
        ),
        (
            "subjects unsorted",
            alice,
            {"record": rehash({**good, "subjects": [dave.user_id, bob.user_id]}, gid)},
            "bad_request",
            {},
        ),
        (
            "unknown op",
            alice,
            {"record": rehash({**good, "op": "promote"}, gid)},
            "bad_request",
            {},
        ),
        ("by is not the caller", bob, {"record": good}, "forbidden", {}),
        (
            "outsider",
            dave,
            {"record": rec(keys=dave.keys, op="leave", subjects=[dave.user_id], by=dave.user_id)},
            "not_member",
            {},
        ),
        ("n skips", alice, {"record": rec(n=head["n"] + 2)}, "stale_roster", stale),
        ("n repeats", alice, {"record": rec(n=head["n"])}, "stale_roster", stale),
        ("prev wrong", alice, {"record": rec(prev="e" * 64)}, "stale_roster", stale),
        ("wrong hash", alice, {"record": {**good, "hash": "f" * 64}}, "bad_request", {}),
        (
            "signature of another's device",
            alice,
            {"record": rehash({**good, "sig_kid": bob.keys.sig_kid}, gid)},
            "bad_signature",
            {},
        ),
        ("signature by bob's key", alice, {"record": rec(keys=bob.keys)}, "bad_signature", {}),
        (
            "signature over other fields",
            alice,
            {"record": rehash({**good, "subjects": [bob.user_id]}, gid)},
            "bad_signature",
            {},
        ),
        ("non-owner adds", bob, {"record": rec(keys=bob.keys, by=bob.user_id)}, "forbidden", {}),
        (
            "non-owner removes",
            bob,
            {"record": rec(keys=bob.keys, op="remove", subjects=[carol.user_id], by=bob.user_id)},
            "forbidden",
            {},
        ),
        ("add a member", alice, {"record": rec(subjects=[bob.user_id])}, "bad_request", {}),
        ("add nobody", alice, {"record": rec(subjects=[])}, "bad_request", {}),
        ("add with a title", alice, {"record": rec(title="x")}, "bad_request", {}),
        (
            "remove the owner",
            alice,
            {"record": rec(op="remove", subjects=[alice.user_id, bob.user_id])},
            "bad_request",
            {},
        ),
        (
            "remove a non-member",
            alice,
            {"record": rec(op="remove", subjects=[dave.user_id])},
            "bad_request",
            {},
        ),
        (
            "leave for another",
            bob,
            {"record": rec(keys=bob.keys, op="leave", subjects=[carol.user_id], by=bob.user_id)},
            "bad_request",
            {},
        ),
        (
            "title with subjects",
            bob,
            {
                "record": rec(
                    keys=bob.keys, op="title", subjects=[bob.user_id], by=bob.user_id, title="x"
                )
            },
            "bad_request",
            {},
        ),
        (
            "title a lone surrogate",
            bob,
            {
                "record": {
                    **rec(keys=bob.keys, op="title", subjects=[], by=bob.user_id, title="x"),
                    "title": "\ud800",
                }
            },
            "bad_request",
            {},
        ),
        (
            "title without title",
            bob,
            {"record": rec(keys=bob.keys, op="title", subjects=[], by=bob.user_id)},
            "bad_request",
            {},
        ),
        (
            "create again",
            alice,
            {"record": rec(op="create", subjects=[alice.user_id])},
            "bad_request",
            {},
        ),
        (
            "add an unknown user",
            alice,
            {"record": rec(subjects=[dave.user_id, 999])},
            "not_found",
            {"user_ids": [999]},
        ),
        (
            "gid on a group with a roster",
            alice,
            {
                "gid": gid,
                "record": rec(op="create", subjects=[alice.user_id], n=0, prev=roster.GENESIS),
            },
            "stale_roster",
            stale,
        ),
        ("gid not uuid4", alice, {"gid": "nope", "record": good}, "bad_request", {}),
    ]


def test_record_refusals_change_nothing(group):
    alice, bob, carol, dave, conv = group
    before = snapshot(conv["id"])
    for label, poster, body, code, extra in record_cases(alice, bob, carol, dave, conv):
        response = poster.api.post(f"/api/conversations/{conv['id']}/roster/", body)
        error = error_of(response, code)
        for key, value in extra.items():
            assert error[key] == value, label
        assert snapshot(conv["id"]) == before, label


def test_record_refusals_of_signers_and_users(group, device_keys):
    alice, bob, carol, dave, conv = group
    before = snapshot(conv["id"])
    record = roster_record(alice, conv, "add", [dave])
    User.objects.filter(pk=dave.user_id).update(is_active=False)
    assert error_of(post_record(alice, conv, record), "not_found")["user_ids"] == [dave.user_id]
    User.objects.filter(pk=dave.user_id).update(is_active=True)

    Identity.objects.filter(user_id=alice.user_id).update(replaced=timezone.now())
    error_of(post_record(alice, conv, record), "bad_signature")  # her identity is not current
    Identity.objects.filter(user_id=alice.user_id).update(replaced=None)

    Device.objects.filter(pk=alice.device_id).update(cert="", identity=None)
    error_of(post_record(alice, conv, record), "bad_signature")  # an uncertified device
    Device.objects.filter(pk=alice.device_id).update(revoked=timezone.now())
    error_of(post_record(alice, conv, record), "bad_signature")  # a revoked device
    assert snapshot(conv["id"]) == before

    alice.register_device(device_keys(), "new laptop")  # certified: it may sign
    assert post_record(alice, conv, roster_record(alice, conv, "add", [dave])).status_code == 201


def test_unknown_conversation_and_resent_record(group):
    alice, bob, carol, dave, conv = group
    record = roster_record(alice, conv, "add", [dave])
    missing = alice.api.post("/api/conversations/99999/roster/", {"record": record})
    error_of(missing, "not_found")
    assert post_record(alice, conv, record).status_code == 201
    again = post_record(alice, conv, record)  # a resend of the same record: applied once
    assert again.status_code == 200
    assert again.json_body["conversation"]["roster_head"]["n"] == 1
    assert RosterRecord.objects.filter(conversation_id=conv["id"]).count() == 2


def test_every_op_applies_and_the_served_chain_agrees(group):
    alice, bob, carol, dave, conv = group
    conv = change_roster(alice, conv, "add", [dave])
    conv = change_roster(bob, conv, "title", title="renamed")
    conv = change_roster(alice, conv, "remove", [carol])
    conv = change_roster(dave, conv, "leave", [dave])
    records, state = served_chain(carol, conv)  # a former member reads it all
    assert [r["op"] for r in records] == ["create", "add", "title", "remove", "leave"]
    assert [r["n"] for r in records] == [0, 1, 2, 3, 4]
    view = current_view(alice, conv["id"])
    assert {m["id"] for m in view["members"]} == state.members == {alice.user_id, bob.user_id}
    assert view["owner"]["id"] == state.owner == alice.user_id
    assert view["title"] == state.title == "renamed"
    assert view["roster_head"] == {"n": 4, "hash": records[-1]["hash"]}
    after = carol.api.get(f"/api/conversations/{conv['id']}/roster/?after=2").json_body
    assert [r["n"] for r in after["records"]] == [3, 4]
    assert carol.api.get(f"/api/conversations/{conv['id']}/roster/?after=4").json_body == {
        "records": []
    }
    for query in ("?after=-2", "?after=x", "?after=1.5"):
        error_of(alice.api.get(f"/api/conversations/{conv['id']}/roster/{query}"), "bad_request")


def test_roster_reads_need_a_membership(trio):
    alice, bob, carol, direct = trio
    group = create_group(alice, [bob])
    error_of(carol.api.get(f"/api/conversations/{group['id']}/roster/"), "not_member")
    error_of(carol.api.get("/api/conversations/99999/roster/"), "not_found")
    assert bob.api.get(f"/api/conversations/{direct['id']}/roster/").json_body == {"records": []}


def test_removed_and_leaving_members_keep_what_they_could_read(group):
    alice, bob, carol, dave, conv = group
    for text in ("one", "two"):
        msg_id, envelope = seal(alice, conv, text)
        body = {"client_msg_id": msg_id, "envelope": envelope}
        assert alice.api.post(f"/api/conversations/{conv['id']}/messages/", body).status_code == 201
    conv = change_roster(alice, conv, "remove", [carol])
    conv = change_roster(bob, conv, "leave", [bob])
    marks = dict(
        Membership.objects.filter(conversation_id=conv["id"]).values_list("user_id", "left_seq")
    )
    assert marks == {alice.user_id: None, bob.user_id: 2, carol.user_id: 2}
    msg_id, envelope = seal(alice, conv, "three")
    body = {"client_msg_id": msg_id, "envelope": envelope}
    assert alice.api.post(f"/api/conversations/{conv['id']}/messages/", body).status_code == 201
    seqs = [
        m["seq"]
        for m in carol.api.get(f"/api/conversations/{conv['id']}/messages/").json_body["messages"]
    ]
    assert seqs == [1, 2]


def test_owner_rule_uses_the_latest_joining_record(make_user):
    """alice leaves: the heir is the member whose latest joining record has the lowest n
    (carol, from record 0), not bob, who has a smaller id but rejoined at record 2."""
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    conv = create_group(alice, [bob, carol])
    conv = change_roster(alice, conv, "remove", [bob])
    conv = change_roster(alice, conv, "add", [bob])
    conv = change_roster(alice, conv, "leave", [alice])
    assert conv["owner"]["id"] == carol.user_id
    assert served_chain(bob, conv)[1].owner == carol.user_id
    conv = change_roster(carol, conv, "leave", [carol])
    assert current_view(bob, conv["id"])["owner"]["id"] == bob.user_id
    conv = change_roster(bob, conv, "leave", [bob])  # the last one: nobody is left
    assert current_view(bob, conv["id"])["members"] == [] and served_chain(bob, conv)[1].closed


def test_owner_handover_ties_go_to_the_smallest_id(make_user):
    alice, bob, carol, dave = (make_user(n) for n in ("alice", "bob", "carol", "dave"))
    conv = create_group(alice, [carol])
    conv = change_roster(alice, conv, "add", [dave, bob])  # one record: same joining n
    conv = change_roster(alice, conv, "remove", [carol])
    conv = change_roster(alice, conv, "leave", [alice])
    assert conv["owner"]["id"] == bob.user_id == served_chain(bob, conv)[1].owner


def test_two_devices_of_the_owner_adding_at_once(group, device_keys):
    """Both sign for the same head: the first applies, the second gets stale_roster with
    the new head, signs again and applies; both changes end in the chain. (The same over
    real processes, at the same moment: test_live_rosters.py.)"""
    alice, bob, carol, dave, conv = group
    laptop = alice.keys
    alice.register_device(device_keys(), "phone")
    phone = alice.keys
    head = conv["roster_head"]
    first = signed(laptop, conv, "remove", [carol.user_id], alice.user_id)
    second = signed(phone, conv, "add", [dave.user_id], alice.user_id)
    assert post_record(alice, conv, first).status_code == 201
    error = error_of(post_record(alice, conv, second), "stale_roster")
    assert error["head"] == {"n": head["n"] + 1, "hash": first["hash"]}
    again = signed(
        phone, {**conv, "roster_head": error["head"]}, "add", [dave.user_id], alice.user_id
    )
    assert post_record(alice, conv, again).status_code == 201
    records, state = served_chain(alice, conv)
    assert [r["hash"] for r in records[1:]] == [first["hash"], again["hash"]]
    assert state.members == {alice.user_id, bob.user_id, dave.user_id}


def test_a_post_costs_the_same_on_a_long_roster(group, make_user):
    """A record is checked against the conversation row and the memberships, never the
    stored chain: the same statements on a 1,000-record roster as on a 1-record one."""
    alice, bob, carol, dave, conv = group
    erin = make_user("erin")

    def post_costs(record):
        with CaptureQueriesContext(connection) as queries:
            assert post_record(alice, conv, record).status_code == 201
        return len(queries)

    short = post_costs(roster_record(alice, conv, "add", [dave]))
    head = current_view(alice, conv["id"])["roster_head"]
    # 1,000 more records in the chain (what they say does not matter to the next check)
    last, rows = head["hash"], []
    for n in range(head["n"] + 1, head["n"] + 1001):
        digest = f"{n:064x}"
        rows.append(
            RosterRecord(
                conversation_id=conv["id"],
                n=n,
                prev=last,
                op="title",
                subjects=[],
                by_id=bob.user_id,
                title="t",
                sig_kid=bob.keys.sig_kid,
                sig="AA==",
                hash=digest,
            )
        )
        last = digest
    RosterRecord.objects.bulk_create(rows)
    Conversation.objects.filter(pk=conv["id"]).update(roster_n=rows[-1].n, roster_hash=last)
    long = post_costs(roster_record(alice, conv, "add", [erin]))
    assert RosterRecord.objects.filter(conversation_id=conv["id"]).count() > 1000
    assert long == short


# --- v1 groups: record 0 from the owner ---------------------------------------------------


@pytest.fixture
def v1_group(make_user):
    """A group made before v2: alice (owner), bob and carol, no gid, no roster."""
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    make_user("dave")
    conversation = Conversation.objects.create(
        kind=Conversation.GROUP, title="old", owner_id=alice.user_id
    )
    for user in (alice, bob, carol):
        Membership.objects.create(conversation=conversation, user_id=user.user_id)
    return alice, bob, carol, current_view(alice, conversation.pk)


def bootstrap(user, conv, subjects, title="old", gid=None, keys=None):
    gid = gid or str(uuid.uuid4())
    record = roster.make_record(
        keys or user.keys,
        gid=gid,
        n=0,
        prev=roster.GENESIS,
        op="create",
        subjects=[u if isinstance(u, int) else u.user_id for u in subjects],
        by=user.user_id,
        title=title,
    )
    return post_record(user, conv, record, gid=gid), gid


def test_v1_group_bootstrap_refusals(v1_group, make_user):
    alice, bob, carol, conv = v1_group
    assert conv["gid"] is None and conv["roster_head"] is None
    before = snapshot(conv["id"])
    error_of(bootstrap(bob, conv, [alice, bob, carol])[0], "forbidden")  # not the owner
    error_of(bootstrap(alice, conv, [alice, bob])[0], "bad_request")  # not exactly its members
    dave_id = User.objects.get(username="dave").pk
    error_of(bootstrap(alice, conv, [alice, bob, carol, dave_id])[0], "bad_request")
    error_of(bootstrap(alice, conv, [alice, bob, carol], title="new")[0], "bad_request")
    error_of(bootstrap(alice, conv, [alice, bob, carol], keys=bob.keys)[0], "bad_signature")
    taken = create_group(alice, [bob])["gid"]
    error_of(bootstrap(alice, conv, [alice, bob, carol], gid=taken)[0], "bad_request")
    plain = post_record(
        alice,
        conv,
        roster.make_record(
            alice.keys,
            gid=str(uuid.uuid4()),
            n=0,
            prev=roster.GENESIS,
            op="create",
            subjects=[alice.user_id, bob.user_id, carol.user_id],
            by=alice.user_id,
            title="old",
        ),
    )
    assert error_of(plain, "stale_roster")["head"] is None  # no gid: there is no roster yet
    assert snapshot(conv["id"]) == before


def test_v1_group_bootstrap_then_heads(v1_group):
    alice, bob, carol, conv = v1_group
    msg_id, envelope = seal(bob, conv, "before the roster")  # head "" while there is none
    body = {"client_msg_id": msg_id, "envelope": envelope}
    assert bob.api.post(f"/api/conversations/{conv['id']}/messages/", body).status_code == 201
    response, gid = bootstrap(alice, conv, [alice, bob, carol])
    assert response.status_code == 201
    started = response.json_body["conversation"]
    assert started["gid"] == gid and started["roster_head"]["n"] == 0
    assert set(
        Membership.objects.filter(conversation_id=conv["id"]).values_list("joined_n", flat=True)
    ) == {0}
    error = error_of(bootstrap(alice, conv, [alice, bob, carol])[0], "stale_roster")
    assert error["head"] == started["roster_head"]  # a second record 0 is too late
    msg_id, envelope = seal(bob, conv, "stale: no head")
    body = {"client_msg_id": msg_id, "envelope": envelope}
    stale = bob.api.post(f"/api/conversations/{conv['id']}/messages/", body)
    assert error_of(stale, "stale_roster")["head"] == started["roster_head"]
    msg_id, envelope = seal(bob, started, "with the head")
    body = {"client_msg_id": msg_id, "envelope": envelope}
    assert bob.api.post(f"/api/conversations/{conv['id']}/messages/", body).status_code == 201
    assert Message.objects.count() == 2
    records, state = served_chain(carol, started)
    assert state.members == {alice.user_id, bob.user_id, carol.user_id}
    assert change_roster(carol, started, "leave", [carol])["roster_head"]["n"] == 1


# --- direct conversations -----------------------------------------------------------------


def test_direct_conversations_never_change(trio):
    alice, bob, carol, direct = trio
    before = snapshot(direct["id"])
    fake = {**direct, "gid": str(uuid.uuid4()), "roster_head": {"n": -1, "hash": roster.GENESIS}}
    attempts = [
        (
            alice,
            signed(
                alice.keys,
                fake,
                "create",
                [alice.user_id, bob.user_id, carol.user_id],
                alice.user_id,
                n=0,
            ),
            fake["gid"],
        ),
        (alice, signed(alice.keys, fake, "add", [carol.user_id], alice.user_id), None),
        (bob, signed(bob.keys, fake, "leave", [bob.user_id], bob.user_id), None),
        (alice, signed(alice.keys, fake, "title", [], alice.user_id, "hi"), None),
    ]
    for user, record, gid in attempts:
        error_of(post_record(user, direct, record, gid=gid), "bad_request")
    error_of(post_record(carol, direct, attempts[1][1]), "not_member")
    assert snapshot(direct["id"]) == before
    for user in (alice, bob):
        view = current_view(user, direct["id"])
        assert {m["id"] for m in view["members"]} == {alice.user_id, bob.user_id}
        assert view["gid"] is None and view["roster_head"] is None
