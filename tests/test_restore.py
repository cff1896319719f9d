"""A backup restored under connected clients (docs/deploy.md section 12): the server
loses what was sent after the dump; every client notices the rollback (§9), says so (a
`Rollback` event), and converges on the server's history, including what is sent after
the restore. The runbook's steps run as written: stop the worker, restore the dump,
`clear_presence --all`, start the worker."""

from __future__ import annotations

import subprocess
import urllib.parse

import psycopg
import pytest

from chatclient.events import IncomingMessage, Rollback
from scripts.devstack import find_pg_bin
from tests.test_client_library import Recorder, new_client

pytestmark = pytest.mark.processes


def view(events) -> dict[int, str]:
    """seq -> text as a client shows it: a rollback drops what it showed from there."""
    shown: dict[int, str] = {}
    for event in events:
        if isinstance(event, Rollback):
            shown = {seq: text for seq, text in shown.items() if seq < event.seq}
        elif isinstance(event, IncomingMessage):
            shown[event.seq] = event.text
    return shown


def restore(database_url: str, dump: str) -> None:
    """Drop the database, create it again and pg_restore the dump into it."""
    name = urllib.parse.urlsplit(database_url).path.lstrip("/")
    admin_url = database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as db:
        db.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        db.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [find_pg_bin("pg_restore"), "--no-owner", "-d", database_url, dump],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


async def test_a_restored_backup_is_noticed_and_every_client_converges(
    live_stack, device_keys, tmp_path
):
    if find_pg_bin("pg_dump") is None or find_pg_bin("pg_restore") is None:
        pytest.skip("pg_dump/pg_restore not installed")
    stack = live_stack(db="postgres")
    alice = await new_client(stack.base_url, "alice", device_keys())
    bob = await new_client(stack.base_url, "bob", device_keys())
    cid = (await alice.conversation("bob"))["id"]
    seen_a, seen_b = Recorder(alice), Recorder(bob)
    try:
        await seen_a.connected()
        await seen_b.connected()

        def got(text):
            return lambda e: isinstance(e, IncomingMessage) and e.text == text

        for text in ("one", "two"):
            await alice.send_text(cid, text)
        await seen_b.wait_for(got("two"))
        dump = str(tmp_path / "chat.dump")
        subprocess.run(
            [find_pg_bin("pg_dump"), "-Fc", "-f", dump, stack.database_url],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        for text in ("lost 1", "lost 2", "lost 3"):
            await alice.send_text(cid, text)
        await seen_b.wait_for(got("lost 3"))
        await seen_a.wait_for(got("lost 3"))

        stack.servers[0].stop()  # the runbook: stop, restore, clear presence, start
        restore(stack.database_url, dump)
        assert "cleared" in stack.manage("clear_presence", "--all")
        stack.servers[0].restart()

        for seen in (seen_a, seen_b):
            notice = await seen.wait_for(lambda e: isinstance(e, Rollback), timeout=60)
            assert (notice.conversation, notice.seq) == (cid, 3)
        await bob.send_text(cid, "after the restore")
        for seen in (seen_a, seen_b):
            await seen.wait_for(got("after the restore"))
        expected = {1: "one", 2: "two", 3: "after the restore"}
        assert view(seen_a.events) == view(seen_b.events) == expected
        assert alice.cursor(cid) == bob.cursor(cid) == 3
    finally:
        await seen_a.stop()
        await seen_b.stop()
