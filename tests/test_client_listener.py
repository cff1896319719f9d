"""The listener's ordering rules without a server: live frames out of seq order, gaps
filled by sync, duplicates dropped, and the reconnect backoff."""

from __future__ import annotations

from chatclient.events import Rollback
from chatclient.listener import MAX_GAP_SYNCS, Backoff, _Connection


class FakeClient:
    """The part of ChatClient the connection uses: cursors, opening, notices."""

    def __init__(self, cursors):
        self.cursors = dict(cursors)
        self.opened = []
        self.notices = []
        self.saved = []
        self.own = set()

    def cursor(self, conversation_id):
        return self.cursors.get(conversation_id)

    def advance(self, conversation_id, seq, *, save=True):
        self.cursors[conversation_id] = seq
        self.saved.append((seq, save))

    def pop_notices(self):
        notices, self.notices = self.notices, []
        return notices

    async def open(self, message):
        self.opened.append(message["seq"])
        return Own(message["seq"]) if message["seq"] in self.own else message["seq"]


class Own(int):
    """An opened message of my own (what the connection looks at: ``own``)."""

    own = True


class FakeSocket:
    def __init__(self):
        self.sent = []

    async def send_frame(self, frame):
        self.sent.append(frame)


def message(conversation, seq):
    return {"type": "message", "message": {"conversation": conversation, "seq": seq, "id": seq}}


async def feed(connection, frame):
    return [event async for event in connection.handle(frame)]


def connection_for(cursors):
    client = FakeClient(cursors)
    connection = _Connection(client, new_at_last_seq=False)
    connection.socket = FakeSocket()
    return client, connection


async def test_out_of_order_frames_are_held_until_the_gap_fills():
    client, connection = connection_for({7: 0})
    assert await feed(connection, message(7, 1)) == [1]
    assert await feed(connection, message(7, 3)) == []
    assert connection.socket.sent == [{"type": "sync", "cursors": {"7": 1}}]
    assert await feed(connection, message(7, 2)) == [2, 3]
    assert await feed(connection, message(7, 2)) == []  # a duplicate (sync overlap)
    assert await feed(connection, message(7, 3)) == []
    assert client.cursors == {7: 3} and client.opened == [1, 2, 3]


async def test_a_gap_the_server_never_fills_is_skipped_after_some_syncs():
    client, connection = connection_for({7: 0})
    await feed(connection, message(7, 2))
    events = []
    for _ in range(MAX_GAP_SYNCS + 1):
        events += await feed(connection, {"type": "synced", "cursors": {"7": 0}, "has_more": {}})
    assert events == [2] and client.cursors == {7: 2}
    assert len(connection.socket.sent) == MAX_GAP_SYNCS  # the first sync plus the retries


async def test_a_rollback_notice_drops_held_frames_and_syncs_again():
    client, connection = connection_for({7: 5})
    await feed(connection, message(7, 8))  # held past a gap
    client.cursors[7] = 2  # the client moved the cursor back (forget and resync)
    client.notices.append(Rollback(7, 3, "fork"))
    events = [event async for event in connection.notices()]
    assert events == [Rollback(7, 3, "fork")]
    assert connection.held == {} and connection.socket.sent[-1] == {
        "type": "sync",
        "cursors": {"7": 2},
    }


async def test_unknown_conversation_is_read_from_the_start_and_has_more_resyncs():
    client, connection = connection_for({})
    assert await feed(connection, message(9, 1)) == [1]
    await feed(connection, {"type": "synced", "cursors": {"9": 1}, "has_more": {"9": True}})
    assert connection.socket.sent[-1] == {"type": "sync", "cursors": {"9": 1}}


async def test_my_own_messages_move_the_cursor_without_a_state_file_write():
    client, connection = connection_for({7: 0})
    client.own = {2}
    assert await feed(connection, message(7, 1)) == [1]
    assert await feed(connection, message(7, 2)) == [2]  # my reply, back from the server
    assert await feed(connection, message(7, 3)) == [3]
    assert client.saved == [(1, True), (2, False), (3, True)]
    assert client.cursors[7] == 3


def test_backoff_grows_to_a_cap_and_resets():
    backoff = Backoff(first=0.5, maximum=4.0)
    delays = [backoff.next() for _ in range(8)]
    assert 0.25 <= delays[0] <= 0.5 and all(d <= 4.0 for d in delays)
    assert delays[-1] >= 2.0
    backoff.reset()
    assert backoff.next() <= 0.5
