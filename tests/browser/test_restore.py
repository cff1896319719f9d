"""A backup restored under connected browsers (docs/deploy.md section 12, PROTOCOL §9):
the runbook's steps run as written (stop the worker, restore the dump, `clear_presence
--all`, start the worker); both browsers notice that the server's history went back,
show the plain rollback notice, converge on what the server holds, and lose nothing sent
after the restore."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import expect

from scripts.devstack import REPO_ROOT, find_pg_bin
from scripts.people.browser import LIVE_TIMEOUT
from tests.test_restore import restore

# Two browsers with their keys, a dump, a restore and a worker start: ~90 s at load 10.
pytestmark = [pytest.mark.browser, pytest.mark.own_stack, pytest.mark.timeout(300)]

SHOTS = REPO_ROOT / "var" / "screenshots" / "ops"
OUTAGE_SHOTS = REPO_ROOT / "var" / "screenshots" / "outage"
NOTICE = ".notice-box[data-kind=rollback]"


@pytest.fixture
def stack(live_stack):
    """A daphne of its own on PostgreSQL (pg_dump/pg_restore), in-memory channel layer."""
    if find_pg_bin("pg_dump") is None or find_pg_bin("pg_restore") is None:
        pytest.skip("pg_dump/pg_restore not installed")
    return live_stack(1, db="postgres", redis=False)


def shown_texts(user) -> list[str]:
    return [text for _state, text in user.shown_messages()]


def test_a_restore_under_open_browsers_is_noticed_and_nothing_after_it_is_lost(
    people, stack, tmp_path
):
    alice = people("alice").start()
    bob = people("bob").start()
    alice.open_direct(bob.username)
    for text in ("one", "two"):
        alice.send(text)
        alice.expect_sent(text)
    bob.open_conversation(alice.username)
    bob.expect_message("two")

    dump = str(tmp_path / "chat.dump")
    subprocess.run(
        [find_pg_bin("pg_dump"), "-Fc", "-f", dump, stack.database_url],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    for text in ("lost 1", "lost 2", "lost 3"):
        alice.send(text)
        alice.expect_sent(text)
    bob.expect_message("lost 3")
    for user in (alice, bob):
        expect(user.page.locator(NOTICE)).to_have_count(0)

    # The runbook: stop the worker, restore, clear presence, start.
    server = stack.servers[0]
    server.stop()
    # Alice types while the worker is down: her message waits, visibly, until it can go.
    expect(alice.page.locator("#connection-state")).not_to_contain_text("Connected", timeout=40_000)
    alice.send("while down")
    waiting = alice.page.locator(".msg.own.pending", has_text="while down")
    expect(waiting).to_have_attribute("data-delivery", "pending")
    restore(stack.database_url, dump)
    assert "cleared" in stack.manage("clear_presence", "--all")
    expect(waiting).to_have_attribute("data-delivery", "pending")
    screenshots(alice, OUTAGE_SHOTS, "restore-pending-while-down", notice=False)
    server.restart()

    for user in (alice, bob):
        expect(user.page.locator("#connection-state")).to_contain_text("Connected", timeout=40_000)
        notice = user.page.locator(NOTICE)
        expect(notice).to_be_visible(timeout=LIVE_TIMEOUT)
        expect(notice).to_contain_text("The server’s history of this conversation changed.")
        expect(notice).to_contain_text("what it shows now is what the server holds")
        expect(notice.get_by_role("button", name="Dismiss")).to_be_visible()
    # sent once after the reconnect, after the restored history, shown plainly to both
    alice.expect_sent("while down")
    bob.expect_message("while down")
    for user in (alice, bob):
        expect(user.page.locator(".msg", has_text="while down")).to_have_attribute(
            "data-state", "ok"
        )
        # the rollback notice is the only one: nothing flagged, no danger badge in the list
        expect(user.page.locator(".notice-box")).to_have_count(1)
        expect(user.page.locator(".conv-item .badge-danger")).to_have_count(0)
        expect(
            user.page.locator(".msg[data-state=replayed], .msg[data-state=out_of_order]")
        ).to_have_count(0)
    bob.send("after the restore")
    alice.expect_message("after the restore")
    alice.send("and again")
    bob.expect_message("and again")
    # each list's preview is the newest message, her own included (once filed from its ack)
    expect(alice.page.locator(".conv-item .conv-sub")).to_have_text("You: and again")
    expect(bob.page.locator(".conv-item .conv-sub")).to_have_text("and again")
    expected = ["one", "two", "while down", "after the restore", "and again"]
    for user in (alice, bob):
        expect(user.page.locator(".messages .msg .msg-text", has_text="lost")).to_have_count(0)
        expect(user.page.locator(".messages .msg .msg-text")).to_have_count(len(expected))
        assert shown_texts(user) == expected, (user.username, shown_texts(user))
    with psycopg.connect(stack.database_url) as db:
        stored = db.execute("SELECT seq FROM messaging_message ORDER BY seq").fetchall()
    assert [seq for (seq,) in stored] == [1, 2, 3, 4, 5], stored

    screenshots(bob)
    screenshots(alice, OUTAGE_SHOTS, "restore-sent-while-down")
    bob.page.locator(NOTICE).get_by_role("button", name="Dismiss").click()
    expect(bob.page.locator(NOTICE)).to_have_count(0)
    for user in (alice, bob):  # refused reconnects while the worker was down are expected
        problems = [x for x in user.problems if "ERR_CONNECTION_REFUSED" not in x]
        assert problems == [], f"{user.username}: {problems}"


def screenshots(
    user, shots: Path = SHOTS, name: str = "restore-rollback-notice", *, notice: bool = True
) -> None:
    """The page (with the notice) at 1280 and 390 px wide (var/screenshots/ops/ unless told)."""
    shots.mkdir(parents=True, exist_ok=True)
    page = user.page
    for width, height in ((1280, 800), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        if notice:
            expect(page.locator(NOTICE)).to_be_visible()
        page.screenshot(path=str(shots / f"{name}-{width}.png"))
    page.set_viewport_size({"width": 1200, "height": 800})
