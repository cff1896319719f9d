"""The JSON API of the device registry (PROTOCOL §4)."""

from django.db.models import Q
from ninja import Path, Router, Status

from accounts.auth import session_auth
from accounts.errors import ActionError
from accounts.models import User
from accounts.schemas import with_errors

from .actions import register_device, revoke_device
from .models import Device
from .schemas import DeviceIn, DeviceList, KeyLookup, OwnDeviceOut, UserDevices, device_dict

router = Router(tags=["keys"], auth=session_auth)


@router.post("/devices/", response=with_errors({201: OwnDeviceOut}))
def create_device(request, body: DeviceIn):
    """Register this client's keys as a new device of the logged-in user."""
    device = register_device(
        request.auth,
        name=body.name,
        enc_spki=body.enc_spki,
        sig_spki=body.sig_spki,
        proof=body.proof,
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


@router.get("/users/{username}/devices/", response=with_errors({200: UserDevices}))
def list_user_devices(request, username: str, include_revoked: bool = False):
    """A user's devices with their public keys (active only unless `include_revoked=1`)."""
    owner = User.objects.filter(username=username).first()
    if owner is None:
        raise ActionError("not_found", "No such user.")
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
