"""Every write to messaging: conversations, members, messages, read marks.

REST views and the WebSocket consumer both call these. Each validates, writes in one
transaction, and fans the resulting frames out after commit.
"""

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from accounts.errors import ActionError
from accounts.models import User
from chatclient import protocol
from keys.models import Device

from . import dbthread, presence, queries, realtime
from .models import Conversation, Membership, Message
from .wire import message_dict

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4096)
def signing_key(sig_spki: bytes):
    """A device's parsed signing key (parsing is the costly part of a verify)."""
    return protocol.import_public_key(sig_spki)


# --- conversations and members ----------------------------------------------------------


def _publish_conversation(conversation_id: int, extra_user_ids: tuple[int, ...] = ()) -> None:
    """After commit: a `conversation` frame to each current member and to `extra_user_ids`."""

    def publish():
        members = queries.current_members(conversation_id)
        recipients = {member.user_id for member in members} | set(extra_user_ids)
        online = presence.online_among(member.user_id for member in members)
        for membership in Membership.objects.select_related(
            "conversation", "conversation__owner"
        ).filter(conversation_id=conversation_id, user_id__in=recipients):
            frame = {
                "type": "conversation",
                "conversation": queries.conversation_view(membership, members),
            }
            realtime.send_to_users_sync([membership.user_id], frame)
            if membership.is_current:  # members may be new to each other: who is online
                for member in members:
                    if member.user_id in online and member.user_id != membership.user_id:
                        realtime.send_to_users_sync(
                            [membership.user_id], presence.presence_frame(member.user, True)
                        )

    transaction.on_commit(publish)


def _active_users(usernames: list[str]) -> list[User]:
    users = {u.username: u for u in User.objects.filter(username__in=usernames, is_active=True)}
    unknown = [name for name in usernames if name not in users]
    if unknown:
        raise ActionError(
            "not_found", f"No such user: {', '.join(unknown[:5])}.", usernames=unknown
        )
    return [users[name] for name in usernames]


def create_conversation(
    creator: User, usernames: list[str], *, title: str | None = None, kind: str | None = None
) -> tuple[Conversation, bool]:
    """A direct conversation for one other member (the existing one if any), else a group.

    Returns (conversation, created). An empty list, or one naming only the creator, is
    `bad_request`; unknown or inactive users are `not_found`.
    """
    others = list(dict.fromkeys(name for name in usernames if name != creator.username))
    if not others:
        raise ActionError(
            "bad_request", "Name at least one other member.", fields={"members": ["empty"]}
        )
    users = _active_users(others)
    if kind != Conversation.GROUP and len(users) == 1:
        return _direct_conversation(creator, users[0])
    if kind == Conversation.DIRECT:
        raise ActionError("bad_request", "A direct conversation has exactly one other member.")
    with transaction.atomic():
        conversation = Conversation.objects.create(
            kind=Conversation.GROUP, title=title, owner=creator
        )
        Membership.objects.bulk_create(
            Membership(conversation=conversation, user=user) for user in [creator, *users]
        )
    _publish_conversation(conversation.pk)
    return conversation, True


def _direct_conversation(creator: User, other: User) -> tuple[Conversation, bool]:
    low, high = sorted([creator.pk, other.pk])
    key = f"{low}:{high}"
    existing = Conversation.objects.filter(direct_key=key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(kind=Conversation.DIRECT, direct_key=key)
            Membership.objects.bulk_create(
                [
                    Membership(conversation=conversation, user=creator),
                    Membership(conversation=conversation, user=other),
                ]
            )
    except IntegrityError:  # created concurrently by the other side
        return Conversation.objects.get(direct_key=key), False
    _publish_conversation(conversation.pk)
    return conversation, True


def _locked_group(actor: User, conversation_id: int) -> Conversation:
    """Lock a group the actor is a current member of (`not_found`/`not_member`/`bad_request`)."""
    queries.require_membership(actor, conversation_id, current=True)
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    if conversation.kind != Conversation.GROUP:
        raise ActionError("bad_request", "The members of a direct conversation are fixed.")
    return conversation


def add_member(actor: User, conversation_id: int, username: str) -> Conversation:
    """The owner adds a user to a group (idempotent; a former member rejoins)."""
    (user,) = _active_users([username])
    with transaction.atomic():
        conversation = _locked_group(actor, conversation_id)
        if conversation.owner_id != actor.pk:
            raise ActionError("forbidden", "Only the group's owner adds members.")
        membership, created = Membership.objects.get_or_create(conversation=conversation, user=user)
        if not created and membership.is_current:
            return conversation
        if not created:
            membership.left_seq = None
            membership.save(update_fields=["left_seq"])
    _publish_conversation(conversation.pk)
    return conversation


def remove_member(actor: User, conversation_id: int, username: str) -> Conversation:
    """The owner removes a member, or a member leaves; an owner who leaves hands the group on.

    The removed member keeps read access up to the current `last_seq`.
    """
    with transaction.atomic():
        conversation = _locked_group(actor, conversation_id)
        membership = (
            Membership.objects.current()
            .filter(conversation=conversation, user__username=username)
            .first()
        )
        if membership is None:
            raise ActionError("not_found", "No such member.")
        if membership.user_id != actor.pk and conversation.owner_id != actor.pk:
            raise ActionError("forbidden", "Only the group's owner removes others.")
        membership.left_seq = conversation.last_seq
        membership.save(update_fields=["left_seq"])
        if conversation.owner_id == membership.user_id:
            heir = (
                Membership.objects.current()
                .filter(conversation=conversation)
                .order_by("joined", "id")
                .first()
            )
            conversation.owner_id = heir.user_id if heir else None
            conversation.save(update_fields=["owner"])
    _publish_conversation(conversation.pk, extra_user_ids=(membership.user_id,))
    return conversation


# --- messages -----------------------------------------------------------------------------


@dataclass
class SendOutcome:
    """What a send did: the message as PROTOCOL shows it, and whom to tell."""

    message: dict
    created: bool
    recipients: list[int] = field(default_factory=list)

    def ack(self) -> dict:
        m = self.message
        return {
            "type": "ack",
            "client_msg_id": m["client_msg_id"],
            "id": m["id"],
            "seq": m["seq"],
            "created": m["created"],
        }

    def frame(self) -> dict:
        return {"type": "message", "message": self.message}


def _stored(sender: User, client_msg_id: str) -> SendOutcome | None:
    message = Message.objects.filter(sender=sender, client_msg_id=client_msg_id).first()
    return SendOutcome(message_dict(message, sender.username), created=False) if message else None


def _signing_device(sender: User, sig_kid: str, device: Device | None) -> Device:
    if device is not None:
        if device.sig_kid != sig_kid:
            raise ActionError("bad_signature", "sig_kid must be this connection's device.")
        return device
    found = Device.objects.active().filter(user=sender, sig_kid=sig_kid).first()
    if found is None:
        raise ActionError("bad_signature", "sig_kid is not an active device of the sender.")
    return found


def store_message(
    sender: User,
    conversation_id: int,
    client_msg_id: str,
    envelope: dict,
    *,
    device: Device | None = None,
) -> SendOutcome:
    """Check and store one envelope; a (sender, client_msg_id) seen before returns the stored one.

    Checks: `sig_kid` is an active device of the sender (`device`, over WebSocket), the
    signature verifies (`bad_signature`), the sender is a current member (`not_member`),
    `keys` names exactly the active devices of the current members (`stale_devices`).
    The seq is taken under a row lock on the conversation, so it is gapless.

    A new message costs three statements (the seq UPDATE, which also takes the row lock;
    the members' device kids; the insert): whether it was stored before is asked only
    when a check fails or the insert hits the (sender, client_msg_id) constraint, and the
    membership query only when the sender has no active device among the members'.
    """
    try:
        return _store_new(sender, conversation_id, client_msg_id, envelope, device)
    except ActionError:
        stored = _stored(sender, client_msg_id)  # a replay is answered, whatever its body
        if stored is not None:
            return stored
        raise


def _store_new(
    sender: User, conversation_id: int, client_msg_id: str, envelope: dict, device
) -> SendOutcome:
    signer = _signing_device(sender, envelope["sig_kid"], device)
    sig_spki = bytes(signer.sig_spki)
    try:
        # Both callers (WebSocket frame, REST body) validated the envelope with
        # schemas.Envelope, which checks what protocol.validate_envelope checks.
        verified = protocol.verify_envelope_signature(
            envelope,
            conversation_id=conversation_id,
            sender_id=sender.pk,
            client_msg_id=client_msg_id,
            sig_public=signing_key(sig_spki),
            sig_spki=sig_spki,
            shape_checked=True,
        )
    except protocol.ProtocolError as exc:
        raise ActionError(exc.code, exc.detail) from exc
    if not verified:
        raise ActionError("bad_signature", "The envelope's signature does not verify.")
    try:
        with transaction.atomic():
            # The seq first: the UPDATE takes the row lock and the next seq in one statement;
            # any check that fails below rolls it back with the rest.
            now = timezone.now()
            seq = _take_seq(conversation_id, now)
            kids = queries.active_device_kids(conversation_id) if seq is not None else {}
            if sender.pk not in kids.values():  # not_found / not_member (else: no device)
                queries.require_membership(sender, conversation_id, current=True)
            missing = sorted(set(kids) - set(envelope["keys"]))
            extra = sorted(set(envelope["keys"]) - set(kids))
            if missing or extra:
                raise ActionError(
                    "stale_devices",
                    "The recipients' devices changed.",
                    missing=missing,
                    extra=extra,
                )
            message = Message.objects.create(
                conversation_id=conversation_id,
                seq=seq,
                sender_id=sender.pk,
                sender_device_id=signer.pk,
                client_msg_id=client_msg_id,
                created=now,
                envelope=envelope,
                size=len(envelope["ct"]),
            )
    except IntegrityError:
        stored = _stored(sender, client_msg_id)  # the same message, sent twice at once
        if stored is None:
            raise
        return stored
    return SendOutcome(
        message_dict(message, sender.username), created=True, recipients=sorted(set(kids.values()))
    )


def _take_seq(conversation_id: int, now) -> int | None:
    """`last_seq += 1` and `last_activity = now` under the row lock, in one statement;
    the new seq, or None when there is no such conversation."""
    table = connection.ops.quote_name(Conversation._meta.db_table)
    activity = Conversation._meta.get_field("last_activity").get_db_prep_save(now, connection)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_seq = last_seq + 1, last_activity = %s"  # noqa: S608
            " WHERE id = %s RETURNING last_seq",
            [activity, conversation_id],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def send_message(
    sender: User, conversation_id: int, client_msg_id: str, envelope: dict
) -> SendOutcome:
    """Store (see `store_message`) and fan the new message out; for synchronous callers."""
    outcome = store_message(sender, conversation_id, client_msg_id, envelope)
    if outcome.created:
        try:
            realtime.send_to_users_sync(outcome.recipients, outcome.frame())
        except Exception:  # stored: the sender gets its answer, members get it by sync
            logger.exception("fan-out of message %s failed", outcome.message["id"])
    return outcome


def store_messages(items: list[tuple]) -> list:
    """Store several sends in one transaction, so one commit (one fsync) for all of them.

    `items` are `store_message` arguments `(sender, conversation_id, client_msg_id,
    envelope, device)`. Each runs in its own savepoint, in the order given except that
    conversations are taken in ascending id (so two workers lock rows in the same order);
    the result for each is its `SendOutcome` or the exception it raised. If the commit
    itself fails, nothing was stored and every item gets that exception.
    """
    results: list = [None] * len(items)
    try:
        with transaction.atomic():
            for i in sorted(range(len(items)), key=lambda i: items[i][1]):
                sender, conversation_id, client_msg_id, envelope, device = items[i]
                try:
                    results[i] = store_message(
                        sender, conversation_id, client_msg_id, envelope, device=device
                    )
                except Exception as exc:  # this item only: its savepoint was rolled back
                    results[i] = exc
    except Exception as exc:  # the commit failed: none of them is stored
        return [exc] * len(items)
    return results


class _SendBatcher:
    """Group commit for the consumer's sends (one per event loop).

    A send that finds the database thread idle is stored at once, alone. Sends that
    arrive while a batch is being stored wait and go together in the next one (at most
    `MAX` per transaction): under load one commit serves many messages, and no send waits
    longer than the batch in front of it. Each sender still gets its ack only after its
    message is committed.
    """

    MAX = 100

    def __init__(self) -> None:
        self.pending: list[tuple[tuple, asyncio.Future]] = []
        self.running = False
        self.task: asyncio.Task | None = None  # a reference, so the drain is not collected

    async def submit(self, item: tuple) -> "SendOutcome":
        future = asyncio.get_running_loop().create_future()
        self.pending.append((item, future))
        if not self.running:
            self.running = True
            self.task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending[: self.MAX], self.pending[self.MAX :]
                try:
                    results = await _store_in_db_thread([i for i, _ in batch])
                except Exception as exc:  # the thread hop itself failed
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self.running = False


_batchers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _store_batch(items: list[tuple]) -> list:
    """`store_messages`; a batch with a database error (not a refused send) closes the
    connection, which `dbthread.database_call` otherwise keeps between batches."""
    results = store_messages(items)
    if any(isinstance(r, DatabaseError) for r in results):
        connection.close()
    return results


_store_in_db_thread = dbthread.database_call(_store_batch)


async def asend_message(
    sender: User,
    conversation_id: int,
    client_msg_id: str,
    envelope: dict,
    *,
    device: Device,
    acknowledge: Callable[[dict], Awaitable[None]],
) -> SendOutcome:
    """Store (group commit with concurrent sends, see `_SendBatcher`), `acknowledge` the
    ack frame, then fan a new message out; for the consumer. The sender's ack therefore
    comes before its own copy of the message."""
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = _batchers[loop] = _SendBatcher()
    outcome = await batcher.submit((sender, conversation_id, client_msg_id, envelope, device))
    await acknowledge(outcome.ack())
    if outcome.created:
        try:
            await realtime.send_to_users(outcome.recipients, outcome.frame())
        except Exception:  # stored: the sender has its ack, members get it by sync
            logger.exception("fan-out of message %s failed", outcome.message["id"])
    return outcome


def mark_read(user: User, conversation_id: int, up_to: int) -> tuple[int, list[int]] | None:
    """Raise the read mark to `up_to` (capped at `last_seq`); returns (mark, member ids) if it moved."""
    with transaction.atomic():
        membership = queries.require_membership(user, conversation_id, current=True)
        mark = min(up_to, membership.conversation.last_seq)
        moved = Membership.objects.filter(pk=membership.pk, read_up_to__lt=mark).update(
            read_up_to=mark
        )
    if not moved:
        return None
    return mark, queries.current_member_ids(conversation_id)


_mark_read_in_db_thread = dbthread.database_call(mark_read)


async def amark_read(user: User, conversation_id: int, up_to: int) -> None:
    """Store a read mark and tell every member's connections (`read` frame) if it moved."""
    result = await _mark_read_in_db_thread(user, conversation_id, up_to)
    if result is not None:
        mark, member_ids = result
        frame = {
            "type": "read",
            "conversation": conversation_id,
            "user": user.username,
            "user_id": user.pk,
            "up_to": mark,
        }
        await realtime.send_to_users(member_ids, frame)
