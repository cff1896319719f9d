"""The browser fixtures of tests/browser (Debian's Chromium, live daphne); the tests here
mark themselves `own_stack` (they read the stack's database and logs)."""

from tests.browser.conftest import (  # noqa: F401
    browser_type_launch_args,
    people,
    pytest_configure,
    shared_stack,
    stack,
)
