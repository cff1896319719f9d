"""Order and replay (PROTOCOL.md §9): what a client remembers of the messages it showed,
and the verdict on each message that opened and verified.

One ``Ledger`` per conversation, kept persistently by the caller (``to_json`` /
``from_json``). The browser twin is ``static/chat/ordering.js``, name for name.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace

OK = "ok"
REPLAYED = "replayed"
OUT_OF_ORDER = "out_of_order"
ROLLBACK = "rollback"


@dataclass(frozen=True)
class Judged:
    """One judged message: what §9 looks at, and the verdict it got."""

    id: int
    seq: int
    sender_id: int
    client_msg_id: str
    sig_kid: str
    v: int
    n: int | None
    verdict: str

    def as_list(self) -> list:
        return [
            self.id,
            self.seq,
            self.sender_id,
            self.client_msg_id,
            self.sig_kid,
            self.v,
            self.n,
            self.verdict,
        ]


@dataclass
class Ledger:
    """The §9 state of one conversation.

    ``entries`` (message id -> ``Judged``) is what is persisted; the indexes are rebuilt
    from it: every judged message by seq (a seq is held by one message, whatever its
    verdict), the ok ones by (sender, client_msg_id), each signing device's ok (seq, n)
    in seq order, and the ok v1 messages in seq order.
    """

    entries: dict[int, Judged] = field(default_factory=dict)
    _by_seq: dict[int, int] = field(default_factory=dict, repr=False)
    _by_client_id: dict[tuple[int, str], int] = field(default_factory=dict, repr=False)
    _counters: dict[str, list[tuple[int, int]]] = field(default_factory=dict, repr=False)
    _lowest_v2_seq: int | None = field(default=None, repr=False)
    _v1_ok: list[tuple[int, int]] = field(default_factory=list, repr=False)
    _max_seq: int | None = field(default=None, repr=False)
    _changed: list[int] = field(default_factory=list, repr=False)

    def judge(
        self,
        *,
        id: int,  # noqa: A002 (the message's field name)
        seq: int,
        sender_id: int,
        client_msg_id: str,
        sig_kid: str,
        v: int,
        n: int | None,
    ) -> str:
        """The verdict on a message that opened and verified: ``ok``, ``replayed``,
        ``out_of_order`` or ``rollback``.

        A message judged before gets its recorded verdict again (the caller shows it once:
        a second delivery of an id is a duplicate), unless the server now serves that id
        at another seq or under another sender or id: ``rollback``. Another id at a seq
        already judged is ``rollback`` too. Verdicts other than ``rollback`` are recorded;
        only ``ok`` ones count for later judgements.

        A v2 message judged ``ok`` below the seq of v1 messages judged ``ok`` before makes
        those v1 messages ``replayed`` (§2: whichever loads first); their ids are then
        given by ``take_changed``.
        """
        prior = self.entries.get(id)
        if prior is not None:
            same = (prior.seq, prior.sender_id, prior.client_msg_id) == (
                seq,
                sender_id,
                client_msg_id,
            )
            return prior.verdict if same else ROLLBACK
        if v != 1 and n is None:
            raise ValueError("a v2 message has a counter n")
        if self._by_seq.get(seq, id) != id:
            return ROLLBACK
        first = self._by_client_id.get((sender_id, client_msg_id))
        if (first is not None and first != id) or (
            v == 1 and self._lowest_v2_seq is not None and seq > self._lowest_v2_seq
        ):
            verdict = REPLAYED
        elif v != 1 and self._out_of_order(sig_kid, seq, n):
            verdict = OUT_OF_ORDER
        else:
            verdict = OK
        self._record(Judged(id, seq, sender_id, client_msg_id, sig_kid, v, n, verdict))
        if verdict == OK and v != 1:
            self._flag_v1_above(seq)
        return verdict

    def verdict_of(self, message_id: int) -> str | None:
        """The recorded verdict of a message id, or None if it was never judged."""
        entry = self.entries.get(message_id)
        return entry.verdict if entry else None

    def take_changed(self) -> list[int]:
        """The ids of messages judged ``ok`` earlier whose recorded verdict a later
        judgement changed to ``replayed`` (v1 messages above a v2 one), since the last
        call; the caller shows them as replayed. Not persisted: ``verdict_of`` and
        ``to_json`` already hold the new verdicts."""
        changed, self._changed = self._changed, []
        return changed

    def is_rollback(self, last_seq: int) -> bool:
        """Whether the conversation's ``last_seq`` is below a seq already judged."""
        return self._max_seq is not None and last_seq < self._max_seq

    def forget_from(self, seq: int) -> None:
        """Forget every message judged at ``seq`` or above: after a rollback, the client
        loads them again from the server."""
        kept = [entry for entry in self.entries.values() if entry.seq < seq]
        self._reset()
        for entry in sorted(kept, key=lambda e: e.seq):
            self._record(entry)

    def _out_of_order(self, sig_kid: str, seq: int, n: int) -> bool:
        shown = self._counters.get(sig_kid)
        if not shown:
            return False
        at = bisect.bisect_left(shown, (seq, -1))
        before = shown[at - 1] if at > 0 else None
        after = shown[at] if at < len(shown) else None
        return (before is not None and before[1] >= n) or (after is not None and after[1] <= n)

    def _flag_v1_above(self, seq: int) -> None:
        """Mark the ok v1 messages above ``seq`` (a v2 message judged ok) as replayed."""
        while self._v1_ok and self._v1_ok[-1][0] > seq:
            _, message_id = self._v1_ok.pop()
            entry = self.entries[message_id]
            self.entries[message_id] = replace(entry, verdict=REPLAYED)
            del self._by_client_id[(entry.sender_id, entry.client_msg_id)]
            self._changed.append(message_id)

    def _record(self, entry: Judged) -> None:
        self.entries[entry.id] = entry
        self._by_seq[entry.seq] = entry.id
        if self._max_seq is None or entry.seq > self._max_seq:
            self._max_seq = entry.seq
        if entry.verdict != OK:
            return
        self._by_client_id[(entry.sender_id, entry.client_msg_id)] = entry.id
        if entry.v == 1:
            bisect.insort(self._v1_ok, (entry.seq, entry.id))
            return
        bisect.insort(self._counters.setdefault(entry.sig_kid, []), (entry.seq, entry.n))
        if self._lowest_v2_seq is None or entry.seq < self._lowest_v2_seq:
            self._lowest_v2_seq = entry.seq

    def _reset(self) -> None:
        self.entries, self._by_seq, self._by_client_id, self._counters = {}, {}, {}, {}
        self._lowest_v2_seq, self._max_seq, self._v1_ok, self._changed = None, None, [], []

    def to_json(self) -> list:
        """The persisted form: one list per judged message, in seq order."""
        return [e.as_list() for e in sorted(self.entries.values(), key=lambda e: (e.seq, e.id))]

    @classmethod
    def from_json(cls, data: list) -> Ledger:
        """A ledger from ``to_json``'s form (verdicts as recorded)."""
        ledger = cls()
        for row in data:
            ledger._record(Judged(*row))
        return ledger
