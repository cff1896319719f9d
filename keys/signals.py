"""Signals `keys` sends so higher layers can react (it never imports them)."""

from django.dispatch import Signal

#: Sent with ``device`` after a device is registered.
device_added = Signal()
#: Sent with ``device`` after a device is revoked; its sockets must close.
device_revoked = Signal()
