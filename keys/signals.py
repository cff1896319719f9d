"""Signals `keys` sends so higher layers can react (it never imports them)."""

from django.dispatch import Signal

#: Sent with ``device`` after a device is registered.
device_added = Signal()
#: Sent with ``device`` after a device is revoked; its sockets must close.
device_revoked = Signal()
#: Sent with ``device`` after a registered (v1) device got its identity's cert (§7.5).
device_certified = Signal()
#: Sent with ``user`` after her identity key was set or replaced.
identity_changed = Signal()
#: Sent with ``link_request`` after a new device asked to join its user's account (§7.2).
link_request_created = Signal()
#: Sent with ``link_request`` after it was approved or denied.
link_request_done = Signal()
