"""The JSON API of link requests (PROTOCOL §4, §7.2): a new device asks, the user's other
devices list, approve or deny, the new device polls its request."""

from ninja import Path, Router, Status

from accounts.auth import session_auth
from accounts.ratelimits import enforce
from accounts.schemas import with_errors

from . import actions
from .queries import acting_device
from .schemas import (
    ApproveIn,
    LinkRequestFullWrapped,
    LinkRequestIn,
    LinkRequestList,
    LinkRequestWrapped,
    OwnDeviceWrapped,
    device_dict,
    link_request_dict,
)

router = Router(tags=["link requests"], auth=session_auth)

RequestId = Path(..., ge=1, le=2**63 - 1)


@router.post("/link-requests/", response=with_errors({201: LinkRequestWrapped}))
def create(request, body: LinkRequestIn):
    """A new device (logged in, no device yet) asks to join my account; my devices are told.
    LINK_REQUEST_RATE per user."""
    enforce(
        request,
        "keys.link_requests",
        key="user",
        setting="LINK_REQUEST_RATE",
        detail="Too many link requests; try again later.",
    )
    link_request = actions.create_link_request(
        request.auth,
        name=body.name,
        enc_spki=body.enc_spki,
        sig_spki=body.sig_spki,
        proof=body.proof,
    )
    return Status(201, {"link_request": link_request_dict(link_request)})


@router.get("/link-requests/", response=with_errors({200: LinkRequestList}))
def pending(request):
    """My pending, unexpired link requests, newest first."""
    requests = actions.pending_link_requests(request.auth)
    return {"link_requests": [link_request_dict(r) for r in requests]}


@router.get("/link-requests/{int:request_id}/", response=with_errors({200: LinkRequestFullWrapped}))
def one(request, request_id: int = RequestId):
    """One of my link requests with its `device` and `id_wrap` (null until approved)."""
    link_request = actions.link_request_of(request.auth, request_id)
    return {"link_request": link_request_dict(link_request, full=True)}


@router.post(
    "/link-requests/{int:request_id}/approve/", response=with_errors({201: OwnDeviceWrapped})
)
def approve(request, request_id: int = RequestId, *, body: ApproveIn):
    """One of my devices (`X-Device-Id`) approves: the new device is registered."""
    acting_device(request.auth, request.headers.get("X-Device-Id"))
    device = actions.approve_link_request(
        request.auth, request_id, cert=body.cert, id_wrap=body.id_wrap
    )
    return Status(201, {"device": device_dict(device)})


@router.delete("/link-requests/{int:request_id}/", response=with_errors({204: None}))
def deny(request, request_id: int = RequestId):
    """Deny or cancel a pending request; an approved or denied one is deleted."""
    actions.deny_link_request(request.auth, request_id)
    return Status(204, None)
