"""The JSON API of messaging: conversations, rosters, history, REST send (PROTOCOL §4, §8)."""

from django.http import HttpResponse
from ninja import Path, Query, Router, Status

from accounts.auth import session_auth
from accounts.errors import ActionError
from accounts.ratelimits import enforce
from accounts.schemas import with_errors

from . import actions, queries
from .schemas import (
    DB_INT_MAX,
    ConversationIn,
    ConversationList,
    ConversationWrapped,
    MessagePage,
    MessageWrapped,
    RosterIn,
    RosterRecords,
    SendIn,
)
from .wire import dumps_body

router = Router(tags=["messaging"], auth=session_auth)

HISTORY_MAX = 100
ConversationId = Path(..., ge=1, le=DB_INT_MAX)


def _view(user, conversation_id: int) -> dict:
    return {
        "conversation": queries.conversation_view(
            queries.require_membership(user, conversation_id, current=False)
        )
    }


@router.get("/conversations/", response=with_errors({200: ConversationList}))
def list_conversations(request):
    """My conversations (and those I left), newest activity first, with unread counts."""
    return {"conversations": queries.conversations_for(request.auth)}


@router.post(
    "/conversations/", response=with_errors({200: ConversationWrapped, 201: ConversationWrapped})
)
def create_conversation(request, body: ConversationIn):
    """`{"members": ["bob"]}`: the direct conversation with bob (200 if it exists).
    `{"gid", "title", "roster"}`: a new group from its signed record 0 (§8), 201."""
    if body.members is not None and body.gid is None and body.roster is None and not body.title:
        conversation, created = actions.create_direct(request.auth, body.members)
    elif body.members is None and body.gid is not None and body.roster is not None:
        conversation, created = actions.create_group(
            request.auth, body.gid, body.title, body.roster.model_dump()
        )
    else:
        raise ActionError(
            "bad_request",
            'A conversation is {"members": ["<one other user>"]} or {"gid", "title", "roster"}.',
        )
    return Status(201 if created else 200, _view(request.auth, conversation.pk))


@router.get(
    "/conversations/{int:conversation_id}/roster/", response=with_errors({200: RosterRecords})
)
def roster(
    request,
    conversation_id: int = ConversationId,
    after: int = Query(-1, ge=-1, le=DB_INT_MAX),
):
    """The group's roster records with n above `after` (default -1: all), ascending; for
    current and former members. A direct conversation has none."""
    queries.require_membership(request.auth, conversation_id, current=False)
    return {"records": queries.roster_records(conversation_id, after)}


@router.post(
    "/conversations/{int:conversation_id}/roster/",
    response=with_errors({200: ConversationWrapped, 201: ConversationWrapped}),
)
def post_roster_record(request, conversation_id: int = ConversationId, *, body: RosterIn):
    """Apply the group's next signed record (add, remove, leave, title), or with `gid` a v1
    group's record 0; 201, or 200 when that record was applied before."""
    record = body.record.model_dump()
    _, applied = actions.post_record(request.auth, conversation_id, record, gid=body.gid)
    return Status(201 if applied else 200, _view(request.auth, conversation_id))


@router.get(
    "/conversations/{int:conversation_id}/messages/", response=with_errors({200: MessagePage})
)
def history(
    request,
    conversation_id: int = ConversationId,
    before_seq: int | None = Query(None, ge=0, le=DB_INT_MAX),
    limit: int = Query(50, ge=1, le=DB_INT_MAX),
):
    """A page of history in ascending seq: the newest, or the one below `before_seq`.

    Written by orjson straight from the rows (`MessagePage` documents it), the stored
    envelopes as the database's JSON text (`queries.served_messages`): ninja's validation
    of 100 messages the server itself built cost more than the query."""
    membership = queries.reader_membership(request.auth, conversation_id)
    messages, has_more = queries.history_page(membership, before_seq, min(limit, HISTORY_MAX))
    page = {"messages": messages, "has_more": has_more}
    return HttpResponse(dumps_body(page), content_type="application/json")


@router.post(
    "/conversations/{int:conversation_id}/messages/",
    response=with_errors({200: MessageWrapped, 201: MessageWrapped}),
)
def send(request, conversation_id: int = ConversationId, *, body: SendIn):
    """Send one envelope, with the same checks as the WebSocket `send`; 200 for a replay.
    REST_SEND_RATE per user (replays count too)."""
    enforce(
        request,
        "messaging.send",
        key="user",
        setting="REST_SEND_RATE",
        detail="Too many messages; try again later.",
    )
    outcome = actions.send_message(
        request.auth,
        conversation_id,
        body.client_msg_id,
        body.envelope.model_dump(),
        blobs=body.blobs,
    )
    return Status(201 if outcome.created else 200, {"message": outcome.message})


@router.delete(
    "/conversations/{int:conversation_id}/messages/{int:message_id}/",
    response=with_errors({204: None}),
)
def take_back(
    request,
    conversation_id: int = ConversationId,
    message_id: int = Path(..., ge=1, le=DB_INT_MAX),
):
    """The sender takes her message back for everyone (§10.1): its envelope, history keys
    and blobs go, the seq stays, members get a `deleted` frame; 204, also when it was taken
    back before. 404 `not_found` for anyone but its sender."""
    actions.take_back(request.auth, conversation_id, message_id)
    return Status(204, None)


# --- message requests and blocks (§6; messaging.actions.requests) ----------------------


@router.post(
    "/conversations/{int:conversation_id}/accept/", response=with_errors({200: ConversationWrapped})
)
def accept_request(request, conversation_id: int = ConversationId):
    """Accept a message request: it stops being one for me (and the starter starts to see
    my presence, typing and read receipts). 200 with the conversation, also when it was
    no request."""
    return {"conversation": actions.accept(request.auth, conversation_id)}


@router.post("/conversations/{int:conversation_id}/decline/", response=with_errors({204: None}))
def decline_request(request, conversation_id: int = ConversationId):
    """Delete a pending message request: it leaves my list on all my devices until the
    starter writes again. 204; `bad_request` if it is not a pending request of mine."""
    actions.decline(request.auth, conversation_id)
    return Status(204, None)


@router.post("/users/{username}/block/", response=with_errors({204: None}))
def block_user(request, username: str):
    """Block a user: no direct conversation, sends there or adding me to a group from
    them, and no presence, typing or read frames between us. 204, also when blocked before."""
    actions.block(request.auth, username)
    return Status(204, None)


@router.delete("/users/{username}/block/", response=with_errors({204: None}))
def unblock_user(request, username: str):
    """Lift my block of a user; 204, also when there was none."""
    actions.unblock(request.auth, username)
    return Status(204, None)
