"""Declared shapes of the device registry API (PROTOCOL §4)."""

from ninja import Schema
from pydantic import Field

from accounts.schemas import StrictIn, UserRef
from accounts.wire import iso_utc
from chatclient import protocol

B64_MAX = 4096  # a 4096-bit SPKI is 550 bytes; a PSS signature 512.


class DeviceIn(StrictIn):
    name: str = Field(min_length=1, max_length=100)
    enc_spki: str = Field(max_length=B64_MAX)
    sig_spki: str = Field(max_length=B64_MAX)
    proof: str = Field(max_length=B64_MAX)
    cert: str = Field(max_length=B64_MAX)


class UpgradeIn(StrictIn):
    sig_kid: str = Field(max_length=64)
    sig: str = Field(max_length=B64_MAX)


class IdentityIn(StrictIn):
    id_spki: str = Field(max_length=B64_MAX)
    proof: str = Field(max_length=B64_MAX)
    upgrade: UpgradeIn | None = None
    replace: bool = False


class CertIn(StrictIn):
    cert: str = Field(max_length=B64_MAX)


class LinkRequestIn(StrictIn):
    name: str = Field(min_length=1, max_length=100)
    enc_spki: str = Field(max_length=B64_MAX)
    sig_spki: str = Field(max_length=B64_MAX)
    proof: str = Field(max_length=B64_MAX)


class ApproveIn(StrictIn):
    cert: str = Field(max_length=B64_MAX)
    #: ``{"ek","iv","ct"}``, checked by `keys.actions.check_id_wrap`; `ct` carries the
    #: identity's PKCS#8 and the trust state, so it may be a few KiB.
    id_wrap: dict


class IdentityOut(Schema):
    id_spki: str
    id_kid: str
    proof: str
    upgrade: dict | None
    created: str


class PreviousIdentityOut(IdentityOut):
    replaced: str


class IdentityWrapped(Schema):
    identity: IdentityOut


class UserIdentity(Schema):
    user: UserRef
    identity: IdentityOut | None
    previous: list[PreviousIdentityOut]


class OwnDeviceOut(Schema):
    id: int
    name: str
    enc_spki: str
    sig_spki: str
    enc_kid: str
    sig_kid: str
    proof: str
    cert: str | None
    created: str
    revoked: str | None


class DeviceList(Schema):
    devices: list[OwnDeviceOut]


class UserDevices(Schema):
    user: UserRef
    devices: list[OwnDeviceOut]


class OwnDeviceWrapped(Schema):
    device: OwnDeviceOut


class LinkRequestOut(Schema):
    id: int
    name: str
    enc_spki: str
    sig_spki: str
    enc_kid: str
    sig_kid: str
    proof: str
    status: str
    created: str
    expires: str


class LinkRequestFull(LinkRequestOut):
    device: OwnDeviceOut | None
    id_wrap: dict | None


class LinkRequestWrapped(Schema):
    link_request: LinkRequestOut


class LinkRequestFullWrapped(Schema):
    link_request: LinkRequestFull


class LinkRequestList(Schema):
    link_requests: list[LinkRequestOut]


class KeyLookup(Schema):
    device: OwnDeviceOut
    user: UserRef


def device_dict(device) -> dict:
    """A device as PROTOCOL §4 shows it (public keys in base64)."""
    return {
        "id": device.pk,
        "name": device.name,
        "enc_spki": protocol.b64encode(bytes(device.enc_spki)),
        "sig_spki": protocol.b64encode(bytes(device.sig_spki)),
        "enc_kid": device.enc_kid,
        "sig_kid": device.sig_kid,
        "proof": device.proof,
        "cert": device.cert or None,
        "created": iso_utc(device.created),
        "revoked": iso_utc(device.revoked),
    }


def identity_dict(identity) -> dict:
    """An identity as PROTOCOL §4 shows it; a replaced one adds `replaced`."""
    data = {
        "id_spki": protocol.b64encode(bytes(identity.id_spki)),
        "id_kid": identity.id_kid,
        "proof": identity.proof,
        "upgrade": identity.upgrade,
        "created": iso_utc(identity.created),
    }
    if identity.replaced is not None:
        data["replaced"] = iso_utc(identity.replaced)
    return data


def link_request_dict(link_request, *, full: bool = False) -> dict:
    """A link request as §7.2 shows it; `full` (its own GET) adds the approved `device`
    (or null) and `id_wrap` (or null)."""
    data = {
        "id": link_request.pk,
        "name": link_request.name,
        "enc_spki": protocol.b64encode(bytes(link_request.enc_spki)),
        "sig_spki": protocol.b64encode(bytes(link_request.sig_spki)),
        "enc_kid": link_request.enc_kid,
        "sig_kid": link_request.sig_kid,
        "proof": link_request.proof,
        "status": link_request.status,
        "created": iso_utc(link_request.created),
        "expires": iso_utc(link_request.expires),
    }
    if full:
        device = link_request.device
        data["device"] = device_dict(device) if device is not None else None
        data["id_wrap"] = link_request.id_wrap
    return data
