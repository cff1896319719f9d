"""Groups with signed rosters (PROTOCOL v2 §8) in the browser: create, add, remove, leave
and retitle from the group dialogs; every member's timeline shows the same verified
events, worded for her; a change to the open group leaves the composer's draft alone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from scripts.people.browser import ChatUser

pytestmark = pytest.mark.browser


def create_group(user: ChatUser, title: str, *members: ChatUser) -> None:
    page = user.page
    page.get_by_role("button", name="New group").click()
    page.fill("#group-title", title)
    for member in members:
        page.fill("#group-search", member.username)
        page.locator(".pick", has_text=member.username).click()
        expect(page.locator(".chip", has_text=member.username)).to_be_visible()
    page.get_by_role("button", name="Create group").click()
    expect(page.locator("#pane-title")).to_have_text(title)


def open_members(user: ChatUser):
    user.page.get_by_role("button", name="Members").click()
    return user.page.locator("dialog[open]")


def events(user: ChatUser) -> list[tuple[str, str]]:
    """(n, text) of every roster event shown in the open conversation."""
    return user.page.locator(".messages .roster-event").evaluate_all(
        "els => els.map((el) => [el.dataset.n, el.querySelector('.event-text').textContent])"
    )


def expect_events(user: ChatUser, texts: list[str]) -> None:
    """The open conversation shows exactly these verified events, in this order."""
    expect(user.page.locator(".messages .roster-event .event-text")).to_have_text(texts)
    assert [n for n, _ in events(user)] == [str(i) for i in range(len(texts))]


def test_group_of_three_with_verified_events(people):
    alice = people("alice").start()
    bob = people("bob").start()
    carol = people("carol").start()
    dave = people("dave").start()
    a, b, c, d = (u.username for u in (alice, bob, carol, dave))
    page = alice.page

    create_group(alice, "Book club", bob, carol)
    alice.send("Welcome to the group")
    for user in (bob, carol):
        user.open_conversation("Book club")
        user.expect_message("Welcome to the group")
    created = {
        alice: f"You created the group “Book club” with {b} and {c}",
        bob: f"{a} created the group “Book club” with you and {c}",
        carol: f"{a} created the group “Book club” with {b} and you",
    }
    for user, text in created.items():
        expect_events(user, [text])

    # the owner adds dave from the members dialog
    dialog = open_members(alice)
    dialog.locator("#member-search").fill(d)
    dialog.locator(".pick", has_text=d).click()
    expect(dialog.get_by_role("button", name=f"Remove {d}")).to_be_visible()
    page.keyboard.press("Escape")
    dave.open_conversation("Book club")
    for user in (alice, bob, carol):
        expect(user.page.locator(".roster-event .event-text").last).to_contain_text(f"added {d}")
    expect_events(alice, [created[alice], f"You added {d}"])
    expect_events(bob, [created[bob], f"{a} added {d}"])
    expect_events(dave, [f"{a} created the group “Book club” with {b} and {c}", f"{a} added you"])

    # alice starts a message, then removes carol; the draft stays and goes out after
    box = page.locator("#composer-input")
    box.fill("After carol left")
    dialog = open_members(alice)
    dialog.get_by_role("button", name=f"Remove {c}").click()
    page.get_by_role("dialog", name="Remove member").get_by_role("button", name="Remove").click()
    expect(dialog.get_by_role("button", name=f"Remove {c}")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(carol.page.locator("#composer-input")).to_be_disabled()
    expect(alice.page.locator(".roster-event .event-text").last).to_have_text(f"You removed {c}")
    expect(box).to_have_value("After carol left")
    box.press("Enter")
    for user in (bob, dave):
        user.expect_message("After carol left")
    expect(carol.page.locator(".roster-event .event-text").last).to_have_text(f"{a} removed you")
    expect(carol.page.locator(".conv-item", has_text="Book club")).to_contain_text(
        f"{a} removed you"
    )
    expect(carol.messages().filter(has_text="After carol left")).to_have_count(0)

    # bob leaves on his own
    dialog = open_members(bob)
    dialog.get_by_role("button", name="Leave group").click()
    bob.page.get_by_role("dialog", name="Leave group").get_by_role("button", name="Leave").click()
    expect(bob.page.locator("#composer-input")).to_be_disabled()
    expect(bob.page.locator(".roster-event .event-text").last).to_have_text("You left")
    expect(alice.page.locator(".roster-event .event-text").last).to_have_text(f"{b} left")

    # dave (a member, not the owner) renames the group
    dialog = open_members(dave)
    dialog.locator("#group-rename").fill("Reading group")
    dialog.get_by_role("button", name="Rename").click()
    expect(dave.page.locator(".roster-event .event-text").last).to_have_text(
        "You changed the title to “Reading group”"
    )
    dave.page.keyboard.press("Escape")
    expect(alice.page.locator("#pane-title")).to_have_text("Reading group")
    expect(alice.page.locator(".roster-event .event-text").last).to_have_text(
        f"{d} changed the title to “Reading group”"
    )

    # the same verified events, in the same order, for each (a former member up to her leaving)
    full = [
        created[alice],
        f"You added {d}",
        f"You removed {c}",
        f"{b} left",
        f"{d} changed the title to “Reading group”",
    ]
    expect_events(alice, full)
    expect_events(
        dave,
        [
            f"{a} created the group “Book club” with {b} and {c}",
            f"{a} added you",
            f"{a} removed {c}",
            f"{b} left",
            "You changed the title to “Reading group”",
        ],
    )
    expect_events(bob, [created[bob], f"{a} added {d}", f"{a} removed {c}", "You left"])
    expect_events(carol, [created[carol], f"{a} added {d}", f"{a} removed you"])
    alice.send("Only dave now")
    dave.expect_message("Only dave now")
    for user in (bob, carol):
        expect(user.messages().filter(has_text="Only dave now")).to_have_count(0)
    for user in (alice, bob, carol, dave):
        expect(user.page.locator(".notice-box[data-kind=tampered]")).to_have_count(0)
        expect(user.page.locator(".msg[data-state=failed]")).to_have_count(0)
        assert user.problems == [], f"{user.username}: {user.problems}"


def test_only_the_owner_adds_and_the_members_see_a_late_joiner_join(people):
    alice = people("alice").start()
    bob = people("bob").start()
    carol = people("carol").start()
    create_group(alice, "Owners", bob)
    bob.open_conversation("Owners")
    dialog = open_members(bob)
    # bob is not the owner: no add or remove controls for him
    expect(dialog.locator("#member-search")).to_be_hidden()
    expect(dialog.get_by_role("button", name=f"Remove {alice.username}")).to_have_count(0)
    bob.page.keyboard.press("Escape")
    # the owner leaves: bob (earliest joined) becomes owner and may add carol
    dialog = open_members(alice)
    dialog.get_by_role("button", name="Leave group").click()
    alice.page.get_by_role("dialog", name="Leave group").get_by_role("button", name="Leave").click()
    expect(bob.page.locator(".roster-event .event-text").last).to_have_text(
        f"{alice.username} left"
    )
    dialog = open_members(bob)
    expect(dialog.locator(".member-name", has_text=bob.username)).to_contain_text("owner")
    dialog.locator("#member-search").fill(carol.username)
    dialog.locator(".pick", has_text=carol.username).click()
    expect(dialog.get_by_role("button", name=f"Remove {carol.username}")).to_be_visible()
    bob.page.keyboard.press("Escape")
    bob.send("Hi carol")
    carol.open_conversation("Owners")
    carol.expect_message("Hi carol")
    expect(carol.page.locator(".roster-event .event-text").last).to_have_text(
        f"{bob.username} added you"
    )
