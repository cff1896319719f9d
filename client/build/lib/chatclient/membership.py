"""Who is in each conversation, as this device verified it (PROTOCOL §8).

A direct conversation is between the two people it was first seen with, forever. A
group's members are what its signed roster says: the chain is verified whenever the
server shows a new ``roster_head`` (from the last verified record on), each record's
signature under a device of its author that her accepted (or an earlier) identity
certified, and the result compared with the server's members, owner and title. Any
mismatch, broken chain, bad signature, unknown head, changed ``gid`` or a direct
conversation with other members marks the conversation as tampered, for good: the
client sends nothing to it. The verified views persist in the ``rosters`` section of the
device's state; roster changes come out as ``RosterChange`` events.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from . import protocol, roster
from .directory import Directory, RecordKey
from .errors import ChatApiError, ChatError, SendingPaused, TamperedConversation
from .events import ConversationTampered, RosterChange, TrustNotice
from .session import ChatSession
from .state import StateStore

MAX_RECORD_ATTEMPTS = 4


@dataclass
class Membership:
    """The verified view of one conversation: its kind, the two people of a direct one,
    a group's pinned ``gid`` and verified roster state, and why it is tampered or waiting."""

    kind: str | None = None
    pair: list[int] | None = None
    gid: str | None = None
    state: roster.RosterState | None = None
    tampered: str | None = None
    waiting: str | None = None  # a record signed under an identity change not accepted yet

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "pair": self.pair,
            "gid": self.gid,
            "state": None if self.state is None else self.state.to_json(),
            "tampered": self.tampered,
            "waiting": self.waiting,
        }

    @classmethod
    def from_json(cls, data: dict) -> Membership:
        state = data.get("state")
        return cls(
            kind=data.get("kind"),
            pair=data.get("pair"),
            gid=data.get("gid"),
            state=None if state is None else roster.RosterState.from_json(state),
            tampered=data.get("tampered"),
            waiting=data.get("waiting"),
        )

    def genesis(self) -> str | None:
        """The hash of record 0 (what a group message's empty ``head`` stands for)."""
        if self.state is None:
            return None
        return next((h for h, n in self.state.heads.items() if n == 0), None)


class MembershipBook:
    """Verifies and remembers conversations' members; makes and posts roster records.

    ``keys`` are this device's keys (set by the client; roster records are signed with
    them). Events (``RosterChange``, ``ConversationTampered``) are returned by the
    methods that find them.
    """

    def __init__(
        self,
        store: StateStore,
        session: ChatSession,
        directory: Directory,
        *,
        user_id: int,
        keys: protocol.DeviceKeys,
    ) -> None:
        self.store = store
        self.session = session
        self.directory = directory
        self.user_id = user_id
        self.keys = keys

    def view(self, conversation_id: int) -> Membership:
        return self.store.live("rosters", conversation_id, Membership.from_json, Membership)

    def _changed(self, conversation_id: int) -> None:
        self.store.changed("rosters", conversation_id)

    def name(self, user_id: int) -> str:
        """The username last seen for ``user_id`` ("you" for this user)."""
        if user_id == self.user_id:
            return "you"
        return self.store.get("names", user_id) or f"user {user_id}"

    def learn_names(self, conversation: dict) -> None:
        """Remember the usernames a conversation object shows."""
        people = list(conversation.get("members") or [])
        if isinstance(conversation.get("owner"), dict):
            people.append(conversation["owner"])
        for person in people:
            if not (isinstance(person, dict) and isinstance(person.get("id"), int)):
                continue
            if self.store.get("names", person["id"]) != person.get("username"):
                self.store.put("names", person["id"], person.get("username"))

    def _tamper(self, conversation_id: int, reason: str) -> list:
        view = self.view(conversation_id)
        if view.tampered is not None:
            return []
        view.tampered = reason
        self._changed(conversation_id)
        return [ConversationTampered(conversation_id, reason)]

    # --- verifying what the server shows ---------------------------------------------------

    async def check(self, conversation: dict) -> list:
        """Verify a conversation object of §4 against what this device knows, and return
        the events it brings: verified ``RosterChange``s, or ``ConversationTampered``."""
        cid = conversation["id"]
        view = self.view(cid)
        self.learn_names(conversation)
        if view.tampered is not None:
            return []
        kind = conversation.get("kind")
        if view.kind is None:
            view.kind = kind
            self._changed(cid)
        elif view.kind != kind:
            return self._tamper(cid, f"its kind changed from {view.kind} to {kind}")
        member_ids = {m["id"] for m in conversation.get("members") or []}
        if kind == "direct":
            return self._check_direct(cid, view, conversation, member_ids)
        if kind != "group":
            return self._tamper(cid, f"unknown kind {kind!r}")
        gid, head = conversation.get("gid"), conversation.get("roster_head")
        if gid is None and head is None:
            if view.gid is not None:
                return self._tamper(cid, "its roster disappeared")
            if self._owner_id(conversation) == self.user_id and self.keys.id_private is not None:
                return await self.bootstrap(conversation)
            return []
        if not protocol.is_uuid4(gid) or not _is_head(head):
            return self._tamper(cid, "the server shows a malformed roster head or group id")
        if view.gid is None:
            view.gid = gid
            self._changed(cid)
        elif view.gid != gid:
            return self._tamper(cid, "its group id changed")
        events: list = []
        state = view.state
        if state is None or state.head != head["hash"]:
            if state is not None and head["hash"] in state.heads:
                return []  # an older view of a chain already verified further
            if state is not None and head["n"] <= state.n:
                return self._tamper(cid, "the server shows another roster than it did before")
            events = await self._extend(cid, view, head)
            if view.tampered is not None or view.waiting is not None:
                return events
        state = view.state
        mismatch = []
        if state.members != member_ids:
            mismatch.append("members")
        if state.owner != self._owner_id(conversation):
            mismatch.append("owner")
        if state.title != (conversation.get("title") or None):
            mismatch.append("title")
        if mismatch:
            return events + self._tamper(
                cid, f"the server's {', '.join(mismatch)} differ from the signed roster"
            )
        return events

    def _check_direct(
        self, cid: int, view: Membership, conversation: dict, member_ids: set[int]
    ) -> list:
        if conversation.get("gid") is not None or conversation.get("roster_head") is not None:
            return self._tamper(cid, "a direct conversation with a roster")
        if view.pair is None:
            if len(member_ids) != 2 or self.user_id not in member_ids:
                return self._tamper(cid, "a direct conversation not between you and one person")
            view.pair = sorted(member_ids)
            self._changed(cid)
        elif member_ids != set(view.pair):
            return self._tamper(cid, "the members of a direct conversation changed")
        return []

    @staticmethod
    def _owner_id(conversation: dict) -> int | None:
        owner = conversation.get("owner")
        return owner.get("id") if isinstance(owner, dict) else None

    async def _extend(self, cid: int, view: Membership, head: dict) -> list:
        """Fetch and verify the records after the verified state up to ``head``."""
        start = view.state or roster.RosterState(gid=view.gid)
        records = await self.session.roster(cid, after=start.n)
        current = start.copy()
        events: list = []
        view.waiting = None
        self._changed(cid)
        for record in records:
            signer = await self._signer(record)
            before = current.copy()
            try:
                roster.verify_record(current, record, lambda _r, k=signer.key: k, served=True)
            except roster.RosterError as exc:
                view.state = current if current.n >= 0 else None
                if exc.code == "bad_signature" and signer.waiting:
                    view.waiting = (
                        f"record {record['n']} is signed under a new identity key of "
                        f"{self.name(record['by'])} that you have not accepted"
                    )
                    return events
                return events + self._tamper(cid, f"roster {exc.detail or exc.code}")
            events.append(self._event(cid, record, before))
        view.state = current if current.n >= 0 else None
        if current.head != head["hash"] or current.n != head["n"]:
            return events + self._tamper(
                cid, "the roster does not end at the head the server shows"
            )
        return events

    async def _signer(self, record: object) -> RecordKey:
        """The key for a record's signature, and its author's name remembered."""
        by = record.get("by") if isinstance(record, dict) else None
        sig_kid = record.get("sig_kid") if isinstance(record, dict) else None
        if type(by) is not int or not protocol.is_kid(sig_kid):
            return RecordKey(None, False, "")
        signer = await self.directory.record_signer(by, sig_kid)
        if signer.username and self.store.get("names", by) != signer.username:
            self.store.put("names", by, signer.username)
        return signer

    def _event(self, cid: int, record: dict, before: roster.RosterState) -> RosterChange:
        op, by, subjects = record["op"], record["by"], tuple(record["subjects"])
        who = self.name(by)
        names = tuple(self.name(s) for s in subjects)
        listed = _join([self.name(s) for s in subjects if s != by])
        if op == "create":
            title = f" “{record['title']}”" if record["title"] else ""
            text = f"{who} created the group{title}" + (f" with {listed}" if listed else "")
        elif op == "add":
            text = f"{who} added {_join(list(names))}"
        elif op == "remove":
            text = f"{who} removed {_join(list(names))}"
        elif op == "leave":
            text = f"{who} left"
        else:
            text = f"title changed to “{record['title']}” by {who}"
        return RosterChange(
            conversation=cid,
            n=record["n"],
            op=op,
            by=by,
            by_name=self.store.get("names", by) or "",
            subjects=subjects,
            subject_names=tuple(self.store.get("names", s) or "" for s in subjects),
            title=record["title"],
            text=text,
        )

    async def refresh(self, conversation_id: int) -> tuple[dict | None, list]:
        """Fetch the conversation from the server and ``check`` it: (object, events)."""
        for conversation in await self.session.conversations():
            if conversation["id"] == conversation_id:
                return conversation, await self.check(conversation)
        return None, []

    async def check_head(
        self, conversation_id: int, sender_id: int, head: str
    ) -> tuple[list, str | None]:
        """Check a v2 message's ``head`` (§2, §8): ``""`` in a direct conversation (whose
        sender must be one of its two people); in a group a hash of the verified chain at
        which the sender was a member (``""`` stands for record 0, or for a group without
        a roster). A head not verified yet makes the roster be fetched again first.

        Returns (events found, why the message cannot be trusted or None)."""
        view = self.view(conversation_id)
        events: list = []
        if view.kind is None or (head and view.state is not None and head not in view.state.heads):
            _, events = await self.refresh(conversation_id)
        if view.tampered is not None:
            return events, f"the conversation was tampered with ({view.tampered})"
        if view.kind == "direct":
            if head != "":
                return events, "a direct message names a roster head"
            if view.pair is not None and sender_id not in view.pair:
                return events, "the sender is not one of the conversation's two people"
            return events, None
        if view.gid is None:
            if head == "":
                return events, None
            events += self._tamper(conversation_id, "a message names a roster it does not have")
            return events, "the message names a roster that does not exist"
        if view.waiting is not None:
            return events, view.waiting
        at = head or view.genesis()
        if at not in view.state.heads:
            events += self._tamper(
                conversation_id, "a message names a roster head the server cannot show"
            )
            return events, "the message names an unknown roster head"
        if not view.state.member_at(sender_id, at):
            return events, "the sender was not a member at the message's roster head"
        return events, None

    # --- whom to send to -------------------------------------------------------------------

    def send_plan(self, conversation: dict) -> tuple[set[int], str]:
        """(member user ids, ``head``) to seal a message for, after ``check``.

        ``TamperedConversation`` for a tampered conversation, ``SendingPaused`` while a
        roster record waits for an identity change, ``ChatError`` if this user is not a
        member."""
        cid = conversation["id"]
        view = self.view(cid)
        if view.tampered is not None:
            raise TamperedConversation(cid, view.tampered)
        if view.waiting is not None:
            raise SendingPaused(cid, [TrustNotice("roster_waiting", "", 0, view.waiting)])
        if view.kind == "direct" and view.pair is not None:
            members, head = set(view.pair), ""
        elif view.state is not None:
            members, head = view.state.members, view.state.head
        else:
            members, head = {m["id"] for m in conversation.get("members") or []}, ""
        if self.user_id not in members:
            raise ChatError(f"you are not a member of conversation {cid}")
        return members, head

    # --- changing a group ------------------------------------------------------------------

    async def create_group(self, title: str | None, member_ids: Iterable[int]) -> tuple[dict, list]:
        """A new group with these members (and this user as owner), from a signed record 0."""
        gid = str(uuid.uuid4())
        record = roster.make_record(
            self.keys,
            gid=gid,
            n=0,
            prev=roster.GENESIS,
            op="create",
            subjects={self.user_id, *member_ids},
            by=self.user_id,
            title=title or None,
        )
        conversation = await self.session.create_group(gid, title or None, record)
        return conversation, await self.check(conversation)

    async def bootstrap(self, conversation: dict) -> list:
        """Record 0 for a v1 group this user owns: its current members (§8)."""
        gid = str(uuid.uuid4())
        members = [m["id"] for m in conversation.get("members") or []]
        record = roster.make_record(
            self.keys,
            gid=gid,
            n=0,
            prev=roster.GENESIS,
            op="create",
            subjects=members,
            by=self.user_id,
            title=conversation.get("title") or None,
        )
        try:
            updated = await self.session.post_roster_record(conversation["id"], record, gid=gid)
        except ChatApiError as exc:
            if exc.code in ("stale_roster", "forbidden", "bad_request"):
                return []  # another device of the owner did it, or it is no longer hers
            raise
        return await self.check(updated)

    async def change(
        self,
        conversation: dict,
        op: str,
        subjects: Iterable[int] = (),
        title: str | None = None,
    ) -> tuple[dict, list]:
        """Sign and post one record (``add``/``remove``/``leave``/``title``); on
        ``stale_roster`` verify the new head and sign again. Returns the conversation and
        the events seen. A change the rules refuse is ``ChatError``."""
        subjects = sorted(set(subjects))
        events = await self.check(conversation)
        cid = conversation["id"]
        for _attempt in range(MAX_RECORD_ATTEMPTS):
            view = self.view(cid)
            if view.tampered is not None:
                raise TamperedConversation(cid, view.tampered)
            if view.waiting is not None:
                raise SendingPaused(cid, [TrustNotice("roster_waiting", "", 0, view.waiting)])
            if view.kind != "group" or view.state is None:
                raise ChatError(f"conversation {cid} has no roster to change")
            state = view.state
            record = roster.make_record(
                self.keys,
                gid=view.gid,
                n=state.n + 1,
                prev=state.head,
                op=op,
                subjects=subjects,
                by=self.user_id,
                title=title,
            )
            try:
                state.copy().check(record)
            except roster.RosterError as exc:
                raise ChatError(f"not allowed: {exc.detail}") from exc
            try:
                updated = await self.session.post_roster_record(cid, record)
            except ChatApiError as exc:
                if exc.code != "stale_roster":
                    raise
                fresh, more = await self.refresh(cid)
                events += more
                if fresh is None:
                    raise
                continue
            return updated, events + await self.check(updated)
        raise ChatError("the group's roster kept changing; try again")


def _is_head(head: object) -> bool:
    return (
        isinstance(head, dict)
        and type(head.get("n")) is int
        and head["n"] >= 0
        and protocol.is_kid(head.get("hash"))
    )


def _join(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
