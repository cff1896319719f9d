"""Turn the lower layers' signals into frames and socket closes."""

from django.dispatch import receiver

from accounts.signals import password_changed, session_ended, user_deactivated
from keys.schemas import link_request_dict
from keys.signals import (
    device_added,
    device_certified,
    device_revoked,
    identity_changed,
    link_request_created,
    link_request_done,
)

from . import queries, realtime


def _tell_device_change(user) -> None:
    frame = {"type": "devices_changed", "user": user.username, "user_id": user.pk}
    realtime.send_to_users_sync(queries.co_member_ids(user.pk) | {user.pk}, frame)


@receiver(device_added)
def on_device_added(sender, device, **kwargs):
    _tell_device_change(device.user)


@receiver(device_revoked)
def on_device_revoked(sender, device, **kwargs):
    realtime.close_device_sockets_sync(device.pk)
    _tell_device_change(device.user)


@receiver(device_certified)
def on_device_certified(sender, device, **kwargs):
    _tell_device_change(device.user)


@receiver(user_deactivated)
def on_user_deactivated(sender, user, **kwargs):
    realtime.close_user_sockets_sync(user.pk)


@receiver(session_ended)
def on_session_ended(sender, session_key, **kwargs):
    realtime.close_session_sockets_sync(session_key, realtime.CLOSE_NOT_LOGGED_IN)


@receiver(password_changed)
def on_password_changed(sender, user, **kwargs):
    # Every session logged in before the change fails Django's auth hash check from now
    # on (the changer's own was cycled to a new key): all her sockets are logged out.
    realtime.close_user_sockets_sync(user.pk, realtime.CLOSE_NOT_LOGGED_IN)


@receiver(identity_changed)
def on_identity_changed(sender, user, **kwargs):
    _tell_device_change(user)


def _tell_own_devices(frame_type: str, link_request) -> None:
    frame = {"type": frame_type, "link_request": link_request_dict(link_request)}
    realtime.send_to_users_sync([link_request.user_id], frame)


@receiver(link_request_created)
def on_link_request_created(sender, link_request, **kwargs):
    _tell_own_devices("link_request", link_request)


@receiver(link_request_done)
def on_link_request_done(sender, link_request, **kwargs):
    _tell_own_devices("link_done", link_request)
