"""Signals `keys` sends so higher layers can react (it never imports them)."""

from django.dispatch import Signal

#: Sent with ``device`` after a device is registered.
device_added = Signal()
#: Sent with ``device`` after a device is revoked; its sockets must close.
device_revoked = Signal()
#: Sent with ``user`` after her identity key was set or replaced.
identity_changed = Signal()
