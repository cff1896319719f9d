"""The JSON API of the device registry (PROTOCOL §4)."""

from django.db.models import Q
from ninja import Path, Router, Status

from accounts.auth import session_auth
from accounts.errors import ActionError
from accounts.models import User
from accounts.ratelimits import enforce
from accounts.schemas import with_errors

from .actions import certify_device, register_device, revoke_device, set_identity
from .models import Device, Identity
from .schemas import (
    CertIn,
    DeviceIn,
    DeviceList,
    IdentityIn,
    IdentityWrapped,
    KeyLookup,
    OwnDeviceOut,
    OwnDeviceWrapped,
    UserDevices,
    UserIdentity,
    device_dict,
    identity_dict,
)

router = Router(tags=["keys"], auth=session_auth)


def _user_named(username: str) -> User:
    owner = User.objects.filter(username=username).first()
    if owner is None:
        raise ActionError("not_found", "No such user.")
    return owner


@router.get("/users/{username}/identity/", response=with_errors({200: UserIdentity}))
def user_identity(request, username: str):
    """A user's current identity key (or null) and the ones it replaced, newest first."""
    owner = _user_named(username)
    identities = list(Identity.objects.filter(user=owner))
    current = next((i for i in identities if i.replaced is None), None)
    return {
        "user": owner.as_ref(),
        "identity": identity_dict(current) if current else None,
        "previous": [identity_dict(i) for i in identities if i.replaced is not None],
    }


@router.put("/identity/", response=with_errors({200: IdentityWrapped, 201: IdentityWrapped}))
def put_identity(request, body: IdentityIn):
    """Set my identity key (201), confirm it (200, the same key), or reset it with
    `replace` (201: every device of mine is revoked)."""
    identity, created = set_identity(
        request.auth,
        id_spki=body.id_spki,
        proof=body.proof,
        upgrade=body.upgrade.model_dump() if body.upgrade else None,
        replace=body.replace,
    )
    return Status(201 if created else 200, {"identity": identity_dict(identity)})


@router.post("/devices/", response=with_errors({201: OwnDeviceOut}))
def create_device(request, body: DeviceIn):
    """Register this client's keys, certified by my identity, as a new device of mine
    (DEVICE_REGISTER_RATE per user)."""
    enforce(
        request,
        "keys.devices",
        key="user",
        setting="DEVICE_REGISTER_RATE",
        detail="Too many device registrations; try again later.",
    )
    device = register_device(
        request.auth,
        name=body.name,
        enc_spki=body.enc_spki,
        sig_spki=body.sig_spki,
        proof=body.proof,
        cert=body.cert,
    )
    return Status(201, device_dict(device))


@router.get("/devices/", response=with_errors({200: DeviceList}))
def list_own_devices(request):
    """All my devices, revoked ones with `revoked` set."""
    return {"devices": [device_dict(d) for d in Device.objects.filter(user=request.auth)]}


@router.delete("/devices/{int:device_id}/", response=with_errors({204: None}))
def delete_device(request, device_id: int = Path(..., ge=1, le=2**63 - 1)):
    """Revoke one of my devices; its sockets close."""
    device = Device.objects.filter(pk=device_id, user=request.auth).first()
    if device is None:
        raise ActionError("not_found", "No such device of yours.")
    revoke_device(device)
    return Status(204, None)


@router.post("/devices/{int:device_id}/cert/", response=with_errors({200: OwnDeviceWrapped}))
def certify(request, device_id: int = Path(..., ge=1, le=2**63 - 1), *, body: CertIn):
    """Certify one of my devices registered without a cert (§7.5) under my identity."""
    device, _ = certify_device(request.auth, device_id, body.cert)
    return {"device": device_dict(device)}


@router.get("/users/{username}/devices/", response=with_errors({200: UserDevices}))
def list_user_devices(request, username: str, include_revoked: bool = False):
    """A user's devices with their public keys (active only unless `include_revoked=1`)."""
    owner = _user_named(username)
    devices = Device.objects.filter(user=owner)
    if not include_revoked:
        devices = devices.active()
    return {"user": owner.as_ref(), "devices": [device_dict(d) for d in devices]}


@router.get("/keys/{kid}/", response=with_errors({200: KeyLookup}))
def lookup_key(request, kid: str):
    """The device holding this encryption or signing kid, revoked or not, and its owner."""
    device = Device.objects.select_related("user").filter(Q(enc_kid=kid) | Q(sig_kid=kid)).first()
    if device is None:
        raise ActionError("not_found", "No device holds this key.")
    return {"device": device_dict(device), "user": device.user.as_ref()}
