"""Finding people by name (`GET /api/users/?q=`, accounts.discovery): a prefix needs 3
characters, results are capped, and USER_DISCOVERY="exact" finds whole names only."""

import pytest

from accounts.models import User
from tests.inprocess import register

pytestmark = pytest.mark.django_db


def names(client, q):
    response = client.api.get(f"/api/users/?q={q}")
    assert response.status_code == 200
    return [u["username"] for u in response.json_body["users"]]


def test_a_prefix_needs_three_characters_and_results_are_capped(settings):
    alice = register("alice")
    User.objects.bulk_create(User(username=f"alfa{i:02}") for i in range(30))
    assert names(alice, "a") == []
    assert names(alice, "al") == []
    assert names(alice, "%20%20al") == []  # spaces do not count
    assert names(alice, "alf") == [f"alfa{i:02}" for i in range(20)]
    settings.USER_SEARCH_LIMIT = 5
    assert names(alice, "ALF") == [f"alfa{i:02}" for i in range(5)]


def test_exact_discovery_finds_whole_names_only(settings):
    settings.USER_DISCOVERY = "exact"
    alice = register("alice")
    register("alina")
    assert names(alice, "ali") == []
    assert names(alice, "alin") == []
    assert names(alice, "ALINA") == ["alina"]
    assert names(alice, "") == []
