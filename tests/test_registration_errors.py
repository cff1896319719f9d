"""The registration page shows every problem of a submission at once (a taken name, a
weak password, two passwords that differ) and keeps what was typed, passwords too, so
one submission fixes them all (issue 14, bug 11)."""

import re

import pytest
from django.test import Client

from accounts.models import User
from tests.inprocess import register

pytestmark = pytest.mark.django_db


def errors(html: str) -> list[str]:
    return re.findall(r'class="(?:field|form)-error"[^>]*>([^<]*)<', html)


def test_every_error_at_once_and_the_passwords_kept():
    register("alice")
    response = Client().post(
        "/register/", {"username": "ALICE", "password": "12345", "password_again": "123456"}
    )
    html = response.content.decode()
    shown = " | ".join(errors(html))
    assert "taken" in shown
    assert "too short" in shown or "too common" in shown
    assert "differ" in shown
    assert 'name="password" value="12345"' in html
    assert 'name="password_again" value="123456"' in html
    assert 'name="username" value="ALICE"' in html
    assert User.objects.count() == 1


def test_a_good_submission_still_registers():
    response = Client().post(
        "/register/",
        {
            "username": "bob",
            "password": "Login-pass-Quartz-91!",
            "password_again": "Login-pass-Quartz-91!",
        },
    )
    assert response.status_code == 302
    assert User.objects.filter(username="bob").exists()
