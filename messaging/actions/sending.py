"""Sending: check and store envelopes (§2), group commit for the socket, fan-out."""

import asyncio
import contextlib
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

from .. import dbthread, queries, realtime, signatures
from ..models import Conversation, Message
from ..wire import message_dict
from .blobs import name_blobs
from .message_rows import insert_messages
from .requests import accepted_by_sending, check_direct_allowed, other_in_direct
from .send_reads import read_for_send

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4096)
def signing_key(sig_spki: bytes):
    """A device's parsed signing key (parsing is the costly part of a verify)."""
    return protocol.import_public_key(sig_spki)


@dataclass
class SendOutcome:
    """What a send did: the message as PROTOCOL shows it, and whom to tell."""

    message: dict
    created: bool
    recipients: list[int] = field(default_factory=list)
    #: This send accepted the message request the sender had in the conversation.
    accepted: bool = False

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
    blobs: list[str] | tuple = (),
) -> SendOutcome:
    """Check and store one v2 envelope; a (sender, client_msg_id) seen before returns the
    stored one, whatever the new body holds.

    Checks, in order (the caller checked size and shape with `schemas.Envelope`):
    `sig_kid` is an active device of the sender (`device`, over WebSocket), the signature
    verifies (`bad_signature`), the conversation exists and the sender is a current member
    (`not_found` / `not_member`), `head` is the current roster head (`stale_roster` with
    `head`), `n` is above every `n` this device stored in this conversation
    (`stale_counter` with that `n`), `keys` names exactly the active devices of the current
    members (`stale_devices`), and each of `blobs` (§10.2) is the sender's upload that no
    message names yet (`bad_request`; they are named in the same transaction). The seq is
    taken under a row lock on the conversation, so it is gapless, and the head and counter
    are read under that lock.

    A new message costs three statements (the seq UPDATE, which also takes the row lock
    and returns the roster head; `send_reads.read_for_send`: the members' device kids,
    the device's highest `n` and, in a direct conversation, request and block; the
    insert): whether it was stored before is asked only when a check fails or the insert
    hits the (sender, client_msg_id) constraint, and the membership query only when the
    sender has no active device among the members'.
    """
    try:
        return _store_new(sender, conversation_id, client_msg_id, envelope, device, list(blobs))
    except ActionError:
        stored = _stored(sender, client_msg_id)  # a replay is answered, whatever its body
        if stored is not None:
            return stored
        raise


def _store_new(
    sender: User,
    conversation_id: int,
    client_msg_id: str,
    envelope: dict,
    device,
    blob_ids: list[str],
    batch: "_Batch | None" = None,
) -> "SendOutcome | _Deferred":
    signer = _signing_device(sender, envelope["sig_kid"], device)
    sig_spki = bytes(signer.sig_spki)
    try:
        # Both callers (WebSocket frame, REST body) validated the envelope with
        # schemas.Envelope, which checks what protocol.validate_envelope checks.
        verified = signatures.verify_envelope(
            envelope,
            conversation_id=conversation_id,
            sender_id=sender.pk,
            client_msg_id=client_msg_id,
            sig_spki=sig_spki,
        )
    except protocol.ProtocolError as exc:
        raise ActionError(exc.code, exc.detail) from exc
    if not verified:
        raise ActionError("bad_signature", "The envelope's signature does not verify.")
    # In a batch, each item already runs in a savepoint of its own (`_store_each_checked`)
    # and a deferred row is inserted later: a second savepoint here would only add two
    # statements. A row inserted here (alone, or with blobs) gets its own, so that a
    # replay's IntegrityError rolls back only this send.
    inner = contextlib.nullcontext() if batch is not None and not blob_ids else transaction.atomic()
    try:
        with inner:
            # The seq first: the UPDATE takes the row lock and the next seq in one statement;
            # any check that fails below rolls it back with the rest.
            now = timezone.now()
            taken = _take_seq(conversation_id, now)
            if taken is None:
                queries.require_membership(sender, conversation_id, current=True)  # not_found
            seq, roster_n, roster_hash, direct_key = taken
            other = other_in_direct(direct_key, sender.pk) if direct_key else None
            reads = read_for_send(conversation_id, signer.pk, sender.pk, other)
            kids = reads.kids
            if sender.pk not in kids.values():  # not_member (else: she has no device here)
                queries.require_membership(sender, conversation_id, current=True)
            accepted = False
            if other is not None:  # a block refuses it; her send accepts a request (§6)
                if reads.blocked:
                    check_direct_allowed(sender.pk, other)  # raises `forbidden`
                if reads.request:
                    accepted = accepted_by_sending(sender.pk, conversation_id)
            if envelope["head"] != roster_hash:
                raise ActionError(
                    "stale_roster",
                    "The group's roster changed: fetch it and seal again.",
                    head={"n": roster_n, "hash": roster_hash} if roster_n is not None else None,
                )
            highest = reads.highest_n
            if batch is not None:  # this device's rows not inserted yet in this batch
                highest = max(highest or 0, batch.highest_n.get((conversation_id, signer.pk), 0))
                highest = highest or None
            if highest is not None and envelope["n"] <= highest:
                raise ActionError(
                    "stale_counter",
                    f"n must be above {highest}, the highest this device sent here.",
                    n=highest,
                )
            missing = sorted(set(kids) - set(envelope["keys"]))
            extra = sorted(set(envelope["keys"]) - set(kids))
            if missing or extra:
                raise ActionError(
                    "stale_devices",
                    "The recipients' devices changed.",
                    missing=missing,
                    extra=extra,
                )
            message = Message(
                conversation_id=conversation_id,
                seq=seq,
                sender_id=sender.pk,
                sender_device_id=signer.pk,
                client_msg_id=client_msg_id,
                created=now,
                envelope=envelope,
                size=len(envelope["ct"]),
                n=envelope["n"],
                blob_ids=blob_ids,
            )
            recipients = sorted(set(kids.values()))
            if batch is not None and not blob_ids:
                batch.highest_n[(conversation_id, signer.pk)] = envelope["n"]
                batch.rows.append(message)
                return _Deferred(message, sender.username, recipients, accepted)
            insert_messages([message])
            name_blobs(sender.pk, message.pk, blob_ids)
    except IntegrityError:
        stored = _stored(sender, client_msg_id)  # the same message, sent twice at once
        if stored is None:
            raise
        return stored
    return SendOutcome(
        message_dict(message, sender.username),
        created=True,
        recipients=recipients,
        accepted=accepted,
    )


@dataclass
class _Deferred:
    """A checked message of a batch, its row not inserted yet (see `store_messages`)."""

    message: Message
    sender_username: str
    recipients: list[int]
    accepted: bool

    def outcome(self) -> SendOutcome:
        return SendOutcome(
            message_dict(self.message, self.sender_username),
            created=True,
            recipients=self.recipients,
            accepted=self.accepted,
        )


@dataclass
class _Batch:
    """The rows a batch will insert together, and each device's highest `n` among them."""

    rows: list = field(default_factory=list)
    highest_n: dict = field(default_factory=dict)


class _Conflict(Exception):
    """The batch's multi-row INSERT hit a constraint (a send that raced its replay)."""


def _take_seq(conversation_id: int, now) -> tuple[int, int | None, str] | None:
    """`last_seq += 1` and `last_activity = now` under the row lock, in one statement;
    (the new seq, roster n, roster hash, direct key), or None when there is no such conversation."""
    with connection.cursor() as cursor:
        cursor.execute(_TAKE_SEQ_SQL, [_activity(now), conversation_id])
        return cursor.fetchone()


def _activity(now):
    return Conversation._meta.get_field("last_activity").get_db_prep_save(now, connection)


_TAKE_SEQ_SQL = (
    "UPDATE messaging_conversation SET last_seq = last_seq + 1, last_activity = %s"
    " WHERE id = %s RETURNING last_seq, roster_n, roster_hash, direct_key"
)


def send_message(
    sender: User,
    conversation_id: int,
    client_msg_id: str,
    envelope: dict,
    blobs: list[str] | tuple = (),
) -> SendOutcome:
    """Store (see `store_message`) and fan the new message out; for synchronous callers."""
    outcome = store_message(sender, conversation_id, client_msg_id, envelope, blobs=blobs)
    if outcome.created:
        try:
            realtime.send_to_users_sync(outcome.recipients, outcome.frame())
        except Exception:  # stored: the sender gets its answer, members get it by sync
            logger.exception("fan-out of message %s failed", outcome.message["id"])
    return outcome


def store_messages(items: list[tuple]) -> list:
    """Store several sends in one transaction, so one commit (one fsync) for all of them.

    `items` are `store_message` arguments `(sender, conversation_id, client_msg_id,
    envelope, device[, blobs])`. Each is checked in its own savepoint, in the order given
    except that conversations are taken in ascending id (so two workers lock rows in the
    same order); the rows of those that pass go in one multi-row INSERT at the end. The
    result for each is its `SendOutcome` or the exception it raised. If the commit itself
    fails, nothing was stored and every item gets that exception.

    A batch that repeats a (sender, client_msg_id), or whose INSERT hits a constraint (a
    replay that raced its original from another worker), is rolled back whole and stored
    again one row at a time, each insert in its item's savepoint, as before: every send
    is then answered by its stored message, and nothing is stored twice.

    A batch of one (the usual case below a few hundred sends a second) is `store_message`
    in a transaction of its own: no savepoint, so two statements fewer.
    """
    if len(items) == 1:
        return [_store_alone(*items[0])]
    ids = [(item[0].pk, item[2]) for item in items]
    if len(set(ids)) == len(ids) and connection.features.can_return_rows_from_bulk_insert:
        try:
            return _store_together(items)
        except _Conflict:
            pass
    return _store_each(items, None)


def _store_alone(sender, conversation_id, client_msg_id, envelope, device, blobs=()):
    """`store_message` for one item of `store_messages`: its outcome, or what it raised."""
    try:
        return store_message(
            sender, conversation_id, client_msg_id, envelope, device=device, blobs=blobs
        )
    except Exception as exc:  # its transaction was rolled back: nothing of it is stored
        return exc


def _store_together(items: list[tuple]) -> list:
    batch = _Batch()
    try:
        with transaction.atomic():
            results = _store_each_checked(items, batch)
            if batch.rows:
                try:
                    insert_messages(batch.rows)
                except IntegrityError as exc:  # rolls the whole transaction back
                    raise _Conflict from exc
    except _Conflict:
        raise
    except Exception as exc:  # the commit failed: none of them is stored
        return [exc] * len(items)
    return [r.outcome() if isinstance(r, _Deferred) else r for r in results]


def _store_each(items: list[tuple], batch: _Batch | None) -> list:
    try:
        with transaction.atomic():
            return _store_each_checked(items, batch)
    except Exception as exc:  # the commit failed: none of them is stored
        return [exc] * len(items)


def _store_each_checked(items: list[tuple], batch: _Batch | None) -> list:
    """Each item in its own savepoint; with `batch`, a message without blobs that passes
    every check is not inserted but returned as `_Deferred` and its row added to the
    batch (the counter check then also counts the batch's rows)."""
    results: list = [None] * len(items)
    for i in sorted(range(len(items)), key=lambda i: items[i][1]):
        sender, conversation_id, client_msg_id, envelope, device, *rest = items[i]
        blobs = list(rest[0]) if rest else []
        try:
            # Its own savepoint around all of it: a statement of this item that fails
            # at the database (e.g. the replay lookup after a refused check) must not
            # abort the batch's transaction (on PostgreSQL the rest would fail and
            # COMMIT become ROLLBACK, losing items already reported stored).
            if batch is None:
                with transaction.atomic():
                    results[i] = store_message(
                        sender, conversation_id, client_msg_id, envelope, device=device, blobs=blobs
                    )
                continue
            try:
                with transaction.atomic():  # a refused check rolls back its seq here
                    results[i] = _store_new(
                        sender, conversation_id, client_msg_id, envelope, device, blobs, batch
                    )
            except ActionError as refused:
                with transaction.atomic():  # a replay is answered, whatever its body
                    results[i] = _stored(sender, client_msg_id) or refused
        except Exception as exc:  # this item only: its savepoint was rolled back
            results[i] = exc
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
    blobs: list[str] | tuple = (),
) -> SendOutcome:
    """Store (group commit with concurrent sends, see `_SendBatcher`), `acknowledge` the
    ack frame, then fan a new message out; for the consumer. The sender's ack therefore
    comes before its own copy of the message."""
    loop = asyncio.get_running_loop()
    batcher = _batchers.get(loop)
    if batcher is None:
        batcher = _batchers[loop] = _SendBatcher()
    outcome = await batcher.submit(
        (sender, conversation_id, client_msg_id, envelope, device, tuple(blobs))
    )
    await acknowledge(outcome.ack())
    if outcome.created:
        try:
            await realtime.send_to_users(outcome.recipients, outcome.frame())
        except Exception:  # stored: the sender has its ack, members get it by sync
            logger.exception("fan-out of message %s failed", outcome.message["id"])
    return outcome
