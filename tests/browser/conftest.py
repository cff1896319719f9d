"""Playwright against a live daphne: Debian's Chromium, one fresh stack per test.

Run with `pytest -m browser` in its own process (pytest-playwright's sync fixtures break
pytest-asyncio tests that run after them in the same process).
"""

import secrets

import pytest
from playwright.sync_api import expect

# A loaded machine can take seconds for a page to boot or RSA keys to be made.
expect.set_options(timeout=15_000)

CHROMIUM = "/usr/bin/chromium"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "own_stack: the test gets a daphne of its own (it stops or restarts it)"
    )


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-gpu"],
    }


@pytest.fixture(scope="session")
def shared_stack():
    """One daphne worker on a fresh SQLite database (in-memory channel layer) shared by
    the tests, which use distinct usernames; starting a stack costs several seconds.
    REST sends are not rate-limited here: tests seed hundreds of history messages through
    REST in one go (`tests/test_rate_limits.py` covers the limit)."""
    from scripts.devstack import DjangoStack

    stack = DjangoStack(1, env={"REST_SEND_RATE": "100000/m"}).start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def stack(request):
    """The shared stack, or a fresh one of its own for tests marked `own_stack`
    (those that stop or restart the server)."""
    if request.node.get_closest_marker("own_stack"):
        return request.getfixturevalue("live_stack")(1, db="sqlite", redis=False)
    return request.getfixturevalue("shared_stack")


@pytest.fixture
def people(browser, stack):
    """Factory of ChatUser, each in its own browser context; all closed at the end.

    people("bob") names a user "bob<random>" unique to this test; asking for "bob"
    again gives another browser of the same user.
    """
    from scripts.people.browser import ChatUser

    made: list[ChatUser] = []
    names: dict[str, str] = {}

    def make(name: str, **kwargs) -> "ChatUser":
        username = names.setdefault(name, f"{name}{secrets.token_hex(3)}")
        user = ChatUser(browser, stack.base_url, username, **kwargs)
        made.append(user)
        return user

    yield make
    for user in made:
        user.close()
