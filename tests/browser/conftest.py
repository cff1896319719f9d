"""Playwright against a live daphne: Debian's Chromium, one fresh stack per test.

Run with `pytest -m browser` in its own process (pytest-playwright's sync fixtures break
pytest-asyncio tests that run after them in the same process).
"""

import pytest

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-gpu"],
    }


@pytest.fixture
def stack(live_stack):
    """One daphne worker on a fresh SQLite database, in-memory channel layer."""
    return live_stack(1, db="sqlite", redis=False)


@pytest.fixture
def people(browser, stack):
    """Factory of ChatUser, each in its own browser context; all closed at the end."""
    from tests.browser.chat_helpers import ChatUser

    made: list[ChatUser] = []

    def make(username: str, **kwargs) -> "ChatUser":
        user = ChatUser(browser, stack.base_url, username, **kwargs)
        made.append(user)
        return user

    yield make
    for user in made:
        user.close()
