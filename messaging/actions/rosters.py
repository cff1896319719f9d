"""Group rosters (§8): a group is created with its signed record 0, and its members, owner
and title change only by the next signed record, checked and applied in one transaction.

Each record goes through `chatclient.roster.verify_record`, the same function clients
verify chains with, on a state rebuilt from the locked conversation row and its current
memberships (`joined_n` keeps each member's latest joining record for the owner rule), so
a record costs the same whether the roster holds ten records or ten thousand. Checks, in
order: shape (`bad_request`), `by` is the caller (`forbidden`), chain (409
`stale_roster` with `head`), `hash` (`bad_request`), signature by an active device of
`by` certified by her current identity (`bad_signature`), the rules (`forbidden` /
`bad_request`), added users exist and are active (`not_found` with `user_ids`). A
record already stored (same `n` and `hash`) is answered as applied, without a change.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.errors import ActionError
from accounts.models import User
from chatclient import protocol, roster
from keys.queries import certified_signing_device

from .. import queries
from ..models import Conversation, Membership, RosterRecord
from .conversations import publish_conversation
from .requests import check_can_add
from .sending import signing_key


def _refused(exc: roster.RosterError) -> ActionError:
    return ActionError(exc.code, exc.detail)


def _check_shape(record: dict) -> None:
    try:
        roster.validate_record(record)
    except roster.RosterError as exc:
        raise _refused(exc) from None


def _check_gid(gid: object) -> str:
    if not protocol.is_uuid4(gid):
        raise ActionError(
            "bad_request", "gid must be a lowercase UUID4.", fields={"gid": ["uuid4"]}
        )
    return gid


def _check_by(actor: User, record: dict) -> None:
    if record["by"] != actor.pk:
        raise ActionError("forbidden", "A record's `by` must be you.")


def _head(conversation: Conversation) -> dict | None:
    if conversation.roster_n is None:
        return None
    return {"n": conversation.roster_n, "hash": conversation.roster_hash}


def _stale(conversation: Conversation, detail: str) -> ActionError:
    return ActionError("stale_roster", detail, head=_head(conversation))


def _signing_key(record: dict):
    """The signing key of an active device of `by` holding `sig_kid` that her current
    identity certified, or None."""
    device = certified_signing_device(record["by"], record["sig_kid"])
    return None if device is None else signing_key(bytes(device.sig_spki))


def _verify(state: roster.RosterState, record: dict, conversation: Conversation | None) -> None:
    """Chain position, hash, signature and rules (`roster.verify_record`); `state` takes
    the record. Out of chain is `stale_roster` with the conversation's head, or
    `bad_request` for a new group's record 0 (`conversation` None)."""
    try:
        roster.verify_record(state, record, _signing_key)
    except roster.RosterError as exc:
        if exc.code != "stale_roster":
            raise _refused(exc) from None
        if conversation is None:
            raise ActionError("bad_request", "Record 0 has n 0 and prev 64 zeros.") from None
        raise _stale(conversation, f"{exc.detail}: fetch the roster.") from None


def _check_users(user_ids: set[int]) -> None:
    found = set(
        User.objects.filter(pk__in=list(user_ids), is_active=True).values_list("pk", flat=True)
    )
    unknown = sorted(user_ids - found)
    if unknown:
        raise ActionError(
            "not_found", f"No such user: {', '.join(map(str, unknown[:5]))}.", user_ids=unknown
        )


def _stored_already(conversation: Conversation, record: dict) -> bool:
    """Whether this very record (same n and hash) is in the chain: a resend."""
    return (
        conversation.roster_n is not None
        and record["n"] <= conversation.roster_n
        and RosterRecord.objects.filter(
            conversation=conversation, n=record["n"], hash=record["hash"]
        ).exists()
    )


def _store_record(conversation: Conversation, record: dict, now) -> None:
    RosterRecord.objects.create(
        conversation=conversation,
        n=record["n"],
        prev=record["prev"],
        op=record["op"],
        subjects=record["subjects"],
        by_id=record["by"],
        title=record["title"],
        sig_kid=record["sig_kid"],
        sig=record["sig"],
        hash=record["hash"],
        created=now,
    )


# --- creating a group ---------------------------------------------------------------------


def create_group(
    creator: User, gid: object, title: str | None, record: dict
) -> tuple[Conversation, bool]:
    """A new group from its `gid` and record 0 (`create`, by the creator, the body's
    `title`, subjects the first members); returns (conversation, created). The same gid
    with the same record 0 again returns the group made by the first post (created False);
    a gid in use otherwise is `bad_request`."""
    _check_shape(record)
    gid = _check_gid(gid)
    if record["title"] != title:
        raise ActionError("bad_request", "Record 0's title must be the body's `title`.")
    _check_by(creator, record)
    existing = Conversation.objects.filter(gid=gid).first()
    if existing is not None:
        return _existing_group(existing, record)
    state = roster.RosterState(gid=gid)
    _verify(state, record, None)
    _check_users(state.members)
    check_can_add(creator.pk, state.members - {creator.pk})
    now = timezone.now()
    first = sorted(state.members)
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(
                kind=Conversation.GROUP,
                title=state.title,
                owner_id=state.owner,
                gid=gid,
                roster_n=0,
                roster_hash=record["hash"],
                created=now,
                last_activity=now,
            )
            Membership.objects.bulk_create(
                Membership(conversation=conversation, user_id=user_id, joined=now, joined_n=0)
                for user_id in first
            )
            _store_record(conversation, record, now)
    except IntegrityError:  # the same gid, posted at the same moment
        existing = Conversation.objects.filter(gid=gid).first()
        if existing is None:
            raise
        return _existing_group(existing, record)
    publish_conversation(conversation.pk, new_member_ids=first)
    return conversation, True


def _existing_group(conversation: Conversation, record: dict) -> tuple[Conversation, bool]:
    if (
        conversation.roster_n is not None
        and RosterRecord.objects.filter(
            conversation=conversation, n=0, hash=record["hash"]
        ).exists()
    ):
        return conversation, False
    raise ActionError("bad_request", "This gid is taken.", fields={"gid": ["taken"]})


# --- the next record ----------------------------------------------------------------------


def post_record(
    actor: User, conversation_id: int, record: dict, *, gid: object = None
) -> tuple[Conversation, bool]:
    """Check the group's next record and apply it with its change of members, owner and
    title; returns (conversation, applied). `gid` is given only with record 0 of a v1
    group that has no roster yet (posted by its owner, naming exactly its current members
    and its title). A removed or leaving member keeps what she could read (`left_seq` =
    `last_seq`); an added one joins or rejoins. Every current member and every member who
    left gets a `conversation` frame after commit.

    Refusals besides the module's list: no such conversation (`not_found`), the caller is
    not a current member (`not_member`), a direct conversation (`bad_request`), a group
    without a roster and no `gid` (`stale_roster`, `head` null), a gid with a roster
    there already (`stale_roster`).
    """
    _check_shape(record)
    if gid is not None:
        gid = _check_gid(gid)
    membership = queries.require_membership(actor, conversation_id, current=True)
    if membership.conversation.kind != Conversation.GROUP:
        raise ActionError("bad_request", "The members of a direct conversation are fixed.")
    _check_by(actor, record)
    try:
        with transaction.atomic():
            conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
            if _stored_already(conversation, record):
                return conversation, False
            members = list(Membership.objects.current().filter(conversation=conversation))
            if gid is None:
                changed = _next_record(conversation, members, record)
            else:
                changed = _first_record(actor, conversation, members, record, gid)
    except IntegrityError:  # record 0's gid, taken by another group at the same moment
        if gid is None:
            raise
        raise ActionError("bad_request", "This gid is taken.", fields={"gid": ["taken"]}) from None
    added, removed = changed
    publish_conversation(conversation.pk, extra_user_ids=removed, new_member_ids=added)
    return conversation, True


def _state(conversation: Conversation, members: list[Membership]) -> roster.RosterState:
    """The stored chain's state, from the row (head, owner, title) and the memberships."""
    return roster.RosterState(
        gid=str(conversation.gid),
        n=conversation.roster_n,
        head=conversation.roster_hash,
        owner=conversation.owner_id,
        title=conversation.title,
        closed=not members,
        spans={member.user_id: [[member.joined_n, None]] for member in members},
    )


def _next_record(
    conversation: Conversation, members: list[Membership], record: dict
) -> tuple[set[int], set[int]]:
    if conversation.roster_n is None:
        raise _stale(conversation, "This group has no roster yet: its owner posts record 0.")
    state = _state(conversation, members)
    before = state.members
    _verify(state, record, conversation)
    added, removed = state.members - before, before - state.members
    _check_users(added)
    check_can_add(record["by"], added)
    now = timezone.now()
    _store_record(conversation, record, now)
    if removed:
        Membership.objects.filter(conversation=conversation, user_id__in=list(removed)).update(
            left_seq=conversation.last_seq
        )
    if added:
        rejoining = set(
            Membership.objects.filter(
                conversation=conversation, user_id__in=list(added)
            ).values_list("user_id", flat=True)
        )
        Membership.objects.filter(conversation=conversation, user_id__in=list(rejoining)).update(
            left_seq=None, joined=now, joined_n=record["n"]
        )
        Membership.objects.bulk_create(
            Membership(conversation=conversation, user_id=user_id, joined=now, joined_n=record["n"])
            for user_id in sorted(added - rejoining)
        )
    _save_head(conversation, record, state)
    return added, removed


def _first_record(
    actor: User, conversation: Conversation, members: list[Membership], record: dict, gid: str
) -> tuple[set[int], set[int]]:
    if conversation.roster_n is not None:
        raise _stale(conversation, "This group has a roster already.")
    state = roster.RosterState(gid=gid)
    _verify(state, record, conversation)
    if conversation.owner_id != actor.pk:
        raise ActionError("forbidden", "Only the group's owner starts its roster.")
    if state.members != {member.user_id for member in members}:
        raise ActionError("bad_request", "Record 0 must name exactly the group's members.")
    if state.title != (conversation.title or None):
        raise ActionError("bad_request", "Record 0 must carry the group's title.")
    if Conversation.objects.filter(gid=gid).exists():
        raise ActionError("bad_request", "This gid is taken.", fields={"gid": ["taken"]})
    _store_record(conversation, record, timezone.now())
    Membership.objects.current().filter(conversation=conversation).update(joined_n=0)
    conversation.gid = gid
    _save_head(conversation, record, state, "gid")
    return set(), set()


def _save_head(
    conversation: Conversation, record: dict, state: roster.RosterState, *fields: str
) -> None:
    conversation.roster_n, conversation.roster_hash = record["n"], record["hash"]
    conversation.owner_id, conversation.title = state.owner, state.title
    conversation.save(update_fields=["roster_n", "roster_hash", "owner", "title", *fields])
