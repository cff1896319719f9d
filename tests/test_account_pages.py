"""The HTML pages of accounts: register, log in, log out; the chat page needs a login."""

import pytest
from django.test import Client, override_settings

from accounts.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def test_register_page_creates_user_and_logs_in():
    client = Client()
    assert client.get("/register/").status_code == 200
    response = client.post(
        "/register/", {"username": "alice", "password": PASSWORD, "password_again": PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200
    assert User.objects.filter(username="alice").exists()


def test_register_page_shows_errors_and_creates_nothing():
    response = Client().post(
        "/register/", {"username": "alice", "password": "123", "password_again": "123"}
    )
    assert response.status_code == 200 and b"field-error" in response.content
    mismatch = Client().post(
        "/register/", {"username": "bob", "password": PASSWORD, "password_again": "x" + PASSWORD}
    )
    assert b"differ" in mismatch.content
    assert not User.objects.exists()


@override_settings(REGISTRATION_OPEN=False)
def test_register_page_when_closed():
    response = Client().post(
        "/register/", {"username": "alice", "password": PASSWORD, "password_again": PASSWORD}
    )
    assert response.status_code == 403 and not User.objects.exists()


def test_login_logout_and_chat_needs_login():
    User.objects.create_user("alice", password=PASSWORD)
    client = Client()
    assert client.get("/").status_code == 302
    assert client.post("/login/", {"username": "alice", "password": "wrong"}).status_code == 200
    assert client.post("/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    assert client.get("/").status_code == 200
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_pages_send_a_strict_content_security_policy():
    policy = Client().get("/login/")["Content-Security-Policy"]
    assert (
        "script-src 'self'" in policy
        and "unsafe-inline" not in policy
        and "unsafe-eval" not in policy
    )
