"""The JSON API of messaging: conversations, members, history, REST send (PROTOCOL §4)."""

from ninja import Path, Query, Router, Status

from accounts.auth import session_auth
from accounts.schemas import with_errors

from . import actions, queries
from .schemas import (
    DB_INT_MAX,
    ConversationIn,
    ConversationList,
    ConversationWrapped,
    MemberIn,
    MessagePage,
    MessageWrapped,
    SendIn,
)

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
    """One other member: the direct conversation (200 if it exists). More: a new group (201)."""
    conversation, created = actions.create_conversation(
        request.auth, body.members, title=body.title, kind=body.kind
    )
    return Status(201 if created else 200, _view(request.auth, conversation.pk))


@router.post(
    "/conversations/{int:conversation_id}/members/",
    response=with_errors({200: ConversationWrapped}),
)
def add_member(request, conversation_id: int = ConversationId, *, body: MemberIn):
    """The owner adds a member to a group."""
    actions.add_member(request.auth, conversation_id, body.username)
    return _view(request.auth, conversation_id)


@router.delete(
    "/conversations/{int:conversation_id}/members/{username}/", response=with_errors({204: None})
)
def remove_member(request, username: str, conversation_id: int = ConversationId):
    """The owner removes a member, or a member leaves."""
    actions.remove_member(request.auth, conversation_id, username)
    return Status(204, None)


@router.get(
    "/conversations/{int:conversation_id}/messages/", response=with_errors({200: MessagePage})
)
def history(
    request,
    conversation_id: int = ConversationId,
    before_seq: int | None = Query(None, ge=0, le=DB_INT_MAX),
    limit: int = Query(50, ge=1, le=DB_INT_MAX),
):
    """A page of history in ascending seq: the newest, or the one below `before_seq`."""
    membership = queries.require_membership(request.auth, conversation_id, current=False)
    messages, has_more = queries.history_page(membership, before_seq, min(limit, HISTORY_MAX))
    return {"messages": messages, "has_more": has_more}


@router.post(
    "/conversations/{int:conversation_id}/messages/",
    response=with_errors({200: MessageWrapped, 201: MessageWrapped}),
)
def send(request, conversation_id: int = ConversationId, *, body: SendIn):
    """Send one envelope, with the same checks as the WebSocket `send`; 200 for a replay."""
    outcome = actions.send_message(
        request.auth, conversation_id, body.client_msg_id, body.envelope.model_dump()
    )
    return Status(201 if outcome.created else 200, {"message": outcome.message})
