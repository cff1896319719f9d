"""Session and user endpoints (PROTOCOL §4): happy paths and every error code."""

import pytest
from django.test import override_settings

from accounts.models import User
from tests.inprocess import ApiClient, register

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def error_code(response):
    return response.json_body["error"]["code"]


def test_session_starts_anonymous_and_sets_csrf_cookie():
    api = ApiClient()
    response = api.get("/api/session/")
    assert response.status_code == 200
    assert response.json_body == {"user": None}
    assert api.csrf


def test_register_logs_in_and_session_shows_user(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
    alice = register("alice")
    session = alice.api.get("/api/session/").json_body
    assert session == {"user": {"id": alice.user_id, "username": "alice", "is_staff": False}}
    assert User.objects.get(username="alice").password.startswith("argon2")


def test_register_refuses_taken_name_in_any_case_and_weak_password():
    register("alice")
    api = ApiClient()
    taken = api.post("/api/users/", {"username": "ALICE", "password": PASSWORD})
    assert taken.status_code == 400 and error_code(taken) == "bad_request"
    assert "username" in taken.json_body["error"]["fields"]
    weak = api.post("/api/users/", {"username": "bob", "password": "123"})
    assert weak.status_code == 400 and "password" in weak.json_body["error"]["fields"]
    bad_name = api.post("/api/users/", {"username": "bob smith!", "password": PASSWORD})
    assert bad_name.status_code == 400
    assert User.objects.count() == 1


@override_settings(REGISTRATION_OPEN=False)
def test_register_when_closed():
    response = ApiClient().post("/api/users/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403 and error_code(response) == "registration_closed"
    assert not User.objects.exists()


def test_login_logout():
    register("alice")
    api = ApiClient()
    wrong = api.post("/api/session/", {"username": "alice", "password": "nope"})
    assert wrong.status_code == 400 and error_code(wrong) == "invalid_credentials"
    right = api.post("/api/session/", {"username": "alice", "password": PASSWORD})
    assert right.status_code == 200 and right.json_body["user"]["username"] == "alice"
    assert api.delete("/api/session/").status_code == 204
    assert api.get("/api/session/").json_body == {"user": None}


def test_deactivated_user_cannot_log_in():
    register("alice")
    User.objects.filter(username="alice").update(is_active=False)
    response = ApiClient().post("/api/session/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 400 and error_code(response) == "invalid_credentials"


def test_unsafe_method_without_csrf_token_is_forbidden():
    api = ApiClient()
    response = api.http.post(
        "/api/session/", data='{"username": "a", "password": "b"}', content_type="application/json"
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


def test_register_refuses_look_alike_and_mixed_script_names():
    register("alice")
    register("bill")
    api = ApiClient()
    for name in [
        "\u0430lice",  # Cyrillic а: the review's attack
        "\u0430\u04cf\u0456\u0441\u0435",  # every letter Cyrillic: one script, same look
        "ALlCE",
        "bi11",
        "\uff41\uff4c\uff49\uff43\uff45",  # fullwidth: NFKC makes it alice
    ]:
        refused = api.post("/api/users/", {"username": name, "password": PASSWORD})
        assert refused.status_code == 400 and error_code(refused) == "bad_request", name
        assert "username" in refused.json_body["error"]["fields"], name
    mixed = api.post("/api/users/", {"username": "bob\u0430", "password": PASSWORD})
    assert "one script" in mixed.json_body["error"]["fields"]["username"][0]
    assert User.objects.count() == 2
    # One script, even with digits and _, is fine; so is a name in another script.
    for name in ["carol_2", "\u0410\u043b\u0438\u0441\u0430", "jos\u00e9"]:
        ok = ApiClient().post("/api/users/", {"username": name, "password": PASSWORD})
        assert ok.status_code == 201, (name, ok.json_body)


def test_username_is_stored_and_matched_in_nfkc_form():
    api = ApiClient()
    made = api.post("/api/users/", {"username": "\uff44\uff41\uff56\uff45", "password": PASSWORD})
    assert made.status_code == 201 and made.json_body["user"]["username"] == "dave"
    again = login_from("127.0.0.1", "\uff44\uff41\uff56\uff45", PASSWORD)
    assert again.status_code == 200 and again.json_body["user"]["username"] == "dave"


def login_from(address: str, username: str, password: str, **headers):
    """POST /api/session/ from a fresh browser at this client address."""
    api = ApiClient()
    api.http.defaults["REMOTE_ADDR"] = address
    return api.post("/api/session/", {"username": username, "password": password}, **headers)


def test_failed_logins_lock_the_pair_of_username_and_address():
    register("alice")
    codes = [login_from("203.0.113.7", "alice", "wrong").status_code for _ in range(5)]
    assert codes == [400, 400, 400, 400, 429]  # the fifth failure locks
    locked = login_from("203.0.113.7", "alice", PASSWORD)
    assert locked.status_code == 429 and error_code(locked) == "rate_limited"
    assert "try again" in locked.json_body["error"]["detail"].lower()
    # The victim, from her own address, still gets in (the attack locked her out before).
    victim = login_from("198.51.100.20", "alice", PASSWORD)
    assert victim.status_code == 200 and victim.json_body["user"]["username"] == "alice"
    # A header the client chooses does not move the attacker to a fresh pair.
    spoofed = login_from("203.0.113.7", "alice", PASSWORD, headers={"X-Forwarded-For": "192.0.2.1"})
    assert spoofed.status_code == 429


def test_failures_for_other_names_do_not_lock_a_shared_address():
    register("alice")
    for name in ["x1", "x2", "x3", "x4", "x5", "x6"]:
        login_from("203.0.113.7", name, "wrong")
    # Everyone behind that NAT can still log in.
    assert login_from("203.0.113.7", "alice", PASSWORD).status_code == 200


def test_user_search_needs_login_and_matches_prefix():
    alice = register("alice")
    register("alina")
    register("bob")
    assert ApiClient().get("/api/users/?q=ali").status_code == 401
    found = alice.api.get("/api/users/?q=ali").json_body["users"]
    assert [u["username"] for u in found] == ["alice", "alina"]
    User.objects.filter(username="alina").update(is_active=False)
    assert [u["username"] for u in alice.api.get("/api/users/?q=ali").json_body["users"]] == [
        "alice"
    ]


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[]",
        b'{"username": 5, "password": "x"}',
        b'{"username": "a"}',
        b'{"username": "a", "username": "b", "password": "x"}',
    ],
)
def test_malformed_bodies_are_bad_request(raw):
    response = ApiClient().post("/api/session/", raw=raw)
    assert response.status_code == 400 and error_code(response) == "bad_request"


def test_oversize_body_is_too_large():
    response = ApiClient().post("/api/users/", raw=b'{"username": "' + b"a" * 300_000 + b'"}')
    assert response.status_code == 413 and error_code(response) == "too_large"
    assert not User.objects.exists()
